"""Scripts every host runs whatever its role: the readiness gate and (re)starting services."""

from __future__ import annotations

import shlex
from typing import Sequence

from cluster.render import shell

GATE_TIMEOUT_SECONDS = 600


def readiness_gate_script(timeout_seconds: int = GATE_TIMEOUT_SECONDS) -> str:
    """The first step on every host. That it runs at all proves SSH answers; it then waits, within a bound, for
    cloud-init to finish (hostname set, packages unlocked) and fails with cloud-init's own account if it did not."""
    return shell.render("readiness-gate.sh", TIMEOUT_SECONDS=timeout_seconds)


STARTED_DIR = "/var/lib/k8s-from-scratch/started"


NO_SWITCH = "switch_releases() { :; }"


def restart_services_script(units: Sequence[str], fingerprint: str, settle_seconds: int = 60, *,
                            reload: bool = False, switch: str = NO_SWITCH) -> str:
    """Reload systemd, enable the units and restart them when they were last started with other inputs, then check
    each stays active. `fingerprint` stands for the inputs (files and binaries); the node keeps it per unit, so the
    same step re-run (after a connection change, say) restarts nothing, while a new machine, changed inputs or a
    unit that is down restart. `reload`: a running unit reloads its configuration instead (`reload-or-restart`).
    `switch`: the `switch_releases` function (cluster/render/install.py) run right before a unit restarts. Every
    wait is bounded."""
    return shell.render("restart-services.sh", UNIT_LIST=", ".join(units), FINGERPRINT=shlex.quote(fingerprint),
                        STARTED_DIR=STARTED_DIR, UNITS=" ".join(shlex.quote(u) for u in units),
                        SETTLE_SECONDS=settle_seconds, VERB="reload-or-restart" if reload else "restart",
                        SWITCH=switch)


# The Amazon Time Sync Service: every EC2 instance reaches it at this link-local address, without any internet route
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html). Ubuntu's chrony.conf reads sources.d.
AMAZON_TIME_SYNC = "169.254.169.123"
CHRONY_SOURCES_DIR = "/etc/chrony/sources.d"


def time_sync_script(timeout_seconds: int = 120) -> str:
    """chrony on the Amazon Time Sync Service, preferred over any other source, checked selected within a bound.
    A container (the lab's machines) shares its host's clock and sets nothing."""
    sources = (f"# The Amazon Time Sync Service (k8s-from-scratch).\n"
               f"server {AMAZON_TIME_SYNC} prefer iburst minpoll 4 maxpoll 4\n")
    return shell.render("time-sync.sh", SERVER=AMAZON_TIME_SYNC, SOURCES_DIR=CHRONY_SOURCES_DIR,
                        SOURCES_FILE=f"{CHRONY_SOURCES_DIR}/amazon-time-sync.sources", SOURCES=sources,
                        TIMEOUT_SECONDS=timeout_seconds)
