#!/bin/bash
# Verification: the v1beta1.metrics.k8s.io APIService is Available, and the metrics API has a sample of every node
# (worker-0 worker-1 worker-2): the API servers reach metrics-server's pods and it reads every kubelet.
set -uo pipefail
kubectl() { /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@" </dev/null; }
deadline=$((SECONDS + 300))
if ! kubectl -n metrics-server rollout status deployment/metrics-server --timeout=300s; then
  kubectl -n metrics-server get pods -o wide >&2
  kubectl -n metrics-server logs -l k8s-app=metrics-server --tail=20 >&2
  exit 1
fi
available=""
missing="worker-0 worker-1 worker-2"
while [ "$SECONDS" -lt "$deadline" ]; do
  available=$(kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')
  if [ "$available" = True ]; then
    listed=$(kubectl get nodes.v1beta1.metrics.k8s.io -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
    missing=""
    for node in worker-0 worker-1 worker-2; do
      grep -qxF "$node" <<<"$listed" || missing="$missing $node"
    done
    if [ -z "$missing" ]; then
      echo "v1beta1.metrics.k8s.io is available and has metrics of every node: worker-0 worker-1 worker-2"
      exit 0
    fi
  fi
  sleep 5
done
echo "within 300s: v1beta1.metrics.k8s.io Available=${available:-unknown}; no metrics of:${missing}" >&2
kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions}' >&2
echo >&2
kubectl -n metrics-server logs -l k8s-app=metrics-server --tail=20 >&2
exit 1
