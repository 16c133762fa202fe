#!/bin/bash
# @VERB@: @UNITS@. Verification: each is active.
set -uo pipefail
units=(@UNITS@)
for unit in "${units[@]}"; do
  if ! timeout 120 systemctl @VERB@ "$unit"; then
    echo "$unit did not @VERB@ within 120s on $(hostname)" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    exit 1
  fi
done
for unit in "${units[@]}"; do
  if ! systemctl is-active --quiet "$unit"; then
    echo "$unit is not active on $(hostname)" >&2
    journalctl -u "$unit" --no-pager -n 30 >&2 || true
    exit 1
  fi
  echo "$unit is active on $(hostname)"
done
