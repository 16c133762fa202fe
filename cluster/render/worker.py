"""Worker: OS preparation, containerd + runc + CNI bridge, the node-local API proxy, kubelet and kube-proxy.

No pod range is written here: a small node-local service (`k8s-cni-config`) reads the podCIDR the controller-manager
assigned this node (node.spec.podCIDR) and keeps the CNI config on it. containerd's own `conf_template` is not used:
containerd renders it once and never again, so a node that re-registers with another range would keep handing out
addresses from the old one.

File modes follow the CIS Kubernetes Benchmark (section 4.1): the kubelet unit, configs and kubeconfigs 0600,
owned by root. Certificates and the other units stay world-readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from cluster.render.common import BIN_DIR, CA_CERT, NodeFile, flags, kubeconfig, systemd_unit

KUBELET_DIR = "/var/lib/kubelet"
KUBE_PROXY_DIR = "/var/lib/kube-proxy"
CNI_CONF_DIR = "/etc/cni/net.d"
CNI_BIN_DIR = "/opt/cni/bin"
# Outside net.d, so that no CNI loader ever reads the template itself.
CNI_TEMPLATE = "/etc/cni/k8s-pod-network.conflist.tmpl"
CNI_CONFLIST = f"{CNI_CONF_DIR}/10-k8s-pod-network.conflist"
# Written by containerd's conf_template on nodes installed by earlier versions; it sorts first and would win.
LEGACY_CNI_CONFLIST = f"{CNI_CONF_DIR}/10-containerd-net.conflist"
POD_CIDR_PLACEHOLDER = "@POD_CIDR@"
CNI_CONFIG_SYNC = "/usr/local/sbin/k8s-cni-config"
CNI_CONFIG_SYNC_INTERVAL_SECONDS = 10
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
KUBELET_CONFIG = f"{KUBELET_DIR}/config.yaml"        # where kubeadm puts it and audit tools (kube-bench) look
KUBELET_KUBECONFIG = f"{KUBELET_DIR}/kubeconfig"
KUBE_PROXY_CONFIG = f"{KUBE_PROXY_DIR}/kube-proxy-config.yaml"
PRIVATE = "0600"      # the kubelet unit, configs, kubeconfigs, keys (CIS 4.1.1, 4.1.3, 4.1.5, 4.1.9)
PUBLIC = "0644"       # certificates (CIS 4.1.7 allows 644)
# Units no benchmark item covers. 0600 would gain nothing: systemd serves every unit's contents to any local user
# over D-Bus, and warns on each reload that such a file is "marked world-inaccessible". They hold no secret.
UNIT = "0644"
# Kubelets and kube-proxy talk to this node-local proxy, which spreads over every controller. They never wait for the
# load balancer, and keep working when it is slow or down.
API_PROXY = "https://127.0.0.1:6443"
BRIDGE = "cni0"


@dataclass(frozen=True)
class NodeHost:
    """What the worker runs on. The defaults are the EC2 nodes: cgroup v2, a kernel of their own.
    `allow_cgroup_v1`: the host only has cgroup v1, which kubelet 1.35+ refuses unless told (failCgroupV1: false).
    `system_container`: the node is a system container (systemd-nspawn, LXC) sharing its host's kernel; it may
    neither size the kernel-wide conntrack table (kube-proxy) nor lower a process's OOM score (containerd)."""
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
    names = " ".join(name for name, _ in MODULES)
    modules = "\n".join(name for name, _ in MODULES)
    present = "\n".join(f"    {name}) {test} ;;" for name, test in MODULES)
    sysctls = "\n".join(f"{k} = {v}" for k, v in SYSCTLS)
    expected = " ".join(f"{k}={v}" for k, v in SYSCTLS)
    return f"""#!/bin/bash
# Prepare the OS of a worker. Verification: {"cgroup v1 or v2" if host.allow_cgroup_v1 else "cgroup v2"}, kernel features present, the sysctls the kubelet expects
# in effect, swap off.
set -euo pipefail
{CGROUP_V1_ALLOWED if host.allow_cgroup_v1 else CGROUP_V2_REQUIRED}
cat > /etc/modules-load.d/kubernetes.conf <<'EOF'
{modules}
EOF
feature_present() {{
  case "$1" in
{present}
  esac
}}
for module in {names}; do
  # A kernel with the feature built in has nothing to load: only a feature that is still missing is an error.
  feature_present "$module" || modprobe "$module" || true
  if ! feature_present "$module"; then
    echo "$(hostname): the kernel has no $module (not built in, and modprobe could not load it)" >&2
    exit 1
  fi
done
cat > /etc/sysctl.d/90-kubernetes.conf <<'EOF'
{sysctls}
EOF
# Another file may fail to apply (a key this kernel lacks); what counts is that ours hold, checked next.
sysctl --quiet --system || true
wrong=()
for setting in {expected}; do
  key=${{setting%%=*}}
  want=${{setting#*=}}
  got=$(sysctl -n "$key" 2>/dev/null || echo missing)
  [ "$got" = "$want" ] || wrong+=("$key=$got (want $want)")
done
if [ "${{#wrong[@]}}" -gt 0 ]; then
  echo "$(hostname): sysctls the kubelet needs are not in effect (does a later /etc/sysctl.d file override" \\
    "90-kubernetes.conf?): ${{wrong[*]}}" >&2
  exit 1
fi
swapoff -a
{FSTAB_SWAP_OFF}
missing=()
for pkg in {" ".join(PACKAGES)}; do
  dpkg-query -W -f='${{Status}}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${{#missing[@]}}" -gt 0 ]; then
  # unattended-upgrades may hold the dpkg lock for a while after first boot: wait for it, within a bound.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${{missing[@]}}"
fi
install -d -m 0755 {CNI_BIN_DIR} {CNI_CONF_DIR} {KUBELET_DIR} {KUBE_PROXY_DIR} /etc/containerd
"""


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
    return f"""#!/bin/bash
# Keep the CNI config of {node_name} on the pod range the controller-manager assigned it (node.spec.podCIDR).
# Verification: the journal of k8s-cni-config says which range the config uses.
set -uo pipefail
umask 077
node={node_name}
template={template}
conflist={conflist}
legacy={legacy}
last_report=""
report() {{
  # Say each problem once, not every {interval_seconds}s while the node waits for its range.
  [ "$1" = "$last_report" ] || echo "$1" >&2
  last_report=$1
}}
sync_once() {{
  local cidr wanted
  if ! cidr=$({kubectl} get node "$node" -o jsonpath='{{.spec.podCIDR}}' 2>&1); then
    report "cannot read node $node yet: $cidr"
    return 1
  fi
  if ! [[ $cidr =~ ^[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}/[0-9]{{1,2}}$ ]]; then
    report "node $node has no podCIDR yet"
    return 1
  fi
  wanted=$(sed "s|{POD_CIDR_PLACEHOLDER}|$cidr|g" "$template") || return 1
  if [ ! -f "$conflist" ] || [ "$(cat "$conflist")" != "$wanted" ]; then
    # Renamed into place inside the watched directory: containerd reloads on that rename but ignores a file
    # moved in from elsewhere (it skips create events). libcni never loads a .tmp file.
    {{ printf '%s\\n' "$wanted" > "$conflist.tmp" && mv -f "$conflist.tmp" "$conflist"; }} || return 1
    echo "CNI config now uses podCIDR $cidr"
  fi
  if [ -e "$legacy" ]; then
    rm -f "$legacy"
    echo "removed $legacy (containerd's template output from an earlier install)"
  fi
  last_report=""
}}
if [ "${{1:-}}" = "--once" ]; then
  sync_once
  exit
fi
while :; do
  sync_once
  sleep {interval_seconds}
done
"""


