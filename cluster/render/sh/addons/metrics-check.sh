#!/bin/bash
# Verification: the @APISERVICE@ APIService is Available, and the metrics API has a sample of every node
# (@NODES@): the API servers reach metrics-server's pods and it reads every kubelet.
set -uo pipefail
kubectl() { @KUBECTL@ "$@" </dev/null; }
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
if ! kubectl -n @NAMESPACE@ rollout status deployment/@NAME@ --timeout=@TIMEOUT_SECONDS@s; then
  kubectl -n @NAMESPACE@ get pods -o wide >&2
  kubectl -n @NAMESPACE@ logs -l k8s-app=@NAME@ --tail=20 >&2
  exit 1
fi
available=""
missing="@NODES@"
while [ "$SECONDS" -lt "$deadline" ]; do
  available=$(kubectl get apiservice @APISERVICE@ -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')
  if [ "$available" = True ]; then
    listed=$(kubectl get @METRICS_RESOURCE@ -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
    missing=""
    for node in @NODES@; do
      grep -qxF "$node" <<<"$listed" || missing="$missing $node"
    done
    if [ -z "$missing" ]; then
      echo "@APISERVICE@ is available and has metrics of every node: @NODES@"
      exit 0
    fi
  fi
  sleep 5
done
echo "within @TIMEOUT_SECONDS@s: @APISERVICE@ Available=${available:-unknown}; no metrics of:${missing}" >&2
kubectl get apiservice @APISERVICE@ -o jsonpath='{.status.conditions}' >&2
echo >&2
kubectl -n @NAMESPACE@ logs -l k8s-app=@NAME@ --tail=20 >&2
exit 1
