#!/bin/bash
# Install etcd 3.6.14 from http://10.43.0.4:8080/github.com/etcd-io/etcd/releases/download/v3.6.14/etcd-v3.6.14-linux-amd64.tar.gz
set -euo pipefail
url=http://10.43.0.4:8080/github.com/etcd-io/etcd/releases/download/v3.6.14/etcd-v3.6.14-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/etcd-v3.6.14-linux-amd64.tar.gz
want=ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for etcd-v3.6.14-linux-amd64.tar.gz ($url): expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$file" -C "$work" etcd-v3.6.14-linux-amd64/etcd etcd-v3.6.14-linux-amd64/etcdctl etcd-v3.6.14-linux-amd64/etcdutl
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/etcd-v3.6.14-linux-amd64/etcd /usr/local/bin/etcd; then
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcd /usr/local/bin/etcd.new && mv -f /usr/local/bin/etcd.new /usr/local/bin/etcd
  echo "installed /usr/local/bin/etcd"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/etcd-v3.6.14-linux-amd64/etcdctl /usr/local/bin/etcdctl; then
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcdctl /usr/local/bin/etcdctl.new && mv -f /usr/local/bin/etcdctl.new /usr/local/bin/etcdctl
  echo "installed /usr/local/bin/etcdctl"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/etcd-v3.6.14-linux-amd64/etcdutl /usr/local/bin/etcdutl; then
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcdutl /usr/local/bin/etcdutl.new && mv -f /usr/local/bin/etcdutl.new /usr/local/bin/etcdutl
  echo "installed /usr/local/bin/etcdutl"
fi
