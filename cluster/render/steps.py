"""Scripts every host runs whatever its role: the readiness gate and (re)starting services."""

from __future__ import annotations

import shlex
from typing import Sequence

GATE_TIMEOUT_SECONDS = 600


def readiness_gate_script(timeout_seconds: int = GATE_TIMEOUT_SECONDS) -> str:
    """The first step on every host. That it runs at all proves SSH answers; it then waits, within a bound, for
    cloud-init to finish (hostname set, packages unlocked) and fails with cloud-init's own account if it did not."""
    return f"""#!/bin/bash
# Verification: SSH answers and cloud-init is done on $(hostname).
set -uo pipefail
if command -v cloud-init >/dev/null 2>&1; then
  timeout {timeout_seconds} cloud-init status --wait >/dev/null
  status=$?
  # 0: done; 2: done with recoverable errors (warnings), which do not stop a node from working.
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    echo "cloud-init did not finish cleanly on $(hostname) (exit $status):" >&2
    cloud-init status --long >&2 || true
    exit 1
  fi
fi
echo "$(hostname) is ready"
"""


STARTED_DIR = "/var/lib/k8s-from-scratch/started"


def restart_services_script(units: Sequence[str], fingerprint: str, settle_seconds: int = 60) -> str:
    """Reload systemd, enable the units and restart them when they were last started with other inputs, then check
    each stays active. `fingerprint` stands for the inputs (files and binaries); the node keeps it per unit, so the
    same step re-run (after a connection change, say) restarts nothing, while a new machine, changed inputs or a
    unit that is down restart. Every wait is bounded."""
    names = " ".join(shlex.quote(u) for u in units)
    return f"""#!/bin/bash
# Start or restart: {", ".join(units)}. Verification: each unit is active.
set -uo pipefail
want={shlex.quote(fingerprint)}
install -d -m 0755 {STARTED_DIR}
timeout 60 systemctl daemon-reload
for unit in {names}; do
  systemctl enable --quiet "$unit"
  stamp="{STARTED_DIR}/$unit"
  if systemctl is-active --quiet "$unit" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$unit: inputs unchanged since it was started, not restarting"
    continue
  fi
  rm -f "$stamp"
  if ! timeout 120 systemctl restart "$unit"; then
    echo "$unit did not restart within 120s on $(hostname):" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    journalctl -u "$unit" --no-pager -n 30 >&2 || true
    exit 1
  fi
done
deadline=$((SECONDS + {settle_seconds}))
for unit in {names}; do
  until systemctl is-active --quiet "$unit"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$unit is not active on $(hostname) after {settle_seconds}s:" >&2
      systemctl status "$unit" --no-pager -l >&2 || true
      journalctl -u "$unit" --no-pager -n 30 >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$want" > "{STARTED_DIR}/$unit"
  echo "$unit is active on $(hostname)"
done
"""
