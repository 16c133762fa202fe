#!/bin/bash
# Install runc 1.5.1 from http://10.43.0.4:8080/github.com/opencontainers/runc/releases/download/v1.5.1/runc.amd64
set -euo pipefail
url=http://10.43.0.4:8080/github.com/opencontainers/runc/releases/download/v1.5.1/runc.amd64
file=/var/cache/k8s-from-scratch/runc.amd64
want=177df879d50c913eb205e898d5c1c05a18f574053c0ce5524c471208eaf06f6f
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for runc.amd64 ($url): expected sha256 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$file" /usr/local/bin/runc; then
  install -m 0755 "$file" /usr/local/bin/runc.new && mv -f /usr/local/bin/runc.new /usr/local/bin/runc
  echo "installed /usr/local/bin/runc"
fi
