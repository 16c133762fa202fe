"""prepare-os: the kernel features, sysctls and packages the kubelet and kube-proxy need, and swap off for good."""

from __future__ import annotations

from cluster.render import shell
from cluster.render.workers.kube_proxy import KUBE_PROXY_DIR
from cluster.render.workers.kubelet import KUBELET_DIR
from cluster.render.workers.node import CNI_BIN_DIR, CNI_CONF_DIR, NodeHost

# Kernel features by module name, each with the test that tells the feature is there, whether the module was
# loaded or is built into the kernel (then modprobe has nothing to load and may fail).
MODULES = (
    ("overlay", "grep -qw overlay /proc/filesystems"),
    ("br_netfilter", "[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]"),
)
SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    # The values the kubelet checks with protectKernelDefaults, which refuses to start when one differs
    # (k8s.io/component-helpers node/util/sysctl; kubelet cm/container_manager_linux.go setupKernelTunables).
    ("vm.overcommit_memory", "1"),
    ("vm.panic_on_oom", "0"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
)
PACKAGES = ("socat", "conntrack", "ipset", "kmod", "haproxy", "iptables")
# Comment out active swap lines only: a line already commented is left alone, so a re-run changes nothing.
FSTAB_SWAP_OFF = r"""if grep -qE '^[[:space:]]*[^#[:space:]].*[[:space:]]swap[[:space:]]' /etc/fstab; then
  sed -i.bak -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#/}' /etc/fstab
fi"""


CGROUP_V2_REQUIRED = """if [ "$(stat -fc %T /sys/fs/cgroup)" != "cgroup2fs" ]; then
  echo "$(hostname) does not run cgroup v2; kubelet 1.35+ refuses cgroup v1" >&2
  exit 1
fi"""
CGROUP_V1_ALLOWED = """if [ "$(stat -fc %T /sys/fs/cgroup)" != "cgroup2fs" ]; then
  echo "$(hostname) runs cgroup v1, which workers.allowCgroupV1 lets the kubelet use"
fi"""


def os_prep_script(host: NodeHost = NodeHost()) -> str:
    """Kernel features, sysctls and packages the kubelet and kube-proxy need; swap off for good. Idempotent."""
    return shell.render(
        "workers/prepare-os.sh",
        CGROUPS="cgroup v1 or v2" if host.allow_cgroup_v1 else "cgroup v2",
        CGROUP_CHECK=CGROUP_V1_ALLOWED if host.allow_cgroup_v1 else CGROUP_V2_REQUIRED,
        MODULES="\n".join(name for name, _ in MODULES),
        FEATURE_TESTS="\n".join(f"{name}) {test} ;;" for name, test in MODULES),
        MODULE_NAMES=" ".join(name for name, _ in MODULES),
        SYSCTLS="\n".join(f"{k} = {v}" for k, v in SYSCTLS),
        EXPECTED=" ".join(f"{k}={v}" for k, v in SYSCTLS),
        FSTAB_SWAP_OFF=FSTAB_SWAP_OFF,
        PACKAGES=" ".join(PACKAGES),
        DIRECTORIES=" ".join((CNI_BIN_DIR, CNI_CONF_DIR, KUBELET_DIR, KUBE_PROXY_DIR, "/etc/containerd")),
    )
