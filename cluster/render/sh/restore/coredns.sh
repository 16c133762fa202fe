#!/bin/bash
# Restart CoreDNS so that it relists from the restored store. Verification: its rollout completes.
set -uo pipefail
@KUBECTL@ -n kube-system rollout restart deployment/coredns || exit 1
if ! @KUBECTL@ -n kube-system rollout status deployment/coredns --timeout=@TIMEOUT_SECONDS@s; then
  @KUBECTL@ -n kube-system get pods -l k8s-app=kube-dns -o wide >&2
  exit 1
fi
