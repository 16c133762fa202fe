kubectl cordon "$node" >/dev/null || fail "cannot cordon $node"
if [ "$(ready_status)" != True ]; then
  # Its kubelet is not running pods: evictions would never complete, and there is nothing on it to move.
  echo "$node is not Ready: cordoned, nothing to drain"
else
  echo "draining $node (at most @TIMEOUT_SECONDS@s; PodDisruptionBudgets are respected)"
  if ! out=$(timeout @OUTER_TIMEOUT_SECONDS@ @KUBECTL@ drain "$node" @DRAIN_FLAGS@ \
      --timeout=@TIMEOUT_SECONDS@s 2>&1); then
    echo "$out" | tail -n 20 >&2
    fail "$node could not be drained within @TIMEOUT_SECONDS@s (a PodDisruptionBudget that allows no disruption, a \
pod that does not stop, or a pod no controller manages, which drain does not delete): it stays cordoned. @THEN@"
  fi
  echo "$out" | tail -n 5
fi
