#!/bin/bash
# Install kubernetes-node 1.37.2 from http://10.43.0.4:8080/dl.k8s.io/v1.37.2/kubernetes-node-linux-amd64.tar.gz beside any other release. Verification: its files are in /opt/k8s-from-scratch/releases/kubernetes-node-1.37.2-6e9f34d35a40.
set -euo pipefail
url=http://10.43.0.4:8080/dl.k8s.io/v1.37.2/kubernetes-node-linux-amd64.tar.gz
file=/var/cache/k8s-from-scratch/kubernetes-node-linux-amd64.tar.gz
want=6e9f34d35a40f5b4e0026b98cfaa30b52530d2b3e0dc78a8600ce66ae0552e8966e5db78a360d62908d0fe35ef0f816d6da0e21d0f6bc7f26beba3a3a0b3ecdb
release=/opt/k8s-from-scratch/releases/kubernetes-node-1.37.2-6e9f34d35a40
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
    echo "checksum mismatch for kubernetes-node-linux-amd64.tar.gz: expected sha512 $want, got $got" >&2
    rm -f "$file.part"
    exit 1
  fi
  mv -f "$file.part" "$file"
fi
if [ -d "$release" ]; then
  echo "kubernetes-node 1.37.2 is installed in $release"
else
  work=$(mktemp -d)
  staging="$release.new"
  trap 'rm -rf "$work" "$staging"' EXIT
  tar -xzf "$file" -C "$work" kubernetes/node/bin/kubelet kubernetes/node/bin/kube-proxy kubernetes/node/bin/kubectl
  rm -rf "$staging"
  install -d -m 0755 "$staging"
  install -m 0755 "$work"/kubernetes/node/bin/kubelet "$staging"/kubelet
  install -m 0755 "$work"/kubernetes/node/bin/kube-proxy "$staging"/kube-proxy
  install -m 0755 "$work"/kubernetes/node/bin/kubectl "$staging"/kubectl
  mv -T "$staging" "$release"
  echo "installed kubernetes-node 1.37.2 into $release"
fi
# switch LINK TARGET: point the path units and scripts name at a release's binary.
switch() {
  local link=$1 target=$2
  [ "$(readlink "$link" 2>/dev/null)" = "$target" ] && return 0
  if [ ! -x "$target" ]; then
    echo "$target is not installed (its install step runs first)" >&2
    return 1
  fi
  install -d -m 0755 "$(dirname "$link")"
  ln -sfn "$target" "$link.new"
  mv -Tf "$link.new" "$link"
  echo "switched $link to $target"
}
# prune COMPONENT LINK...: remove the component's release directories that none of its links points into.
prune() {
  local component=$1 dir link used
  shift
  for dir in /opt/k8s-from-scratch/releases/"$component"-*; do
    [ -d "$dir" ] || continue
    case "$dir" in *.new) continue ;; esac
    used=no
    for link in "$@"; do
      case "$(readlink "$link" 2>/dev/null)" in "$dir"/*) used=yes ;; esac
    done
    if [ "$used" = no ]; then
      rm -rf "$dir"
      echo "removed $dir, which no link uses"
    fi
  done
}
switch_releases() {
  switch /usr/local/bin/kubectl /opt/k8s-from-scratch/releases/kubernetes-node-1.37.2-6e9f34d35a40/kubectl || return 1
  prune kubernetes-node /usr/local/bin/kubelet /usr/local/bin/kube-proxy /usr/local/bin/kubectl
}
switch_releases
