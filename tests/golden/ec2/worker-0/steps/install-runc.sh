#!/bin/bash
# Install runc 1.5.1 from https://github.com/opencontainers/runc/releases/download/v1.5.1/runc.amd64 beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/runc-1.5.1-177df879d50c.
set -euo pipefail
url=https://github.com/opencontainers/runc/releases/download/v1.5.1/runc.amd64
file=/var/cache/k8s-from-scratch/runc.amd64
want=177df879d50c913eb205e898d5c1c05a18f574053c0ce5524c471208eaf06f6f
release=/opt/k8s-from-scratch/releases/runc-1.5.1-177df879d50c
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
    echo "checksum mismatch for runc.amd64: expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "runc 1.5.1 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  :
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$file" "$staging"/runc
  mv -T "$staging" "$release"
  echo "installed runc 1.5.1 into $release"
fi
