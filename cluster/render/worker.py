"""Worker: OS preparation, containerd + runc + CNI bridge, the node-local API proxy, kubelet and kube-proxy.

No pod range is written here: containerd renders the node's CNI config from its template once the kubelet passes
on the podCIDR the controller-manager assigned (node.spec.podCIDR).
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
CNI_TEMPLATE = "/etc/containerd/cni-bridge.conflist.tmpl"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
# Kubelets and kube-proxy talk to this node-local proxy, which spreads over every controller. They never wait for the
# load balancer, and keep working when it is slow or down.
API_PROXY = "https://127.0.0.1:6443"
BRIDGE = "cni0"


@dataclass(frozen=True)
class WorkerInputs:
    cluster_name: str
    node_name: str
    node_ip: str
    controller_ips: Sequence[str]
    pod_cidr: str                  # the whole cluster range (kube-proxy's clusterCIDR)
    cluster_dns_ip: str
    pause_image: str
    ca_pem: str
    kubelet_cert_pem: str
    kubelet_key_pem: str
    kube_proxy_cert_pem: str
    kube_proxy_key_pem: str


MODULES = ("overlay", "br_netfilter")
SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
)
PACKAGES = ("socat", "conntrack", "ipset", "kmod", "haproxy", "iptables")


def os_prep_script() -> str:
    """Kernel modules, sysctls and packages the kubelet and kube-proxy need; swap off for good. Idempotent."""
    modules = "\n".join(MODULES)
    sysctls = "\n".join(f"{k} = {v}" for k, v in SYSCTLS)
    return f"""#!/bin/bash
# Prepare the OS of a worker. Verification: cgroup v2, modules loaded, forwarding on, swap off.
set -euo pipefail
if [ "$(stat -fc %T /sys/fs/cgroup)" != "cgroup2fs" ]; then
  echo "$(hostname) does not run cgroup v2; kubelet 1.35+ refuses cgroup v1" >&2
  exit 1
fi
cat > /etc/modules-load.d/kubernetes.conf <<'EOF'
{modules}
EOF
for module in {" ".join(MODULES)}; do modprobe "$module"; done
cat > /etc/sysctl.d/90-kubernetes.conf <<'EOF'
{sysctls}
EOF
sysctl --quiet --system
swapoff -a
sed -i.bak '/\\sswap\\s/s/^/#/' /etc/fstab
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
    rule per node does it (see the pod network step), so traffic between pods keeps its source address."""
    doc = {
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
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
    """containerd fills in {{.PodCIDR}} with the podCIDR the kubelet reports, and writes the result to net.d."""
    return cni_conflist("{{.PodCIDR}}")


def containerd_config(pause_image: str) -> str:
    return f"""version = 3

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{pause_image}'

[plugins.'io.containerd.cri.v1.runtime']
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
    conf_template = '{CNI_TEMPLATE}'
"""


def containerd_unit() -> str:
    return systemd_unit(
        description="containerd container runtime",
        documentation="https://containerd.io",
        exec_start=[f"{BIN_DIR}/containerd", "--config=/etc/containerd/config.toml"],
        after=("network.target", "local-fs.target"), wants=(),
        service={"ExecStartPre": "-/sbin/modprobe overlay", "Type": "notify", "Delegate": "yes",
                 "KillMode": "process", "OOMScoreAdjust": "-999", "LimitNOFILE": "infinity",
                 "LimitNPROC": "infinity", "LimitCORE": "infinity", "TasksMax": "infinity"},
    )


def haproxy_config(controller_ips: Sequence[str]) -> str:
    servers = "\n".join(f"  server controller-{n} {ip}:6443 check check-ssl verify none"
                        for n, ip in enumerate(controller_ips))
    return f"""# Node-local TCP proxy to every API server: kubelet and kube-proxy use https://127.0.0.1:6443.
# TLS passes through untouched (clients verify the API server certificate, which names 127.0.0.1);
# the health check asks /readyz so that a server that is up but not ready gets no new connections.
global
  log /dev/log local0 warning
  maxconn 4096

