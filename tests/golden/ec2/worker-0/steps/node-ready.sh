#!/bin/bash
# Verification: worker-0 is a Ready node.
set -uo pipefail
deadline=$((SECONDS + 600))
kubectl() { /usr/local/bin/kubectl --kubeconfig /var/lib/kubelet/kubeconfig "$@"; }
until [ "$(kubectl get node worker-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "node worker-0 is not Ready after 600s:" >&2
    kubectl get node worker-0 -o wide >&2 || true
    for unit in kubelet containerd k8s-cni-config kube-proxy haproxy; do
      echo "--- last lines of the $unit log on worker-0:" >&2
      journalctl -u "$unit" --no-pager -n 20 >&2 || true
    done
    exit 1
  fi
  sleep 5
done
kubectl get node worker-0 -o wide
