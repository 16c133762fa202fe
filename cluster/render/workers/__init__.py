"""Workers: what each worker receives, one module per service (its files and its row), assembled here.

prepare_os.py readies the machine; haproxy, containerd, cni (k8s-cni-config), kubelet and kube_proxy each hold one
service's files, unit and row (cluster/render/services.py). SERVICES lists the rows in start order: cluster/workers.py
reads them for the installs, the start steps, the drain and the skew waits, and this module for the files by service
and the node-ready check's report.
"""

from __future__ import annotations

from cluster.render import shell
from cluster.render.common import BIN_DIR, NodeFile
from cluster.render.services import in_report_order
from cluster.render.workers import cni, containerd, haproxy, kube_proxy, kubelet
from cluster.render.workers.kubelet import KUBELET_KUBECONFIG
from cluster.render.workers.node import WorkerInputs

# The worker's services in start order, each row beside its files (kops' builder list).
SERVICES = (haproxy.SERVICE, containerd.SERVICE, cni.SERVICE, kubelet.SERVICE, kube_proxy.SERVICE)


def worker_files(inputs: WorkerInputs) -> dict[str, list[NodeFile]]:
    """Files by the service that reads them (a change restarts exactly that service)."""
    return {service.name: service.files(inputs) for service in SERVICES}


def worker_units(inputs: WorkerInputs) -> dict[str, str]:
    """The units a worker receives (haproxy's comes with its package)."""
    return {"containerd": containerd.unit(), "kubelet": kubelet.unit(inputs), "kube-proxy": kube_proxy.unit(),
            "k8s-cni-config": cni.unit()}


def node_ready_script(node_name: str, timeout_seconds: int = 600) -> str:
    """Verification, on the worker with its own identity: the node is registered and Ready. Otherwise, the last log
    lines of each service, the kubelet's first."""
    log_tails = shell.render("lib/journal-tails.sh", UNITS=" ".join(in_report_order(SERVICES)), HOST=node_name)
    return shell.render("workers/node-ready.sh", NODE=node_name, TIMEOUT_SECONDS=timeout_seconds, BIN_DIR=BIN_DIR,
                        KUBECONFIG=KUBELET_KUBECONFIG, LOG_TAILS=log_tails)
