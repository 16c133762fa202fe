#!/bin/bash
# Start or restart: kube-apiserver. Verification: each unit is active.
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
  switch /usr/local/bin/kube-apiserver /opt/k8s-from-scratch/releases/kubernetes-server-1.37.2-0956faf23fbe/kube-apiserver || return 1
  prune kubernetes-server /usr/local/bin/kube-apiserver /usr/local/bin/kube-controller-manager /usr/local/bin/kube-scheduler /usr/local/bin/kubectl
}
install -d -m 0755 /var/lib/k8s-from-scratch/started
timeout 60 systemctl daemon-reload
for unit in kube-apiserver; do
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
for unit in kube-apiserver; do
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
