#!/bin/bash
# Stop @UNIT@ for the restore. Verification: it is inactive.
set -uo pipefail
if ! timeout @STOP_SECONDS@ systemctl stop @UNIT@; then
  echo "@UNIT@ did not stop within @STOP_SECONDS@s on $(hostname)" >&2
  exit 1
fi
if systemctl is-active --quiet @UNIT@; then
  echo "@UNIT@ is still active on $(hostname)" >&2
  exit 1
fi
echo "@UNIT@ stopped on $(hostname)"
