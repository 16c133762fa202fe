#!/bin/bash
# Install runc 1.4.3 from http://10.43.0.4:8080/github.com/opencontainers/runc/releases/download/v1.4.3/runc.amd64
set -euo pipefail
url=http://10.43.0.4:8080/github.com/opencontainers/runc/releases/download/v1.4.3/runc.amd64
file=/var/cache/k8s-from-scratch/runc.amd64
want=f6ae8efc0fa40079e1475e97cbe9d1bd3f106a28d6af78a11d9f1bd565515e60
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for runc.amd64: expected sha256 $want, got $got" >&2
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