def cni_config_sync_unit() -> str:
    return systemd_unit(description="Keep the CNI config on this node's podCIDR", exec_start=[CNI_CONFIG_SYNC],
                        after=("haproxy.service",), wants=("haproxy.service",))


# The registries the cluster's images come from (cluster/versions.py IMAGES), each with the address containerd
# would use without hosts.toml.
UPSTREAM_REGISTRIES = {"docker.io": "https://registry-1.docker.io", "registry.k8s.io": "https://registry.k8s.io"}
REGISTRY_HOSTS_DIR = "/etc/containerd/certs.d"


def registry_hosts(mirror: str) -> dict[str, str]:
    """containerd's hosts.toml per upstream registry: pull and resolve through the mirror first, then the upstream
    (`server`), so an air-gapped node only ever asks the mirror and a mirrored one survives the mirror's outage."""
    return {registry: f"""server = '{upstream}'

[host.'{mirror}']
  capabilities = ['pull', 'resolve']
""" for registry, upstream in UPSTREAM_REGISTRIES.items()}


def containerd_config(pause_image: str, host: NodeHost = NodeHost()) -> str:
    # A system container may raise a process's OOM score but not lower it (no CAP_SYS_RESOURCE over the host's
    # kernel): the pod sandbox's -998 would fail the container's start.
    oom = """
  restrict_oom_score_adj = true
""" if host.system_container else ""
    return f"""version = 3

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

  [plugins.'io.containerd.cri.v1.images'.registry]
    # hosts.toml per registry (a mirror, when imageRegistryMirror is set); none there: the registry itself.
    config_path = '{REGISTRY_HOSTS_DIR}'

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{pause_image}'

[plugins.'io.containerd.cri.v1.runtime']{oom}
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{BIN_DIR}/runc'
        SystemdCgroup = true

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{CNI_BIN_DIR}']
    conf_dir = '{CNI_CONF_DIR}'
"""


