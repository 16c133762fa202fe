#!/bin/bash
# Remove @NODE@ from the cluster before its machine goes. Verification: no Node named @NODE@ is left.
@PRELUDE@
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node: nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API, so it cannot be drained before its machine goes: $out"
fi
@DRAIN@
kubectl delete node "$node" --wait=true >/dev/null || fail "cannot delete node $node"
echo "$node drained and deleted: its machine can go"
