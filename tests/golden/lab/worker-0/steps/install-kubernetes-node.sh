#!/bin/bash
# Install kubernetes-node 1.37.2 from http://10.43.0.4:8080/dl.k8s.io/v1.37.2/kubernetes-node-linux-amd64.tar.gz
set -euo pipefail
url=http://10.43.0.4:8080/dl.k8s.io/v1.37.2/kubernetes-node-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/kubernetes-node-linux-amd64.tar.gz
want=6e9f34d35a40f5b4e0026b98cfaa30b52530d2b3e0dc78a8600ce66ae0552e8966e5db78a360d62908d0fe35ef0f816d6da0e21d0f6bc7f26beba3a3a0b3ecdb
install -d -m 0755 /var/cache/k8s-from-scratch
sum() { sha512sum "$1" | cut -d' ' -f1; }
if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then
  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \
    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"
  got=$(sum "$file.part")
  if [ "$got" != "$want" ]; then
    echo "checksum mismatch for kubernetes-node-linux-amd64.tar.gz: expected sha512 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$file" -C "$work" kubernetes/node/bin/kubelet kubernetes/node/bin/kube-proxy kubernetes/node/bin/kubectl
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/node/bin/kubelet /usr/local/bin/kubelet; then
  install -m 0755 "$work"/kubernetes/node/bin/kubelet /usr/local/bin/kubelet.new && mv -f /usr/local/bin/kubelet.new /usr/local/bin/kubelet
  echo "installed /usr/local/bin/kubelet"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/node/bin/kube-proxy /usr/local/bin/kube-proxy; then
  install -m 0755 "$work"/kubernetes/node/bin/kube-proxy /usr/local/bin/kube-proxy.new && mv -f /usr/local/bin/kube-proxy.new /usr/local/bin/kube-proxy
  echo "installed /usr/local/bin/kube-proxy"
fi
install -d -m 0755 /usr/local/bin
if ! cmp -s "$work"/kubernetes/node/bin/kubectl /usr/local/bin/kubectl; then
  install -m 0755 "$work"/kubernetes/node/bin/kubectl /usr/local/bin/kubectl.new && mv -f /usr/local/bin/kubectl.new /usr/local/bin/kubectl
  echo "installed /usr/local/bin/kubectl"
fi