def crictl_config() -> str:
    """crictl talks to containerd straight away instead of probing every known socket (warning about each)."""
    return f"""runtime-endpoint: unix://{CONTAINERD_SOCKET}
image-endpoint: unix://{CONTAINERD_SOCKET}
timeout: 10
"""


def containerd_unit() -> str:
    """Upstream's containerd.service (v2.4.2). No LimitNOFILE: the CRI passes containerd's own limit on to every
    container, and `infinity` gives each about a billion open files (upstream dropped it in 3ca39ef01, 2023)."""
    return systemd_unit(
        description="containerd container runtime",
        documentation="https://containerd.io",
        exec_start=[f"{BIN_DIR}/containerd", "--config=/etc/containerd/config.toml"],
        after=("network.target", "dbus.service"), wants=(),
        service={"ExecStartPre": "-/sbin/modprobe overlay", "Type": "notify", "Delegate": "yes",
                 "KillMode": "process", "LimitNPROC": "infinity", "LimitCORE": "infinity",
                 "TasksMax": "infinity", "OOMScoreAdjust": "-999"},
    )


def haproxy_config(controller_ips: Sequence[str]) -> str:
    servers = "\n".join(f"  server controller-{n} {ip}:6443 check check-ssl verify none"
                        for n, ip in enumerate(controller_ips))
    return f"""# Node-local TCP proxy to every API server: kubelet and kube-proxy use https://127.0.0.1:6443.
# TLS passes through untouched (clients verify the API server certificate, which names 127.0.0.1);
# the health check asks /readyz so that a server that is up but not ready gets no new connections.
# haproxy reads this file as root, then runs as the haproxy user inside an empty chroot, as Debian's default does.
global
  log /dev/log local0 warning
  maxconn 4096
  chroot /var/lib/haproxy
  user haproxy
  group haproxy

defaults
  mode tcp
  log global
  option tcplog
  # A connection a server refuses (an API server restarting, not yet marked down by the checks) is tried again on
  # another server instead of failing the client.
  retries 3
  option redispatch
  timeout connect 5s
  timeout client 4h
  timeout server 4h

frontend kube-apiserver
  bind 127.0.0.1:6443
  default_backend controllers

backend controllers
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  default-server inter 5s fall 2 rise 2
{servers}
"""


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


def kubelet_config(i: WorkerInputs) -> str:
    doc = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": CA_CERT}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "clusterDomain": "cluster.local",
        "clusterDNS": [i.cluster_dns_ip],
        # Ubuntu's /etc/resolv.conf points at systemd-resolved's 127.0.0.53, which makes CoreDNS loop.
        "resolvConf": "/run/systemd/resolve/resolv.conf",
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": f"{KUBELET_DIR}/kubelet.crt",
        "tlsPrivateKeyFile": f"{KUBELET_DIR}/kubelet.key",
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
    }
    if i.host.allow_cgroup_v1:
        doc["failCgroupV1"] = False
    return json.dumps(doc, indent=2) + "\n"


def kubelet_flags(i: WorkerInputs) -> list[tuple[str, str | None]]:
    """No --hostname-override (CIS 4.2.7): cloud-init set the hostname to the node name."""
    return [("config", KUBELET_CONFIG), ("kubeconfig", KUBELET_KUBECONFIG), ("node-ip", i.node_ip), ("v", "2")]


def kube_proxy_config(i: WorkerInputs) -> str:
    """No hostnameOverride: kube-proxy finds its Node by the hostname, which cloud-init set to the node name.
    metricsBindAddress stays at its default, 127.0.0.1:10249 (CIS 4.3.1)."""
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": f"{KUBE_PROXY_DIR}/kubeconfig"},
        "mode": "iptables",
        "clusterCIDR": i.pod_cidr,
    }
    if i.host.system_container:
        # nf_conntrack_max is the host's (and read-only from a child network namespace): leave it as it is.
        doc["conntrack"] = {"maxPerCore": 0}
    return json.dumps(doc, indent=2) + "\n"


