"""Restoring the whole cluster from one etcd snapshot, as a plan of phases: each phase names the nodes it runs on (at
the same time) and the script each runs as root. Pure: node names in, scripts out. `cluster/restore.py` runs a plan
over SSH (the `sshConfig` output); the lab runs the same plan on its machines.

The order is the Kubernetes procedure (kubernetes.io "Restoring an etcd cluster", etcd-io/etcd#16028): nothing may
write while etcd is replaced, and everything that watches the API resumes only after it, from a store whose revisions
were moved far ahead (`--bump-revision`, `--mark-compacted` in each member's restore), so that every watch and
informer cache relists instead of trusting resource versions from after the snapshot.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence

from cluster.render import shell
from cluster.render.common import BIN_DIR
from cluster.render.control_plane import API_SERVER, CONTROLLERS, DEPLOYER_KUBECTL, apiserver_ready_script
from cluster.render.etcd import CLIENT_PORT, etcdctl_tls
from cluster.render.etcd_backup import RESTORE_SCRIPT, TIMERS
from cluster.render.workers import kube_proxy, kubelet

# Bounds of the phases that wait.
ETCD_HEALTHY_SECONDS = 300
APISERVER_READY_SECONDS = 300
ROLLOUT_SECONDS = 300
STOP_SECONDS = 180           # an API server's stop: its shutdown delay, requests in flight, a margin


@dataclass(frozen=True)
class Phase:
    title: str
    nodes: tuple[str, ...]
    script: str


def _units(*services) -> str:
    return " ".join(s.unit for s in services)


def cluster_restore_plan(*, snapshot: str, etcd: Sequence[str], controllers: Sequence[str],
                         workers: Sequence[str]) -> list[Phase]:
    """The phases, in order. `snapshot`: the path of the same snapshot file on every etcd member."""
    q = shlex.quote
    return [
        Phase("stop every API server: nothing writes while etcd is replaced", tuple(controllers),
              shell.render("restore/stop-apiserver.sh", UNIT=API_SERVER.unit, STOP_SECONDS=STOP_SECONDS)),
        Phase("restore every etcd member from the snapshot (its timers stop too)", tuple(etcd),
              f"#!/bin/bash\nset -euo pipefail\n{RESTORE_SCRIPT} {q(snapshot)}\n"),
        Phase("wait until every etcd member is healthy", tuple(etcd),
              shell.render("restore/etcd-healthy.sh", ETCD_TLS=etcdctl_tls(), BIN_DIR=BIN_DIR,
                           CLIENT_PORT=CLIENT_PORT, TIMEOUT_SECONDS=ETCD_HEALTHY_SECONDS)),
        Phase("start every API server", tuple(controllers),
              shell.render("restore/start.sh", UNITS=API_SERVER.unit, VERB="start")),
        Phase("wait until every API server is ready", tuple(controllers),
              apiserver_ready_script(APISERVER_READY_SECONDS)),
        Phase("restart the controller-managers and schedulers: they relist", tuple(controllers),
              shell.render("restore/start.sh", UNITS=_units(*CONTROLLERS), VERB="restart")),
        Phase("restart every kubelet and kube-proxy: they relist (pods keep running)", tuple(workers),
              shell.render("restore/start.sh", UNITS=_units(kubelet.SERVICE, kube_proxy.SERVICE), VERB="restart")),
        Phase("restart CoreDNS: it relists", tuple(controllers[:1]),
              shell.render("restore/coredns.sh", KUBECTL=" ".join(q(a) for a in DEPLOYER_KUBECTL),
                           TIMEOUT_SECONDS=ROLLOUT_SECONDS)),
        Phase("start the snapshot and defragmentation timers again", tuple(etcd),
              shell.render("restore/start.sh", UNITS=" ".join(TIMERS), VERB="start")),
    ]
