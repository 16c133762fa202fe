#!/bin/bash
# Verification: @NODE@ is a Ready node.
set -uo pipefail
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
kubectl() { @BIN_DIR@/kubectl --kubeconfig @KUBECONFIG@ "$@"; }
until [ "$(kubectl get node @NODE@ -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node @NODE@ is not Ready after @TIMEOUT_SECONDS@s:" >&2
    kubectl get node @NODE@ -o wide >&2 || true
    @LOG_TAILS@
    exit 1
  fi
  sleep 5
done
kubectl get node @NODE@ -o wide
