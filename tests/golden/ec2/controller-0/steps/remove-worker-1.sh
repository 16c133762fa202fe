#!/bin/bash
# Verification: worker-1 is a registered node (drained and deleted before its machine goes).
set -uo pipefail
node=worker-1
kubectl() { timeout 60 /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@"; }
fail() { echo "$1" >&2; exit 1; }
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() { kubectl get node "$node" -o "jsonpath=$1"; }
ready_status() { field '{.status.conditions[?(@.type=="Ready")].status}'; }
heartbeat() { field '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'; }
kubectl get node "$node" -o name || fail "$node is not a registered node"
