#!/bin/bash
# Apply @MANIFEST_NAME@. Verification: kubectl reports each object applied.
set -euo pipefail
@APPLY@
