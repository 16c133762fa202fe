"""kube-proxy: Services on this node, as iptables rules."""

from __future__ import annotations

import json

from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, flags, systemd_unit
from cluster.render.services import Service, Skew, units
from cluster.render.workers.node import PRIVATE, UNIT, WorkerInputs, node_kubeconfig

KUBE_PROXY_DIR = "/var/lib/kube-proxy"
KUBE_PROXY_CONFIG = f"{KUBE_PROXY_DIR}/kube-proxy-config.yaml"
KUBE_PROXY_KUBECONFIG = f"{KUBE_PROXY_DIR}/kubeconfig"


def files(inputs: WorkerInputs) -> list[NodeFile]:
    return [
        NodeFile(KUBE_PROXY_KUBECONFIG, node_kubeconfig(inputs, "system:kube-proxy", inputs.kube_proxy_cert_pem,
                                                        inputs.kube_proxy_key_pem), PRIVATE, secret=True),
        NodeFile(KUBE_PROXY_CONFIG, kube_proxy_config(inputs), PRIVATE),
        NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", unit(), UNIT),
    ]


# It reaches the API through haproxy; last in the skew order, with the kubelet. Its restart leaves pods running.
SERVICE = Service("kube-proxy", files=files, artifacts=("kubernetes-node",), after=("haproxy",), skew=Skew.NODE,
                  report_rank=3, runs=("kube-proxy",))


def kube_proxy_config(inputs: WorkerInputs) -> str:
    """No hostnameOverride: kube-proxy finds its Node by the hostname, which cloud-init set to the node name.
    metricsBindAddress stays at its default, 127.0.0.1:10249 (CIS 4.3.1)."""
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": KUBE_PROXY_KUBECONFIG},
        "mode": "iptables",
        "clusterCIDR": inputs.pod_cidr,
        # NodePorts on the node's own address only: not on 127.0.0.1 (where they would set route_localnet=1) nor on
        # any other address the node holds (the pod bridge's gateway).
        "nodePortAddresses": ["primary"],
    }
    if inputs.host.system_container:
        # nf_conntrack_max is the host's (and read-only from a child network namespace): leave it as it is.
        doc["conntrack"] = {"maxPerCore": 0}
    return json.dumps(doc, indent=2) + "\n"


def unit() -> str:
    return systemd_unit(
        description="Kubernetes kube-proxy",
        documentation="https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
        exec_start=flags(f"{BIN_DIR}/kube-proxy", [("config", KUBE_PROXY_CONFIG)]),
        after=("network-online.target", *units(SERVICE.after)))
