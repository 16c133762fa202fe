"""The kubelet: its configuration, its kubeconfig and serving certificate (the node's own identity), and its unit.

Its row (SERVICE) says when it restarts: a change of any file below or of the kubernetes-node release, after
containerd and haproxy, with a running node drained first and only once the whole control plane has rolled."""

from __future__ import annotations

import json

from cluster.render.common import BIN_DIR, CA_CERT, UNIT_DIR, NodeFile, flags, systemd_unit
from cluster.render.services import Service, Skew, units
from cluster.render.workers.containerd import CONTAINERD_SOCKET
from cluster.render.workers.node import PRIVATE, PUBLIC, WorkerInputs, node_kubeconfig
from infra.instance_types import Capacity, capacity

KUBELET_DIR = "/var/lib/kubelet"
KUBELET_CONFIG = f"{KUBELET_DIR}/config.yaml"        # where kubeadm puts it and audit tools (kube-bench) look
KUBELET_KUBECONFIG = f"{KUBELET_DIR}/kubeconfig"
KUBELET_CERT = f"{KUBELET_DIR}/kubelet.crt"
KUBELET_KEY = f"{KUBELET_DIR}/kubelet.key"


def files(inputs: WorkerInputs) -> list[NodeFile]:
    identity = f"system:node:{inputs.node_name}"
    return [
        NodeFile(CA_CERT, inputs.ca_pem, PUBLIC),
        NodeFile(KUBELET_CERT, inputs.kubelet_cert_pem, PUBLIC),
        NodeFile(KUBELET_KEY, inputs.kubelet_key_pem, PRIVATE, secret=True),
        NodeFile(KUBELET_KUBECONFIG, node_kubeconfig(inputs, identity, inputs.kubelet_cert_pem,
                                                     inputs.kubelet_key_pem), PRIVATE, secret=True),
        NodeFile(KUBELET_CONFIG, kubelet_config(inputs), PRIVATE),
        # CIS 4.1.1 asks 600 of this one unit (systemd then warns on each reload; it still reads it).
        NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", unit(inputs), PRIVATE),
    ]


# It runs pods on containerd and reaches the API through haproxy. Its restart stops the node's pods: a running node
# is drained first. Last in the skew order: never newer than an API server mid-upgrade.
SERVICE = Service("kubelet", files=files, artifacts=("kubernetes-node",), after=("containerd", "haproxy"),
                  drains=True, skew=Skew.NODE, report_rank=0, runs=("kubelet",))

# CIS 4.2.12: the benchmark's list of strong suites (AEAD with forward secrecy). TLS 1.3 suites are not
# configurable in Go and are all strong.
STRONG_TLS_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
)
# CIS 4.2.13. 110 pods (the kubelet's maxPods) x 4096 = 450,560 PIDs, well under Ubuntu 24.04's pid_max of
# 4,194,304, so no pod can exhaust the node's PIDs; 4096 is far above what a normal pod uses (nginx: a handful of
# processes, CoreDNS: tens of threads).
POD_PIDS_LIMIT = 4096
# CIS 4.2.8: the kubelet's default, stated; 0 would mean unlimited.
EVENT_RECORD_QPS = 50

# What the node keeps back from pods. kubeReserved (the kubelet and containerd) follows GKE's published sizing
# (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes): memory by tiers of the node's memory, CPU by
# tiers of its cores. systemReserved is the rest of the OS (sshd, journald, haproxy, chrony).
KUBE_RESERVED_MEMORY_TIERS = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (None, 0.02))   # (GiB of memory, share)
KUBE_RESERVED_CPU_TIERS = ((1, 0.06), (1, 0.01), (2, 0.005), (None, 0.0025))                 # (cores, share)
SMALL_NODE_KUBE_RESERVED_MIB = 255                                                         # under 1 GiB of memory
SYSTEM_RESERVED = {"cpu": "100m", "memory": "100Mi"}
# Hard eviction at 2% of the node's memory, never under the kubelet's default 100 MiB; soft eviction (pods get
# EVICTION_MAX_POD_GRACE_SECONDS to stop) at twice that, held for EVICTION_SOFT_GRACE.
EVICTION_HARD_MEMORY_SHARE = 0.02
EVICTION_HARD_MEMORY_MIN_MIB = 100
EVICTION_SOFT_GRACE = "1m30s"
EVICTION_MAX_POD_GRACE_SECONDS = 60
# Setting evictionHard replaces the kubelet's whole default map: its disk signals are restated as they default.
EVICTION_HARD_DISK = {"nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%",
                      "imagefs.inodesFree": "5%"}
