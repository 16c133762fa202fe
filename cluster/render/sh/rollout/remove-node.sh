#!/bin/bash
# Remove @NODE@ from the cluster before its machine @INSTANCE_ID@ goes. Verification: no Node named @NODE@ is
# left, or it runs on a newer machine.
@PRELUDE@
machine=@INSTANCE_ID@
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node: nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API, so it cannot be drained before its machine goes: $out"
fi
now=$(field '{.metadata.annotations.@INSTANCE_ID_KEY@}') || fail "cannot read node $node"
if [ -n "$now" ] && [ "$now" != "$machine" ]; then
  echo "$node runs on machine $now now, not on $machine, which this removal was made for: nothing to remove"
  exit 0
fi
@DRAIN@
kubectl delete node "$node" --wait=true >/dev/null || fail "cannot delete node $node"
echo "$node drained and deleted: its machine can go"
