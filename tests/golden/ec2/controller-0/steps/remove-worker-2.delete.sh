sudo timeout --kill-after=30 420 bash -c '#!/bin/bash
# Remove worker-2 from the cluster before its machine i-c149e0aaf568 goes. Verification: no Node named worker-2 is
# left, or it runs on a newer machine.
set -uo pipefail
node=worker-2
kubectl() { timeout 60 /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@"; }
fail() { echo "$1" >&2; exit 1; }
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() { kubectl get node "$node" -o "jsonpath=$1"; }
ready_status() { field '"'"'{.status.conditions[?(@.type=="Ready")].status}'"'"'; }
heartbeat() { field '"'"'{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'"'"'; }
machine=i-c149e0aaf568
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node: nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API, so it cannot be drained before its machine goes: $out"
fi
now=$(field '"'"'{.metadata.annotations.k8s-from-scratch\.io/instance-id}'"'"') || fail "cannot read node $node"
if [ -n "$now" ] && [ "$now" != "$machine" ]; then
  echo "$node runs on machine $now now, not on $machine, which this removal was made for: nothing to remove"
  exit 0
fi
kubectl cordon "$node" >/dev/null || fail "cannot cordon $node"
if [ "$(ready_status)" != True ]; then
  # Its kubelet is not running pods: evictions would never complete, and there is nothing on it to move.
  echo "$node is not Ready: cordoned, nothing to drain"
else
  echo "draining $node (at most 300s; PodDisruptionBudgets are respected)"
  if ! out=$(timeout 330 /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig drain "$node" --ignore-daemonsets --delete-emptydir-data \
      --timeout=300s 2>&1); then
    echo "$out" | tail -n 20 >&2
    fail "$node could not be drained within 300s (a PodDisruptionBudget that allows no disruption, a \
pod that does not stop, or a pod no controller manages, which drain does not delete): it stays cordoned. Fix what holds the pod and run pulumi up again; the machine is kept until then."
  fi
  echo "$out" | tail -n 5
fi
kubectl delete node "$node" --wait=true >/dev/null || fail "cannot delete node $node"
echo "$node drained and deleted: its machine can go"
'
