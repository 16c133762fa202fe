#!/bin/bash
# Prepare the OS of a worker. Verification: cgroup v2, kernel features present, the sysctls the kubelet expects
# in effect, swap off.
set -euo pipefail
if [ "$(stat -fc %T /sys/fs/cgroup)" != "cgroup2fs" ]; then
  echo "$(hostname) does not run cgroup v2; kubelet 1.35+ refuses cgroup v1" >&2
  exit 1
fi
cat > /etc/modules-load.d/kubernetes.conf <<'EOF'
overlay
br_netfilter
EOF
feature_present() {
  case "$1" in
    overlay) grep -qw overlay /proc/filesystems ;;
    br_netfilter) [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ;;
  esac
}
for module in overlay br_netfilter; do
  # A kernel with the feature built in has nothing to load: only a feature that is still missing is an error.
  feature_present "$module" || modprobe "$module" || true
  if ! feature_present "$module"; then
    echo "$(hostname): the kernel has no $module (not built in, and modprobe could not load it)" >&2
    exit 1
  fi
done
cat > /etc/sysctl.d/90-kubernetes.conf <<'EOF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
vm.overcommit_memory = 1
vm.panic_on_oom = 0
kernel.panic = 10
kernel.panic_on_oops = 1
kernel.keys.root_maxkeys = 1000000
kernel.keys.root_maxbytes = 25000000
EOF
# Another file may fail to apply (a key this kernel lacks); what counts is that ours hold, checked next.
sysctl --quiet --system || true
wrong=()
for setting in net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1 kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000; do
  key=${setting%%=*}
  want=${setting#*=}
  got=$(sysctl -n "$key" 2>/dev/null || echo missing)
  [ "$got" = "$want" ] || wrong+=("$key=$got (want $want)")
done
if [ "${#wrong[@]}" -gt 0 ]; then
  echo "$(hostname): sysctls the kubelet needs are not in effect (does a later /etc/sysctl.d file override" \
    "90-kubernetes.conf?): ${wrong[*]}" >&2
  exit 1
fi
swapoff -a
if grep -qE '^[[:space:]]*[^#[:space:]].*[[:space:]]swap[[:space:]]' /etc/fstab; then
  sed -i.bak -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#/}' /etc/fstab
fi
missing=()
for pkg in socat conntrack ipset kmod haproxy iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # unattended-upgrades may hold the dpkg lock for a while after first boot: wait for it, within a bound.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
fi
install -d -m 0755 /opt/cni/bin /etc/cni/net.d /var/lib/kubelet /var/lib/kube-proxy /etc/containerd
