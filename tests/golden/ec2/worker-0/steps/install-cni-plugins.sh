#!/bin/bash
# Install cni-plugins 1.9.1 from https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz
set -euo pipefail
url=https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz
file=/var/cache/k8s-from-scratch/cni-plugins-linux-amd64-v1.9.1.tgz
want=b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for cni-plugins-linux-amd64-v1.9.1.tgz: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$file" -C "$work" ./bridge ./host-local ./loopback ./portmap
install -d -m 0755 /opt/cni/bin
if ! cmp -s "$work"/./bridge /opt/cni/bin/bridge; then
  install -m 0755 "$work"/./bridge /opt/cni/bin/bridge.new && mv -f /opt/cni/bin/bridge.new /opt/cni/bin/bridge
  echo "installed /opt/cni/bin/bridge"
fi
install -d -m 0755 /opt/cni/bin
if ! cmp -s "$work"/./host-local /opt/cni/bin/host-local; then
  install -m 0755 "$work"/./host-local /opt/cni/bin/host-local.new && mv -f /opt/cni/bin/host-local.new /opt/cni/bin/host-local
  echo "installed /opt/cni/bin/host-local"
fi
install -d -m 0755 /opt/cni/bin
if ! cmp -s "$work"/./loopback /opt/cni/bin/loopback; then
  install -m 0755 "$work"/./loopback /opt/cni/bin/loopback.new && mv -f /opt/cni/bin/loopback.new /opt/cni/bin/loopback
  echo "installed /opt/cni/bin/loopback"
fi
install -d -m 0755 /opt/cni/bin
if ! cmp -s "$work"/./portmap /opt/cni/bin/portmap; then
  install -m 0755 "$work"/./portmap /opt/cni/bin/portmap.new && mv -f /opt/cni/bin/portmap.new /opt/cni/bin/portmap
  echo "installed /opt/cni/bin/portmap"
fi
