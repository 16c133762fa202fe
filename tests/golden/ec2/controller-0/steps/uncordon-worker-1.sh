#!/bin/bash
# Bring worker-1 back into service on machine i-18776b4276b5. Verification: the node is Ready with a status reported
# since its drain, and schedulable unless someone else cordoned it.
set -uo pipefail
node=worker-1
kubectl() { timeout 60 /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@"; }
fail() { echo "$1" >&2; exit 1; }
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() { kubectl get node "$node" -o "jsonpath=$1"; }
ready_status() { field '{.status.conditions[?(@.type=="Ready")].status}'; }
heartbeat() { field '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'; }
want=<fingerprint>
before=$(field '{.metadata.annotations.k8s-from-scratch\.io/heartbeat-at-drain}') || fail "cannot read node $node"
deadline=$((SECONDS + 600))
until [ "$(ready_status)" = True ] && { [ -z "$before" ] || [ "$(heartbeat)" != "$before" ]; }; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    kubectl get node "$node" -o wide >&2 || true
    fail "$node is not Ready again after 600s (Ready: $(ready_status), last heartbeat $(heartbeat), \
before the drain $before): it stays cordoned"
  fi
  sleep 5
done
if [ "$(field '{.metadata.annotations.k8s-from-scratch\.io/cordoned-for-restart}')" = true ]; then
  kubectl uncordon "$node" >/dev/null || fail "cannot uncordon $node"
  echo "$node uncordoned"
fi
kubectl annotate --overwrite node "$node" "k8s-from-scratch.io/pod-runtime-inputs=$want" k8s-from-scratch.io/instance-id=i-18776b4276b5 \
  k8s-from-scratch.io/cordoned-for-restart- k8s-from-scratch.io/heartbeat-at-drain- >/dev/null || fail "cannot annotate $node"
echo "$node is Ready and in service"
