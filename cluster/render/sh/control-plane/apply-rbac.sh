#!/bin/bash
# Apply the cluster RBAC as @IDENTITY@. Verification: kubectl reports each object applied.
set -euo pipefail
@APPLY_EACH@
@DELETE_RETIRED@
