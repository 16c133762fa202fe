#!/bin/bash
# Take @NODE@ out of service before containerd or its kubelet restart. Verification: the node is cordoned and only
# DaemonSet pods are left on it, or it needs no drain.
@PRELUDE@
want=@WANT@
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node (a new machine): nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API: $out"
fi
running=$(field '{.metadata.annotations.@RUNTIME_INPUTS_KEY@}') || fail "cannot read node $node"
if [ "$running" = "$want" ]; then
  echo "$node: containerd and the kubelet already run these inputs, nothing to drain"
  exit 0
fi
if [ "$(field '{.spec.unschedulable}')" != true ]; then
  kubectl annotate --overwrite node "$node" @CORDONED_FOR_RESTART@=true >/dev/null || fail "cannot annotate $node"
fi
kubectl annotate --overwrite node "$node" "@HEARTBEAT_AT_DRAIN@=$(heartbeat)" >/dev/null || \
  fail "cannot annotate $node"
@DRAIN@
echo "$node is drained"
