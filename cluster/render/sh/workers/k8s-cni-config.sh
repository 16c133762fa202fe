#!/bin/bash
# Keep the CNI config of @NODE@ on the pod range the controller-manager assigned it (node.spec.podCIDR).
# Verification: the journal of k8s-cni-config says which range the config uses.
set -uo pipefail
umask 077
node=@NODE@
template=@TEMPLATE@
conflist=@CONFLIST@
legacy=@LEGACY@
last_report=""
report() {
  # Say each problem once, not every @INTERVAL_SECONDS@s while the node waits for its range.
  [ "$1" = "$last_report" ] || echo "$1" >&2
  last_report=$1
}
sync_once() {
  local cidr wanted
  if ! cidr=$(@KUBECTL@ get node "$node" -o jsonpath='{.spec.podCIDR}' 2>&1); then
    report "cannot read node $node yet: $cidr"
    return 1
  fi
  if ! [[ $cidr =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]]; then
    report "node $node has no podCIDR yet"
    return 1
  fi
  wanted=$(sed "s|@POD_CIDR_PLACEHOLDER@|$cidr|g" "$template") || return 1
  if [ ! -f "$conflist" ] || [ "$(cat "$conflist")" != "$wanted" ]; then
    # Renamed into place inside the watched directory: containerd reloads on that rename but ignores a file
    # moved in from elsewhere (it skips create events). libcni never loads a .tmp file.
    { printf '%s\n' "$wanted" > "$conflist.tmp" && mv -f "$conflist.tmp" "$conflist"; } || return 1
    echo "CNI config now uses podCIDR $cidr"
  fi
  if [ -e "$legacy" ]; then
    rm -f "$legacy"
    echo "removed $legacy (containerd's template output from an earlier install)"
  fi
  last_report=""
}
if [ "${1:-}" = "--once" ]; then
  sync_once
  exit
fi
while :; do
  sync_once
  sleep @INTERVAL_SECONDS@
done
