#!/bin/bash
set -euo pipefail
umask 077

install -d -m 0755 "$(dirname /etc/haproxy/haproxy.cfg)"
tmp=$(mktemp /etc/haproxy/haproxy.cfg.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/haproxy/haproxy.cfg>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/haproxy/haproxy.cfg ] && cmp -s "$tmp" /etc/haproxy/haproxy.cfg && [ "$(stat -c '%a %U' /etc/haproxy/haproxy.cfg)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/haproxy/haproxy.cfg
  echo "changed: /etc/haproxy/haproxy.cfg"
fi

install -d -m 0755 "$(dirname /etc/containerd/config.toml)"
tmp=$(mktemp /etc/containerd/config.toml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/containerd/config.toml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/containerd/config.toml ] && cmp -s "$tmp" /etc/containerd/config.toml && [ "$(stat -c '%a %U' /etc/containerd/config.toml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/containerd/config.toml
  echo "changed: /etc/containerd/config.toml"
fi

install -d -m 0755 "$(dirname /etc/crictl.yaml)"
tmp=$(mktemp /etc/crictl.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/crictl.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/crictl.yaml ] && cmp -s "$tmp" /etc/crictl.yaml && [ "$(stat -c '%a %U' /etc/crictl.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/crictl.yaml
  echo "changed: /etc/crictl.yaml"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/containerd.service)"
tmp=$(mktemp /etc/systemd/system/containerd.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/containerd.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/containerd.service ] && cmp -s "$tmp" /etc/systemd/system/containerd.service && [ "$(stat -c '%a %U' /etc/systemd/system/containerd.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/containerd.service
  echo "changed: /etc/systemd/system/containerd.service"
fi

install -d -m 0755 "$(dirname /etc/cni/k8s-pod-network.conflist.tmpl)"
tmp=$(mktemp /etc/cni/k8s-pod-network.conflist.tmpl.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/cni/k8s-pod-network.conflist.tmpl>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/cni/k8s-pod-network.conflist.tmpl ] && cmp -s "$tmp" /etc/cni/k8s-pod-network.conflist.tmpl && [ "$(stat -c '%a %U' /etc/cni/k8s-pod-network.conflist.tmpl)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/cni/k8s-pod-network.conflist.tmpl
  echo "changed: /etc/cni/k8s-pod-network.conflist.tmpl"
fi

install -d -m 0755 "$(dirname /usr/local/sbin/k8s-cni-config)"
tmp=$(mktemp /usr/local/sbin/k8s-cni-config.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /usr/local/sbin/k8s-cni-config>
K8S_FROM_SCRATCH_EOF
chmod 0700 "$tmp"
chown root: "$tmp"
if [ -f /usr/local/sbin/k8s-cni-config ] && cmp -s "$tmp" /usr/local/sbin/k8s-cni-config && [ "$(stat -c '%a %U' /usr/local/sbin/k8s-cni-config)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /usr/local/sbin/k8s-cni-config
  echo "changed: /usr/local/sbin/k8s-cni-config"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/k8s-cni-config.service)"
tmp=$(mktemp /etc/systemd/system/k8s-cni-config.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/k8s-cni-config.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/k8s-cni-config.service ] && cmp -s "$tmp" /etc/systemd/system/k8s-cni-config.service && [ "$(stat -c '%a %U' /etc/systemd/system/k8s-cni-config.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/k8s-cni-config.service
  echo "changed: /etc/systemd/system/k8s-cni-config.service"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/ca.crt)"
tmp=$(mktemp /etc/kubernetes/pki/ca.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/ca.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/ca.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/ca.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/ca.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/ca.crt
  echo "changed: /etc/kubernetes/pki/ca.crt"
fi

install -d -m 0755 "$(dirname /var/lib/kubelet/kubelet.crt)"
tmp=$(mktemp /var/lib/kubelet/kubelet.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kubelet/kubelet.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kubelet/kubelet.crt ] && cmp -s "$tmp" /var/lib/kubelet/kubelet.crt && [ "$(stat -c '%a %U' /var/lib/kubelet/kubelet.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kubelet/kubelet.crt
  echo "changed: /var/lib/kubelet/kubelet.crt"
fi

install -d -m 0755 "$(dirname /var/lib/kubelet/kubelet.key)"
tmp=$(mktemp /var/lib/kubelet/kubelet.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kubelet/kubelet.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kubelet/kubelet.key ] && cmp -s "$tmp" /var/lib/kubelet/kubelet.key && [ "$(stat -c '%a %U' /var/lib/kubelet/kubelet.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kubelet/kubelet.key
  echo "changed: /var/lib/kubelet/kubelet.key"
fi

install -d -m 0755 "$(dirname /var/lib/kubelet/kubeconfig)"
tmp=$(mktemp /var/lib/kubelet/kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kubelet/kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kubelet/kubeconfig ] && cmp -s "$tmp" /var/lib/kubelet/kubeconfig && [ "$(stat -c '%a %U' /var/lib/kubelet/kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kubelet/kubeconfig
  echo "changed: /var/lib/kubelet/kubeconfig"
fi

install -d -m 0755 "$(dirname /var/lib/kubelet/config.yaml)"
tmp=$(mktemp /var/lib/kubelet/config.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kubelet/config.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kubelet/config.yaml ] && cmp -s "$tmp" /var/lib/kubelet/config.yaml && [ "$(stat -c '%a %U' /var/lib/kubelet/config.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kubelet/config.yaml
  echo "changed: /var/lib/kubelet/config.yaml"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/kubelet.service)"
tmp=$(mktemp /etc/systemd/system/kubelet.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/kubelet.service>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/kubelet.service ] && cmp -s "$tmp" /etc/systemd/system/kubelet.service && [ "$(stat -c '%a %U' /etc/systemd/system/kubelet.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/kubelet.service
  echo "changed: /etc/systemd/system/kubelet.service"
fi

install -d -m 0755 "$(dirname /var/lib/kube-proxy/kubeconfig)"
tmp=$(mktemp /var/lib/kube-proxy/kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kube-proxy/kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kube-proxy/kubeconfig ] && cmp -s "$tmp" /var/lib/kube-proxy/kubeconfig && [ "$(stat -c '%a %U' /var/lib/kube-proxy/kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kube-proxy/kubeconfig
  echo "changed: /var/lib/kube-proxy/kubeconfig"
fi

install -d -m 0755 "$(dirname /var/lib/kube-proxy/kube-proxy-config.yaml)"
tmp=$(mktemp /var/lib/kube-proxy/kube-proxy-config.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /var/lib/kube-proxy/kube-proxy-config.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /var/lib/kube-proxy/kube-proxy-config.yaml ] && cmp -s "$tmp" /var/lib/kube-proxy/kube-proxy-config.yaml && [ "$(stat -c '%a %U' /var/lib/kube-proxy/kube-proxy-config.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /var/lib/kube-proxy/kube-proxy-config.yaml
  echo "changed: /var/lib/kube-proxy/kube-proxy-config.yaml"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/kube-proxy.service)"
tmp=$(mktemp /etc/systemd/system/kube-proxy.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/kube-proxy.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/kube-proxy.service ] && cmp -s "$tmp" /etc/systemd/system/kube-proxy.service && [ "$(stat -c '%a %U' /etc/systemd/system/kube-proxy.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/kube-proxy.service
  echo "changed: /etc/systemd/system/kube-proxy.service"
fi

exit 0
