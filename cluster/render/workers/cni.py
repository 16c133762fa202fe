"""The pod network's CNI config, kept on the podCIDR the controller-manager assigned this node.

No pod range is written here: a small node-local service (`k8s-cni-config`) reads the podCIDR the controller-manager
assigned this node (node.spec.podCIDR) and keeps the CNI config on it. containerd's own `conf_template` is not used:
containerd renders it once and never again, so a node that re-registers with another range would keep handing out
addresses from the old one.
"""

from __future__ import annotations

import json

from cluster.render import shell
from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, systemd_unit
from cluster.render.services import Service, units
from cluster.render.workers.kubelet import KUBELET_KUBECONFIG
from cluster.render.workers.node import CNI_CONF_DIR, PRIVATE, UNIT, WorkerInputs

# Outside net.d, so that no CNI loader ever reads the template itself.
CNI_TEMPLATE = "/etc/cni/k8s-pod-network.conflist.tmpl"
CNI_CONFLIST = f"{CNI_CONF_DIR}/10-k8s-pod-network.conflist"
# Written by containerd's conf_template on nodes installed by earlier versions; it sorts first and would win.
LEGACY_CNI_CONFLIST = f"{CNI_CONF_DIR}/10-containerd-net.conflist"
POD_CIDR_PLACEHOLDER = "@POD_CIDR@"
CNI_CONFIG_SYNC = "/usr/local/sbin/k8s-cni-config"
CNI_CONFIG_SYNC_INTERVAL_SECONDS = 10
BRIDGE = "cni0"


def files(inputs: WorkerInputs) -> list[NodeFile]:
    return [
        NodeFile(CNI_TEMPLATE, cni_template(), PRIVATE),
        NodeFile(CNI_CONFIG_SYNC, cni_config_sync_script(inputs.node_name), "0700"),
        NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", unit(), UNIT),
    ]


# It reads the node's range through haproxy with kubectl, run anew every few seconds: kubectl must be installed, but
# a new one needs no restart.
SERVICE = Service("k8s-cni-config", files=files, uses=("kubernetes-node",), after=("haproxy",), report_rank=2)


def cni_conflist(subnet: str) -> str:
    """The bridge network for one node's pod range. Masquerading is not the plugin's job here: one explicit
    rule per node does it (see the pod network step), so traffic between pods keeps its source address.
    `forceAddress`: after a node re-registers with another range, the bridge takes the new gateway address instead
    of the plugin failing because cni0 still holds the old one."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "forceAddress": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                         "routes": [{"dst": "0.0.0.0/0"}]},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def cni_template() -> str:
    """The conflist with a placeholder where the node's podCIDR goes; `cni_config_sync_script` fills it in."""
    return cni_conflist(POD_CIDR_PLACEHOLDER)


def cni_config_sync_script(node_name: str, *, kubectl: str = f"{BIN_DIR}/kubectl --kubeconfig {KUBELET_KUBECONFIG}",
                           template: str = CNI_TEMPLATE, conflist: str = CNI_CONFLIST,
                           legacy: str = LEGACY_CNI_CONFLIST,
                           interval_seconds: int = CNI_CONFIG_SYNC_INTERVAL_SECONDS) -> str:
    """Keep the CNI config on node.spec.podCIDR: read it with the node's own identity (the Node authorizer lets a
    kubelet read its own Node) and rewrite the conflist whenever it differs. containerd watches the directory and
    reloads the config by itself. `--once` syncs once and exits (for operators and tests)."""
    return shell.render("workers/k8s-cni-config.sh", NODE=node_name, TEMPLATE=template, CONFLIST=conflist,
                        LEGACY=legacy, INTERVAL_SECONDS=interval_seconds, KUBECTL=kubectl,
                        POD_CIDR_PLACEHOLDER=POD_CIDR_PLACEHOLDER)


def unit() -> str:
    return systemd_unit(description="Keep the CNI config on this node's podCIDR", exec_start=[CNI_CONFIG_SYNC],
                        after=units(SERVICE.after), wants=units(SERVICE.after))
