#!/bin/bash
# Take worker-2 out of service before containerd or its kubelet restart. Verification: the node is cordoned and only
# DaemonSet pods are left on it, or it needs no drain.
set -uo pipefail
node=worker-2
kubectl() { timeout 60 /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@"; }
fail() { echo "$1" >&2; exit 1; }
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() { kubectl get node "$node" -o "jsonpath=$1"; }
ready_status() { field '{.status.conditions[?(@.type=="Ready")].status}'; }
heartbeat() { field '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'; }
want=<fingerprint>
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node (a new machine): nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API: $out"
fi
running=$(field '{.metadata.annotations.k8s-from-scratch\.io/pod-runtime-inputs}') || fail "cannot read node $node"
if [ "$running" = "$want" ]; then
  echo "$node: containerd and the kubelet already run these inputs, nothing to drain"
  exit 0
fi
if [ "$(field '{.spec.unschedulable}')" != true ]; then
  kubectl annotate --overwrite node "$node" k8s-from-scratch.io/cordoned-for-restart=true >/dev/null || fail "cannot annotate $node"
fi
kubectl annotate --overwrite node "$node" "k8s-from-scratch.io/heartbeat-at-drain=$(heartbeat)" >/dev/null || \
  fail "cannot annotate $node"
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
pod that does not stop, or a pod no controller manages, which drain does not delete): it stays cordoned. Fix what holds the pod and run pulumi up again."
  fi
  echo "$out" | tail -n 5
fi
echo "$node is drained"
