#!/bin/bash
# Verification: a pod resolves @KUBERNETES_SERVICE_NAME@ to @KUBERNETES_SERVICE_IP@ and @EXTERNAL_NAME@ to an
# address, through CoreDNS.
set -uo pipefail
# This script arrives on stdin (`bash -s`): kubectl gets /dev/null as its stdin, so that nothing can read the rest
# of the script; `kubectl_fed` is for the calls fed a manifest from a here-document.
kubectl() { @KUBECTL@ "$@" </dev/null; }
kubectl_fed() { @KUBECTL@ "$@"; }
ns=@NAMESPACE@
pod=@POD@
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
kubectl -n kube-system rollout status deployment/coredns --timeout=@TIMEOUT_SECONDS@s || {
  kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide >&2
  exit 1
}
kubectl_fed apply --server-side --force-conflicts --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF' || exit 1
@NAMESPACE_MANIFEST@
K8S_FROM_SCRATCH_EOF
# The addresses nslookup printed as answers in section "=== $1" of the pod's log ($2).
answers() {
  awk -v section="=== $1" '$0 == section {on = 1; next} /^=== / {on = 0}
    on && previous ~ /^Name:/ && /^Address: / {print $2} {previous = $0}' <<<"$2"
}
while :; do
  kubectl -n "$ns" delete pod "$pod" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
  created=$(kubectl_fed -n "$ns" create -f - 2>&1 <<'K8S_FROM_SCRATCH_EOF'
@POD_MANIFEST@
K8S_FROM_SCRATCH_EOF
)
  phase=""
  until [ "$phase" = Succeeded ] || [ "$phase" = Failed ] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 2
    phase=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null)
  done
  log=$(kubectl -n "$ns" logs "$pod" 2>&1)
  internal=$(answers @KUBERNETES_SERVICE_NAME@ "$log")
  external=$(answers @EXTERNAL_NAME@ "$log")
  if grep -qxF @KUBERNETES_SERVICE_IP@ <<<"$internal" && [ -n "$external" ]; then
    kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null 2>&1
    echo "@KUBERNETES_SERVICE_NAME@: ${internal//$'\n'/ }"
    echo "@EXTERNAL_NAME@: ${external//$'\n'/ }"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "no pod resolved both @KUBERNETES_SERVICE_NAME@ (want @KUBERNETES_SERVICE_IP@) and @EXTERNAL_NAME@" \
      "within @TIMEOUT_SECONDS@s. Last pod: phase ${phase:-unknown}; @KUBERNETES_SERVICE_NAME@:" \
      "${internal:-no answer}; @EXTERNAL_NAME@: ${external:-no answer}. It printed:" >&2
    echo "${created}" >&2
    echo "$log" >&2
    kubectl -n "$ns" describe pod "$pod" 2>&1 | tail -n 20 >&2
    echo "--- CoreDNS:" >&2
    kubectl -n kube-system logs -l k8s-app=kube-dns --tail=20 >&2
    kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null 2>&1
    exit 1
  fi
  sleep 5
done
