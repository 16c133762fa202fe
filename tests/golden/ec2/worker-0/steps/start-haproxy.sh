#!/bin/bash
# Start or restart: haproxy. Verification: each unit is active.
set -uo pipefail
want=<fingerprint>
install -d -m 0755 /var/lib/k8s-from-scratch/started
timeout 60 systemctl daemon-reload
for unit in haproxy; do
  systemctl enable --quiet "$unit"
  stamp="/var/lib/k8s-from-scratch/started/$unit"
  if systemctl is-active --quiet "$unit" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$unit: inputs unchanged since it was started, not restarting"
    continue
  fi
  rm -f "$stamp"
  if ! timeout 120 systemctl reload-or-restart "$unit"; then
    echo "$unit did not reload-or-restart within 120s on $(hostname):" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    journalctl -u "$unit" --no-pager -n 30 >&2 || true
    exit 1
  fi
done
deadline=$((SECONDS + 60))
for unit in haproxy; do
  until systemctl is-active --quiet "$unit"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$unit is not active on $(hostname) after 60s:" >&2
      systemctl status "$unit" --no-pager -l >&2 || true
      journalctl -u "$unit" --no-pager -n 30 >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$want" > "/var/lib/k8s-from-scratch/started/$unit"
  echo "$unit is active on $(hostname)"
done
