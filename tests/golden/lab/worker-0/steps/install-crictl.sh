#!/bin/bash
# Install crictl 1.37.0 from http://10.43.0.4:8080/github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/crictl-1.37.0-27aa50f7dbb4.
set -euo pipefail
url=http://10.43.0.4:8080/github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/crictl-v1.37.0-linux-amd64.tar.gz
want=27aa50f7dbb49301e87276a743e67c037ab422037b9847e038647976d2628aff3c2fda623dab67214f2eb016f1b952bc47e178eb23e8e32d45f5c0e52c4dbd0e
release=/opt/k8s-from-scratch/releases/crictl-1.37.0-27aa50f7dbb4
install -d -m 0755 /var/cache/k8s-from-scratch /opt/k8s-from-scratch/releases
sum() { sha512sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  # Bounded: 15 s to connect, 15 minutes in all, retried on any error: a stalled mirror cannot hang the step.
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    # The file name only: the URL may hold a mirror's credentials, and pulumi-command puts a failed step's output
    # into its error, logging off or not (commandOutputs.go).
    echo "checksum mismatch for crictl-v1.37.0-linux-amd64.tar.gz: expected sha512 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "crictl 1.37.0 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  tar -xzf "$file" -C "$work" crictl
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$work"/crictl "$staging"/crictl
  mv -T "$staging" "$release"
  echo "installed crictl 1.37.0 into $release"
fi
