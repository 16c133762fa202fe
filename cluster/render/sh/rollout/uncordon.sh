#!/bin/bash
# Bring @NODE@ back into service on machine @INSTANCE_ID@. Verification: the node is Ready with a status reported
# since its drain, and schedulable unless someone else cordoned it.
@PRELUDE@
want=@WANT@
before=$(field '{.metadata.annotations.@HEARTBEAT_AT_DRAIN_KEY@}') || fail "cannot read node $node"
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
until [ "$(ready_status)" = True ] && { [ -z "$before" ] || [ "$(heartbeat)" != "$before" ]; }; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    kubectl get node "$node" -o wide >&2 || true
    fail "$node is not Ready again after @TIMEOUT_SECONDS@s (Ready: $(ready_status), last heartbeat $(heartbeat), \
before the drain $before): it stays cordoned"
  fi
  sleep @POLL_SECONDS@
done
if [ "$(field '{.metadata.annotations.@CORDONED_FOR_RESTART_KEY@}')" = true ]; then
  kubectl uncordon "$node" >/dev/null || fail "cannot uncordon $node"
  echo "$node uncordoned"
fi
kubectl annotate --overwrite node "$node" "@RUNTIME_INPUTS@=$want" @INSTANCE_ID_ANNOTATION@=@INSTANCE_ID@ \
  @CORDONED_FOR_RESTART@- @HEARTBEAT_AT_DRAIN@- >/dev/null || fail "cannot annotate $node"
echo "$node is Ready and in service"