defaults
  mode tcp
  log global
  option tcplog
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
        "registerNode": True,
        "failSwapOn": True,
        "shutdownGracePeriod": "30s",
        "shutdownGracePeriodCriticalPods": "10s",
    }
    return json.dumps(doc, indent=2) + "\n"


def kubelet_flags(i: WorkerInputs) -> list[tuple[str, str | None]]:
    return [("config", f"{KUBELET_DIR}/kubelet-config.yaml"), ("kubeconfig", f"{KUBELET_DIR}/kubeconfig"),
            ("node-ip", i.node_ip), ("hostname-override", i.node_name), ("v", "2")]


def kube_proxy_config(i: WorkerInputs) -> str:
    doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": f"{KUBE_PROXY_DIR}/kubeconfig"},
        "mode": "iptables",
        "clusterCIDR": i.pod_cidr,
        "hostnameOverride": i.node_name,
    }
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
            exec_start=flags(f"{BIN_DIR}/kube-proxy", [("config", f"{KUBE_PROXY_DIR}/kube-proxy-config.yaml")]),
            after=("network-online.target", "haproxy.service")),
    }


def worker_files(i: WorkerInputs) -> dict[str, list[NodeFile]]:
    """Files by the service that reads them (a change restarts exactly those services)."""
    units = worker_units(i)

    def kc(user: str, cert: str, key: str) -> str:
        return kubeconfig(cluster=i.cluster_name, server=API_PROXY, ca_pem=i.ca_pem, user=user, cert_pem=cert,
                          key_pem=key)

    return {
        "haproxy": [NodeFile("/etc/haproxy/haproxy.cfg", haproxy_config(i.controller_ips))],
        "containerd": [
            NodeFile("/etc/containerd/config.toml", containerd_config(i.pause_image)),
            NodeFile(CNI_TEMPLATE, cni_template()),
            NodeFile("/etc/systemd/system/containerd.service", units["containerd"]),
        ],
        "kubelet": [
            NodeFile(CA_CERT, i.ca_pem),
            NodeFile(f"{KUBELET_DIR}/kubelet.crt", i.kubelet_cert_pem),
            NodeFile(f"{KUBELET_DIR}/kubelet.key", i.kubelet_key_pem, "0600", secret=True),
            NodeFile(f"{KUBELET_DIR}/kubeconfig", kc(f"system:node:{i.node_name}", i.kubelet_cert_pem,
                                                     i.kubelet_key_pem), "0600", secret=True),
            NodeFile(f"{KUBELET_DIR}/kubelet-config.yaml", kubelet_config(i)),
            NodeFile("/etc/systemd/system/kubelet.service", units["kubelet"]),
        ],
        "kube-proxy": [
            NodeFile(f"{KUBE_PROXY_DIR}/kubeconfig", kc("system:kube-proxy", i.kube_proxy_cert_pem,
                                                        i.kube_proxy_key_pem), "0600", secret=True),
            NodeFile(f"{KUBE_PROXY_DIR}/kube-proxy-config.yaml", kube_proxy_config(i)),
            NodeFile("/etc/systemd/system/kube-proxy.service", units["kube-proxy"]),
        ],
    }


def node_ready_script(node_name: str, timeout_seconds: int = 600) -> str:
    """Verification, on the worker with its own identity: the node is registered and Ready."""
    return f"""#!/bin/bash
# Verification: {node_name} is a Ready node.
set -uo pipefail
deadline=$((SECONDS + {timeout_seconds}))
kubectl() {{ {BIN_DIR}/kubectl --kubeconfig {KUBELET_DIR}/kubeconfig "$@"; }}
until [ "$(kubectl get node {node_name} -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null)" = "True" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node {node_name} is not Ready after {timeout_seconds}s:" >&2
    kubectl get node {node_name} -o wide >&2 || true
    for unit in kubelet containerd kube-proxy haproxy; do
      echo "--- last lines of the $unit log on {node_name}:" >&2
      journalctl -u "$unit" --no-pager -n 20 >&2 || true
    done
    exit 1
  fi
  sleep 5
done
kubectl get node {node_name} -o wide
"""
