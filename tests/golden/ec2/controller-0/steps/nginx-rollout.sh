#!/bin/bash
# Verification: every nginx replica is ready, one per worker.
set -uo pipefail
if ! /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig -n smoke-test rollout status deployment/nginx --timeout=300s; then
  /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig -n smoke-test get pods -l app=nginx-smoke-test -o wide >&2
  /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig -n smoke-test describe deployment nginx >&2
  exit 1
fi
/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig -n smoke-test get pods -l app=nginx-smoke-test -o wide
