#!/bin/bash
# Start or restart: @UNIT_LIST@. Verification: each unit is active.
set -uo pipefail
want=@FINGERPRINT@
@SWITCH@
install -d -m 0755 @STARTED_DIR@
timeout 60 systemctl daemon-reload
for unit in @UNITS@; do
  systemctl enable --quiet "$unit"
  stamp="@STARTED_DIR@/$unit"
  if systemctl is-active --quiet "$unit" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$unit: inputs unchanged since it was started, not restarting"
    continue
  fi
  rm -f "$stamp"
  # The binaries it runs move to their new release right before it restarts, never earlier.
  switch_releases || exit 1
  if ! timeout 120 systemctl @VERB@ "$unit"; then
    echo "$unit did not @VERB@ within 120s on $(hostname):" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    journalctl -u "$unit" --no-pager -n 30 >&2 || true
    exit 1
  fi
done
deadline=$((SECONDS + @SETTLE_SECONDS@))
for unit in @UNITS@; do
  until systemctl is-active --quiet "$unit"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$unit is not active on $(hostname) after @SETTLE_SECONDS@s:" >&2
      systemctl status "$unit" --no-pager -l >&2 || true
      journalctl -u "$unit" --no-pager -n 30 >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$want" > "@STARTED_DIR@/$unit"
  echo "$unit is active on $(hostname)"
done