# A system container's filesystems are directories on its host's disk, shared with the host and its other machines:
# a share of that disk says nothing about the node (a host disk 85% full evicted every pod of a lab whose nodes had
# used a few GiB), so the node keeps back fixed amounts instead, and image garbage collection, which would delete
# images to free a disk it does not own, is off (a high threshold of 100%).
EVICTION_HARD_DISK_SHARED = {"nodefs.available": "1Gi", "nodefs.inodesFree": "5%", "imagefs.available": "1Gi",
                             "imagefs.inodesFree": "5%"}
IMAGE_GC_OFF = {"imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99}


def _tiered(amount: float, tiers) -> float:
    reserved, left = 0.0, amount
    for size, share in tiers:
        part = left if size is None else min(left, size)
        reserved += part * share
        left -= part
    return reserved


def node_allocation(capacity: Capacity) -> dict:
    """The KubeletConfiguration fields that keep resources back from pods on a node of this size."""
    memory_gib = capacity.memory_mib / 1024
    kube_memory = SMALL_NODE_KUBE_RESERVED_MIB if memory_gib < 1 else round(
        _tiered(memory_gib, KUBE_RESERVED_MEMORY_TIERS) * 1024)
    kube_cpu = round(_tiered(capacity.vcpus, KUBE_RESERVED_CPU_TIERS) * 1000)
    hard = max(EVICTION_HARD_MEMORY_MIN_MIB, round(capacity.memory_mib * EVICTION_HARD_MEMORY_SHARE))
    return {
        "kubeReserved": {"cpu": f"{kube_cpu}m", "memory": f"{kube_memory}Mi"},
        "systemReserved": dict(SYSTEM_RESERVED),
        "evictionHard": {"memory.available": f"{hard}Mi", **EVICTION_HARD_DISK},
        "evictionSoft": {"memory.available": f"{2 * hard}Mi"},
        "evictionSoftGracePeriod": {"memory.available": EVICTION_SOFT_GRACE},
        "evictionMaxPodGracePeriod": EVICTION_MAX_POD_GRACE_SECONDS,
    }


def kubelet_config(inputs: WorkerInputs) -> str:
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": CA_CERT}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "clusterDomain": "cluster.local",
        "clusterDNS": [inputs.cluster_dns_ip],
        # Ubuntu's /etc/resolv.conf points at systemd-resolved's 127.0.0.53, which makes CoreDNS loop.
        "resolvConf": "/run/systemd/resolve/resolv.conf",
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": KUBELET_CERT,
        "tlsPrivateKeyFile": KUBELET_KEY,
        "tlsCipherSuites": list(STRONG_TLS_CIPHER_SUITES),
        # Every container gets the runtime's default seccomp profile unless its pod asks for another.
        "seccompDefault": True,
        "podPidsLimit": POD_PIDS_LIMIT,
        # Refuse to start on kernel settings other than the kubelet's (prepare-os sets and checks them) instead
        # of silently rewriting them.
        "protectKernelDefaults": True,
        "makeIPTablesUtilChains": True,
        "eventRecordQPS": EVENT_RECORD_QPS,
        # rotateCertificates stays at its default (false): this cluster runs no CSR signer or approver; `pulumi up`
        # renews the kubelet's certificates before they expire.
        "registerNode": True,
        "failSwapOn": True,
        "shutdownGracePeriod": "30s",
        "shutdownGracePeriodCriticalPods": "10s",
        # Sized for the worker's instance type (node_allocation above).
        **node_allocation(capacity(inputs.instance_type)),
    }
    if inputs.host.allow_cgroup_v1:
        doc["failCgroupV1"] = False
    if inputs.host.system_container:
        doc["evictionHard"] = {**doc["evictionHard"], **EVICTION_HARD_DISK_SHARED}
        doc.update(IMAGE_GC_OFF)
    return json.dumps(doc, indent=2) + "\n"


def kubelet_flags(inputs: WorkerInputs) -> list[tuple[str, str | None]]:
    """No --hostname-override (CIS 4.2.7): cloud-init set the hostname to the node name."""
    return [("config", KUBELET_CONFIG), ("kubeconfig", KUBELET_KUBECONFIG), ("node-ip", inputs.node_ip), ("v", "2")]


def unit(inputs: WorkerInputs) -> str:
    """Requires containerd (a restart of containerd restarts the kubelet); only wants haproxy."""
    return systemd_unit(
        description="Kubernetes kubelet",
        documentation="https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
        exec_start=flags(f"{BIN_DIR}/kubelet", kubelet_flags(inputs)),
        after=units(SERVICE.after), wants=units(["haproxy"]), requires=units(["containerd"]))
