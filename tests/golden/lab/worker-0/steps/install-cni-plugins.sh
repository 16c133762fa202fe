#!/bin/bash
# Install cni-plugins 1.9.1 from http://10.43.0.4:8080/github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852.
set -euo pipefail
url=http://10.43.0.4:8080/github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz
file=/var/cache/k8s-from-scratch/cni-plugins-linux-amd64-v1.9.1.tgz
want=b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303
release=/opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852
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
    echo "checksum mismatch for cni-plugins-linux-amd64-v1.9.1.tgz: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "cni-plugins 1.9.1 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  tar -xzf "$file" -C "$work" ./bridge ./host-local ./loopback ./portmap
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$work"/./bridge "$staging"/bridge
  install -m 0755 "$work"/./host-local "$staging"/host-local
  install -m 0755 "$work"/./loopback "$staging"/loopback
  install -m 0755 "$work"/./portmap "$staging"/portmap
  mv -T "$staging" "$release"
  echo "installed cni-plugins 1.9.1 into $release"
fi
