#!/bin/bash
# Verification: SSH answers and cloud-init is done on $(hostname).
set -uo pipefail
if command -v cloud-init >/dev/null 2>&1; then
  timeout @TIMEOUT_SECONDS@ cloud-init status --wait >/dev/null
  status=$?
  # 0: done; 2: done with recoverable errors (warnings), which do not stop a node from working.
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    echo "cloud-init did not finish cleanly on $(hostname) (exit $status):" >&2
    cloud-init status --long >&2 || true
    exit 1
  fi
fi
echo "$(hostname) is ready"
