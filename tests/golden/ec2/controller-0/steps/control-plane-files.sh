#!/bin/bash
set -euo pipefail
umask 077

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

install -d -m 0755 "$(dirname /etc/kubernetes/pki/etcd-ca.crt)"
tmp=$(mktemp /etc/kubernetes/pki/etcd-ca.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/etcd-ca.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/etcd-ca.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/etcd-ca.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/etcd-ca.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/etcd-ca.crt
  echo "changed: /etc/kubernetes/pki/etcd-ca.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver.crt)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver.crt
  echo "changed: /etc/kubernetes/pki/kube-apiserver.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver.key)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver.key ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver.key && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver.key
  echo "changed: /etc/kubernetes/pki/kube-apiserver.key"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt
  echo "changed: /etc/kubernetes/pki/kube-apiserver-kubelet-client.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver-kubelet-client.key)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver-kubelet-client.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver-kubelet-client.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver-kubelet-client.key ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver-kubelet-client.key && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver-kubelet-client.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver-kubelet-client.key
  echo "changed: /etc/kubernetes/pki/kube-apiserver-kubelet-client.key"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver-etcd-client.crt)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver-etcd-client.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver-etcd-client.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver-etcd-client.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver-etcd-client.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver-etcd-client.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver-etcd-client.crt
  echo "changed: /etc/kubernetes/pki/kube-apiserver-etcd-client.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/kube-apiserver-etcd-client.key)"
tmp=$(mktemp /etc/kubernetes/pki/kube-apiserver-etcd-client.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/kube-apiserver-etcd-client.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/kube-apiserver-etcd-client.key ] && cmp -s "$tmp" /etc/kubernetes/pki/kube-apiserver-etcd-client.key && [ "$(stat -c '%a %U' /etc/kubernetes/pki/kube-apiserver-etcd-client.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/kube-apiserver-etcd-client.key
  echo "changed: /etc/kubernetes/pki/kube-apiserver-etcd-client.key"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/service-account.pub)"
tmp=$(mktemp /etc/kubernetes/pki/service-account.pub.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/service-account.pub>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/service-account.pub ] && cmp -s "$tmp" /etc/kubernetes/pki/service-account.pub && [ "$(stat -c '%a %U' /etc/kubernetes/pki/service-account.pub)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/service-account.pub
  echo "changed: /etc/kubernetes/pki/service-account.pub"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/service-account.key)"
tmp=$(mktemp /etc/kubernetes/pki/service-account.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/service-account.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/service-account.key ] && cmp -s "$tmp" /etc/kubernetes/pki/service-account.key && [ "$(stat -c '%a %U' /etc/kubernetes/pki/service-account.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/service-account.key
  echo "changed: /etc/kubernetes/pki/service-account.key"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/front-proxy-ca.crt)"
