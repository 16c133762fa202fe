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


def restart_services_script(units: Sequence[str], settle_seconds: int = 60) -> str:
    """Reload systemd, enable and restart these units, then check each stays active. The step only runs when
    something it starts changed (its triggers), so a restart here is never a no-op re-run."""
    names = " ".join(shlex.quote(u) for u in units)
    return f"""#!/bin/bash
# Start or restart: {", ".join(units)}. Verification: each unit is active.
set -uo pipefail
systemctl daemon-reload
for unit in {names}; do
  systemctl enable --quiet "$unit"
  systemctl restart "$unit"
done
deadline=$((SECONDS + {settle_seconds}))
for unit in {names}; do
  until systemctl is-active --quiet "$unit"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$unit is not active on $(hostname):" >&2
      systemctl status "$unit" --no-pager -l >&2 || true
      journalctl -u "$unit" --no-pager -n 30 >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$unit is active on $(hostname)"
done
"""
