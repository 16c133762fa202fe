#!/bin/bash
# Install etcd 3.6.14 from https://github.com/etcd-io/etcd/releases/download/v3.6.14/etcd-v3.6.14-linux-amd64.tar.gz beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/etcd-3.6.14-ffe840ff9295.
set -euo pipefail
url=https://github.com/etcd-io/etcd/releases/download/v3.6.14/etcd-v3.6.14-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/etcd-v3.6.14-linux-amd64.tar.gz
want=ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5
release=/opt/k8s-from-scratch/releases/etcd-3.6.14-ffe840ff9295
install -d -m 0755 /var/cache/k8s-from-scratch /opt/k8s-from-scratch/releases
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  # Bounded: 15 s to connect, 15 minutes in all, retried on any error: a stalled mirror cannot hang the step.
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    # The file name only: the URL may hold a mirror's credentials, and pulumi-command puts a failed step's output
    # into its error, logging off or not (commandOutputs.go).
    echo "checksum mismatch for etcd-v3.6.14-linux-amd64.tar.gz: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "etcd 3.6.14 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  tar -xzf "$file" -C "$work" etcd-v3.6.14-linux-amd64/etcd etcd-v3.6.14-linux-amd64/etcdctl etcd-v3.6.14-linux-amd64/etcdutl
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcd "$staging"/etcd
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcdctl "$staging"/etcdctl
  install -m 0755 "$work"/etcd-v3.6.14-linux-amd64/etcdutl "$staging"/etcdutl
  mv -T "$staging" "$release"
  echo "installed etcd 3.6.14 into $release"
fi
