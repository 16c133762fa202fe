#!/bin/bash
# Install containerd 2.3.4 from https://github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz
set -euo pipefail
url=https://github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/containerd-2.3.4-linux-amd64.tar.gz
want=9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for containerd-2.3.4-linux-amd64.tar.gz: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$file" -C "$work" bin/containerd bin/containerd-shim-runc-v2 bin/ctr
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/bin/containerd /usr/local/bin/containerd; then
  install -m 0755 "$work"/bin/containerd /usr/local/bin/containerd.new && mv -f /usr/local/bin/containerd.new /usr/local/bin/containerd
  echo "installed /usr/local/bin/containerd"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/bin/containerd-shim-runc-v2 /usr/local/bin/containerd-shim-runc-v2; then
  install -m 0755 "$work"/bin/containerd-shim-runc-v2 /usr/local/bin/containerd-shim-runc-v2.new && mv -f /usr/local/bin/containerd-shim-runc-v2.new /usr/local/bin/containerd-shim-runc-v2
  echo "installed /usr/local/bin/containerd-shim-runc-v2"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/bin/ctr /usr/local/bin/ctr; then
  install -m 0755 "$work"/bin/ctr /usr/local/bin/ctr.new && mv -f /usr/local/bin/ctr.new /usr/local/bin/ctr
  echo "installed /usr/local/bin/ctr"
fi
