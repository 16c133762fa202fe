#!/bin/bash
# Start or restart: containerd. Verification: each unit is active.
set -uo pipefail
want=<fingerprint>
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
  switch /usr/local/bin/containerd /opt/k8s-from-scratch/releases/containerd-2.3.4-9d68969855fb/containerd || return 1
  switch /usr/local/bin/containerd-shim-runc-v2 /opt/k8s-from-scratch/releases/containerd-2.3.4-9d68969855fb/containerd-shim-runc-v2 || return 1
  switch /usr/local/bin/ctr /opt/k8s-from-scratch/releases/containerd-2.3.4-9d68969855fb/ctr || return 1
  switch /usr/local/bin/runc /opt/k8s-from-scratch/releases/runc-1.5.1-177df879d50c/runc || return 1
  switch /opt/cni/bin/bridge /opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852/bridge || return 1
  switch /opt/cni/bin/host-local /opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852/host-local || return 1
  switch /opt/cni/bin/loopback /opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852/loopback || return 1
  switch /opt/cni/bin/portmap /opt/k8s-from-scratch/releases/cni-plugins-1.9.1-b98f74a0f852/portmap || return 1
  switch /usr/local/bin/crictl /opt/k8s-from-scratch/releases/crictl-1.37.0-27aa50f7dbb4/crictl || return 1
  prune containerd /usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr
  prune runc /usr/local/bin/runc
  prune cni-plugins /opt/cni/bin/bridge /opt/cni/bin/host-local /opt/cni/bin/loopback /opt/cni/bin/portmap
  prune crictl /usr/local/bin/crictl
}
install -d -m 0755 /var/lib/k8s-from-scratch/started
timeout 60 systemctl daemon-reload
for unit in containerd; do
  systemctl enable --quiet "$unit"
  stamp="/var/lib/k8s-from-scratch/started/$unit"
  if systemctl is-active --quiet "$unit" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$unit: inputs unchanged since it was started, not restarting"
    continue
  fi
  rm -f "$stamp"
  # The binaries it runs move to their new release right before it restarts, never earlier.
  switch_releases || exit 1
  if ! timeout 120 systemctl restart "$unit"; then
    echo "$unit did not restart within 120s on $(hostname):" >&2
    systemctl status "$unit" --no-pager -l >&2 || true
    journalctl -u "$unit" --no-pager -n 30 >&2 || true
    exit 1
  fi
done
deadline=$((SECONDS + 60))
for unit in containerd; do
  until systemctl is-active --quiet "$unit"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$unit is not active on $(hostname) after 60s:" >&2
      systemctl status "$unit" --no-pager -l >&2 || true
      journalctl -u "$unit" --no-pager -n 30 >&2 || true
      exit 1
    fi
    sleep 2
  done
  echo "$want" > "/var/lib/k8s-from-scratch/started/$unit"
  echo "$unit is active on $(hostname)"
done
