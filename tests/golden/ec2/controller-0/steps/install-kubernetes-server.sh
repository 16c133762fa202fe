#!/bin/bash
# Install kubernetes-server 1.37.2 from https://dl.k8s.io/v1.37.2/kubernetes-server-linux-amd64.tar.gz
set -euo pipefail
url=https://dl.k8s.io/v1.37.2/kubernetes-server-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/kubernetes-server-linux-amd64.tar.gz
want=0956faf23fbe144f7b7d787bd3c9fa601a2916c30152d7788f4d5155168d1db353e252ee865f196c55c24b5c1e8ef9aa351ce5aa34afe2506ed5f88864f6ce0c
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha512sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for kubernetes-server-linux-amd64.tar.gz: expected sha512 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$file" -C "$work" kubernetes/server/bin/kube-apiserver kubernetes/server/bin/kube-controller-manager kubernetes/server/bin/kube-scheduler kubernetes/server/bin/kubectl
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/server/bin/kube-apiserver /usr/local/bin/kube-apiserver; then
  install -m 0755 "$work"/kubernetes/server/bin/kube-apiserver /usr/local/bin/kube-apiserver.new && mv -f /usr/local/bin/kube-apiserver.new /usr/local/bin/kube-apiserver
  echo "installed /usr/local/bin/kube-apiserver"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/server/bin/kube-controller-manager /usr/local/bin/kube-controller-manager; then
  install -m 0755 "$work"/kubernetes/server/bin/kube-controller-manager /usr/local/bin/kube-controller-manager.new && mv -f /usr/local/bin/kube-controller-manager.new /usr/local/bin/kube-controller-manager
  echo "installed /usr/local/bin/kube-controller-manager"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/server/bin/kube-scheduler /usr/local/bin/kube-scheduler; then
  install -m 0755 "$work"/kubernetes/server/bin/kube-scheduler /usr/local/bin/kube-scheduler.new && mv -f /usr/local/bin/kube-scheduler.new /usr/local/bin/kube-scheduler
  echo "installed /usr/local/bin/kube-scheduler"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/server/bin/kubectl /usr/local/bin/kubectl; then
  install -m 0755 "$work"/kubernetes/server/bin/kubectl /usr/local/bin/kubectl.new && mv -f /usr/local/bin/kubectl.new /usr/local/bin/kubectl
  echo "installed /usr/local/bin/kubectl"
fi
