#!/bin/bash
# Install containerd 2.3.4 from https://github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/containerd-2.3.4-9d68969855fb.
set -euo pipefail
url=https://github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/containerd-2.3.4-linux-amd64.tar.gz
want=9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168
release=/opt/k8s-from-scratch/releases/containerd-2.3.4-9d68969855fb
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
    echo "checksum mismatch for containerd-2.3.4-linux-amd64.tar.gz: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "containerd 2.3.4 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  tar -xzf "$file" -C "$work" bin/containerd bin/containerd-shim-runc-v2 bin/ctr
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$work"/bin/containerd "$staging"/containerd
  install -m 0755 "$work"/bin/containerd-shim-runc-v2 "$staging"/containerd-shim-runc-v2
  install -m 0755 "$work"/bin/ctr "$staging"/ctr
  mv -T "$staging" "$release"
  echo "installed containerd 2.3.4 into $release"
fi
