#!/bin/bash
set -euo pipefail
umask 077

install -d -m 0755 "$(dirname /etc/etcd/pki/ca.crt)"
tmp=$(mktemp /etc/etcd/pki/ca.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/etcd/pki/ca.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown etcd: "$tmp"
if [ -f /etc/etcd/pki/ca.crt ] && cmp -s "$tmp" /etc/etcd/pki/ca.crt && [ "$(stat -c '%a %U' /etc/etcd/pki/ca.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/etcd/pki/ca.crt
  echo "changed: /etc/etcd/pki/ca.crt"
fi

install -d -m 0755 "$(dirname /etc/etcd/pki/server.crt)"
tmp=$(mktemp /etc/etcd/pki/server.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/etcd/pki/server.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown etcd: "$tmp"
if [ -f /etc/etcd/pki/server.crt ] && cmp -s "$tmp" /etc/etcd/pki/server.crt && [ "$(stat -c '%a %U' /etc/etcd/pki/server.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/etcd/pki/server.crt
  echo "changed: /etc/etcd/pki/server.crt"
fi

install -d -m 0755 "$(dirname /etc/etcd/pki/server.key)"
tmp=$(mktemp /etc/etcd/pki/server.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/etcd/pki/server.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown etcd: "$tmp"
if [ -f /etc/etcd/pki/server.key ] && cmp -s "$tmp" /etc/etcd/pki/server.key && [ "$(stat -c '%a %U' /etc/etcd/pki/server.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/etcd/pki/server.key
  echo "changed: /etc/etcd/pki/server.key"
fi

install -d -m 0755 "$(dirname /etc/etcd/pki/peer.crt)"
tmp=$(mktemp /etc/etcd/pki/peer.crt.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/etcd/pki/peer.crt>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown etcd: "$tmp"
if [ -f /etc/etcd/pki/peer.crt ] && cmp -s "$tmp" /etc/etcd/pki/peer.crt && [ "$(stat -c '%a %U' /etc/etcd/pki/peer.crt)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/etcd/pki/peer.crt
  echo "changed: /etc/etcd/pki/peer.crt"
fi

install -d -m 0755 "$(dirname /etc/etcd/pki/peer.key)"
tmp=$(mktemp /etc/etcd/pki/peer.key.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/etcd/pki/peer.key>
K8S_FROM_SCRATCH_EOF
chmod 0600 "$tmp"
chown etcd: "$tmp"
if [ -f /etc/etcd/pki/peer.key ] && cmp -s "$tmp" /etc/etcd/pki/peer.key && [ "$(stat -c '%a %U' /etc/etcd/pki/peer.key)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/etcd/pki/peer.key
  echo "changed: /etc/etcd/pki/peer.key"
fi

install -d -m 0755 "$(dirname /etc/systemd/system/etcd.service)"
tmp=$(mktemp /etc/systemd/system/etcd.service.XXXXXX)
base64 -d > "$tmp" <<'K8S_FROM_SCRATCH_EOF'
<file: /etc/systemd/system/etcd.service>
K8S_FROM_SCRATCH_EOF
chmod 0644 "$tmp"
chown root: "$tmp"
if [ -f /etc/systemd/system/etcd.service ] && cmp -s "$tmp" /etc/systemd/system/etcd.service && [ "$(stat -c '%a %U' /etc/systemd/system/etcd.service)" = "$(stat -c '%a %U' "$tmp")" ]; then
  rm -f "$tmp"
else
  mv -f "$tmp" /etc/systemd/system/etcd.service
  echo "changed: /etc/systemd/system/etcd.service"
fi

exit 0
