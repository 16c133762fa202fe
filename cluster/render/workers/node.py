"""What every worker component shares: the renderer inputs, the host kind, file modes and the node-local API.

File modes follow the CIS Kubernetes Benchmark (section 4.1): the kubelet unit, configs and kubeconfigs 0600,
owned by root. Certificates and the other units stay world-readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from cluster.render.common import kubeconfig

PRIVATE = "0600"      # the kubelet unit, configs, kubeconfigs, keys (CIS 4.1.1, 4.1.3, 4.1.5, 4.1.9)
PUBLIC = "0644"       # certificates (CIS 4.1.7 allows 644)
# Units no benchmark item covers. 0600 would gain nothing: systemd serves every unit's contents to any local user
# over D-Bus, and warns on each reload that such a file is "marked world-inaccessible". They hold no secret.
UNIT = "0644"
# Kubelets and kube-proxy talk to this node-local proxy, which spreads over every controller. They never wait for the
# load balancer, and keep working when it is slow or down.
API_PROXY = "https://127.0.0.1:6443"
# Where the CNI plugins (the cni-plugins artifact) and the network configs live: containerd reads both,
# k8s-cni-config writes the config.
CNI_BIN_DIR = "/opt/cni/bin"
CNI_CONF_DIR = "/etc/cni/net.d"


@dataclass(frozen=True)
class NodeHost:
    """What the worker runs on. The defaults are the EC2 nodes: cgroup v2, a kernel of their own.
    `allow_cgroup_v1`: the host only has cgroup v1, which kubelet 1.35+ refuses unless told (failCgroupV1: false).
    `system_container`: the node is a system container (systemd-nspawn, LXC) sharing its host's kernel and disk; it
    may neither size the kernel-wide conntrack table (kube-proxy) nor lower a process's OOM score (containerd), and
    its disk signals measure the host's disk (the kubelet's eviction thresholds and image garbage collection)."""
    allow_cgroup_v1: bool = False
    system_container: bool = False


@dataclass(frozen=True)
class WorkerInputs:
    cluster_name: str
    node_name: str
    node_ip: str
    controller_ips: Sequence[str]
    pod_cidr: str                  # the whole cluster range (kube-proxy's clusterCIDR)
    cluster_dns_ip: str
    pause_image: str
    registry_mirror: str | None    # scheme://host[:port], or None: pull from the registries themselves
    ca_pem: str
    kubelet_cert_pem: str
    kubelet_key_pem: str
    kube_proxy_cert_pem: str
    kube_proxy_key_pem: str
    host: NodeHost = NodeHost()    # settings workers.allowCgroupV1 and workers.systemContainer
    instance_type: str = "t3.medium"     # what the kubelet's reservations are sized for


def node_kubeconfig(inputs: WorkerInputs, user: str, cert_pem: str, key_pem: str) -> str:
    """A kubeconfig for one of the node's identities, through the node-local API proxy."""
    return kubeconfig(cluster=inputs.cluster_name, server=API_PROXY, ca_pem=inputs.ca_pem, user=user,
                      cert_pem=cert_pem, key_pem=key_pem)