tmp=$(mktemp /etc/kubernetes/pki/front-proxy-ca.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/front-proxy-ca.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/front-proxy-ca.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/front-proxy-ca.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/front-proxy-ca.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/front-proxy-ca.crt
  echo "changed: /etc/kubernetes/pki/front-proxy-ca.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/front-proxy-client.crt)"
tmp=$(mktemp /etc/kubernetes/pki/front-proxy-client.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/front-proxy-client.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/front-proxy-client.crt ] && cmp -s "$tmp" /etc/kubernetes/pki/front-proxy-client.crt && [ "$(stat -c '%a %U' /etc/kubernetes/pki/front-proxy-client.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/front-proxy-client.crt
  echo "changed: /etc/kubernetes/pki/front-proxy-client.crt"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/pki/front-proxy-client.key)"
tmp=$(mktemp /etc/kubernetes/pki/front-proxy-client.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/pki/front-proxy-client.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/pki/front-proxy-client.key ] && cmp -s "$tmp" /etc/kubernetes/pki/front-proxy-client.key && [ "$(stat -c '%a %U' /etc/kubernetes/pki/front-proxy-client.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/pki/front-proxy-client.key
  echo "changed: /etc/kubernetes/pki/front-proxy-client.key"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/encryption-config.yaml)"
tmp=$(mktemp /etc/kubernetes/encryption-config.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/encryption-config.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/encryption-config.yaml ] && cmp -s "$tmp" /etc/kubernetes/encryption-config.yaml && [ "$(stat -c '%a %U' /etc/kubernetes/encryption-config.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/encryption-config.yaml
  echo "changed: /etc/kubernetes/encryption-config.yaml"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/authentication-config.yaml)"
tmp=$(mktemp /etc/kubernetes/authentication-config.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/authentication-config.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/authentication-config.yaml ] && cmp -s "$tmp" /etc/kubernetes/authentication-config.yaml && [ "$(stat -c '%a %U' /etc/kubernetes/authentication-config.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/authentication-config.yaml
  echo "changed: /etc/kubernetes/authentication-config.yaml"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/admission-config.yaml)"
tmp=$(mktemp /etc/kubernetes/admission-config.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/admission-config.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/admission-config.yaml ] && cmp -s "$tmp" /etc/kubernetes/admission-config.yaml && [ "$(stat -c '%a %U' /etc/kubernetes/admission-config.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/admission-config.yaml
  echo "changed: /etc/kubernetes/admission-config.yaml"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/audit-policy.yaml)"
tmp=$(mktemp /etc/kubernetes/audit-policy.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/audit-policy.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/audit-policy.yaml ] && cmp -s "$tmp" /etc/kubernetes/audit-policy.yaml && [ "$(stat -c '%a %U' /etc/kubernetes/audit-policy.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/audit-policy.yaml
  echo "changed: /etc/kubernetes/audit-policy.yaml"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/kube-apiserver.service)"
tmp=$(mktemp /etc/systemd/system/kube-apiserver.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/kube-apiserver.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/kube-apiserver.service ] && cmp -s "$tmp" /etc/systemd/system/kube-apiserver.service && [ "$(stat -c '%a %U' /etc/systemd/system/kube-apiserver.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/kube-apiserver.service
  echo "changed: /etc/systemd/system/kube-apiserver.service"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/kube-controller-manager.kubeconfig)"
tmp=$(mktemp /etc/kubernetes/kube-controller-manager.kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/kube-controller-manager.kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/kube-controller-manager.kubeconfig ] && cmp -s "$tmp" /etc/kubernetes/kube-controller-manager.kubeconfig && [ "$(stat -c '%a %U' /etc/kubernetes/kube-controller-manager.kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/kube-controller-manager.kubeconfig
  echo "changed: /etc/kubernetes/kube-controller-manager.kubeconfig"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/kube-controller-manager.service)"
tmp=$(mktemp /etc/systemd/system/kube-controller-manager.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/kube-controller-manager.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/kube-controller-manager.service ] && cmp -s "$tmp" /etc/systemd/system/kube-controller-manager.service && [ "$(stat -c '%a %U' /etc/systemd/system/kube-controller-manager.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/kube-controller-manager.service
  echo "changed: /etc/systemd/system/kube-controller-manager.service"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/kube-scheduler.yaml)"
tmp=$(mktemp /etc/kubernetes/kube-scheduler.yaml.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/kube-scheduler.yaml>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/kube-scheduler.yaml ] && cmp -s "$tmp" /etc/kubernetes/kube-scheduler.yaml && [ "$(stat -c '%a %U' /etc/kubernetes/kube-scheduler.yaml)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/kube-scheduler.yaml
  echo "changed: /etc/kubernetes/kube-scheduler.yaml"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/kube-scheduler.kubeconfig)"
tmp=$(mktemp /etc/kubernetes/kube-scheduler.kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/kube-scheduler.kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/kube-scheduler.kubeconfig ] && cmp -s "$tmp" /etc/kubernetes/kube-scheduler.kubeconfig && [ "$(stat -c '%a %U' /etc/kubernetes/kube-scheduler.kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/kube-scheduler.kubeconfig
  echo "changed: /etc/kubernetes/kube-scheduler.kubeconfig"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/kube-scheduler.service)"
tmp=$(mktemp /etc/systemd/system/kube-scheduler.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/kube-scheduler.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/kube-scheduler.service ] && cmp -s "$tmp" /etc/systemd/system/kube-scheduler.service && [ "$(stat -c '%a %U' /etc/systemd/system/kube-scheduler.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/kube-scheduler.service
  echo "changed: /etc/systemd/system/kube-scheduler.service"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/admin.kubeconfig)"
tmp=$(mktemp /etc/kubernetes/admin.kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/admin.kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/admin.kubeconfig ] && cmp -s "$tmp" /etc/kubernetes/admin.kubeconfig && [ "$(stat -c '%a %U' /etc/kubernetes/admin.kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/admin.kubeconfig
  echo "changed: /etc/kubernetes/admin.kubeconfig"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/deployer.kubeconfig)"
tmp=$(mktemp /etc/kubernetes/deployer.kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/deployer.kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/deployer.kubeconfig ] && cmp -s "$tmp" /etc/kubernetes/deployer.kubeconfig && [ "$(stat -c '%a %U' /etc/kubernetes/deployer.kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/deployer.kubeconfig
  echo "changed: /etc/kubernetes/deployer.kubeconfig"
fi

install -d -m 0755 "$(dirname /etc/kubernetes/super-admin.kubeconfig)"
tmp=$(mktemp /etc/kubernetes/super-admin.kubeconfig.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/kubernetes/super-admin.kubeconfig>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown root: "$tmp"
if [ -f /etc/kubernetes/super-admin.kubeconfig ] && cmp -s "$tmp" /etc/kubernetes/super-admin.kubeconfig && [ "$(stat -c '%a %U' /etc/kubernetes/super-admin.kubeconfig)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/kubernetes/super-admin.kubeconfig
  echo "changed: /etc/kubernetes/super-admin.kubeconfig"
fi

exit 0