def worker_units(i: WorkerInputs) -> dict[str, str]:
    return {
        "containerd": containerd_unit(),
        "kubelet": systemd_unit(
            description="Kubernetes kubelet", documentation="https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
            exec_start=flags(f"{BIN_DIR}/kubelet", kubelet_flags(i)),
            after=("containerd.service", "haproxy.service"), wants=("haproxy.service",),
            requires=("containerd.service",)),
        "kube-proxy": systemd_unit(
            description="Kubernetes kube-proxy", documentation="https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
            exec_start=flags(f"{BIN_DIR}/kube-proxy", [("config", KUBE_PROXY_CONFIG)]),
            after=("network-online.target", "haproxy.service")),
        "k8s-cni-config": cni_config_sync_unit(),
    }


def worker_files(i: WorkerInputs) -> dict[str, list[NodeFile]]:
    """Files by the service that reads them (a change restarts exactly those services)."""
    units = worker_units(i)

    def kc(user: str, cert: str, key: str) -> str:
        return kubeconfig(cluster=i.cluster_name, server=API_PROXY, ca_pem=i.ca_pem, user=user, cert_pem=cert,
                          key_pem=key)

    return {
        "haproxy": [NodeFile("/etc/haproxy/haproxy.cfg", haproxy_config(i.controller_ips), PRIVATE)],
        "containerd": [
            NodeFile("/etc/containerd/config.toml", containerd_config(i.pause_image, i.host), PRIVATE),
            *(NodeFile(f"{REGISTRY_HOSTS_DIR}/{registry}/hosts.toml", text, PRIVATE)
              for registry, text in (registry_hosts(i.registry_mirror) if i.registry_mirror else {}).items()),
            NodeFile("/etc/crictl.yaml", crictl_config(), PRIVATE),
            NodeFile("/etc/systemd/system/containerd.service", units["containerd"], UNIT),
        ],
        "k8s-cni-config": [
            NodeFile(CNI_TEMPLATE, cni_template(), PRIVATE),
            NodeFile(CNI_CONFIG_SYNC, cni_config_sync_script(i.node_name), "0700"),
            NodeFile("/etc/systemd/system/k8s-cni-config.service", units["k8s-cni-config"], UNIT),
        ],
        "kubelet": [
            NodeFile(CA_CERT, i.ca_pem, PUBLIC),
            NodeFile(f"{KUBELET_DIR}/kubelet.crt", i.kubelet_cert_pem, PUBLIC),
            NodeFile(f"{KUBELET_DIR}/kubelet.key", i.kubelet_key_pem, PRIVATE, secret=True),
            NodeFile(KUBELET_KUBECONFIG, kc(f"system:node:{i.node_name}", i.kubelet_cert_pem, i.kubelet_key_pem),
                     PRIVATE, secret=True),
            NodeFile(KUBELET_CONFIG, kubelet_config(i), PRIVATE),
            # CIS 4.1.1 asks 600 of this one unit (systemd then warns on each reload; it still reads it).
            NodeFile("/etc/systemd/system/kubelet.service", units["kubelet"], PRIVATE),
        ],
        "kube-proxy": [
            NodeFile(f"{KUBE_PROXY_DIR}/kubeconfig", kc("system:kube-proxy", i.kube_proxy_cert_pem,
                                                        i.kube_proxy_key_pem), PRIVATE, secret=True),
            NodeFile(KUBE_PROXY_CONFIG, kube_proxy_config(i), PRIVATE),
            NodeFile("/etc/systemd/system/kube-proxy.service", units["kube-proxy"], UNIT),
        ],
    }


def node_ready_script(node_name: str, timeout_seconds: int = 600) -> str:
    """Verification, on the worker with its own identity: the node is registered and Ready."""
    return f"""#!/bin/bash
# Verification: {node_name} is a Ready node.
set -uo pipefail
deadline=$((SECONDS + {timeout_seconds}))
kubectl() {{ {BIN_DIR}/kubectl --kubeconfig {KUBELET_KUBECONFIG} "$@"; }}
until [ "$(kubectl get node {node_name} -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null)" = "True" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node {node_name} is not Ready after {timeout_seconds}s:" >&2
    kubectl get node {node_name} -o wide >&2 || true
    for unit in kubelet containerd k8s-cni-config kube-proxy haproxy; do
      echo "--- last lines of the $unit log on {node_name}:" >&2
      journalctl -u "$unit" --no-pager -n 20 >&2 || true
    done
    exit 1
  fi
  sleep 5
done
kubectl get node {node_name} -o wide
"""
