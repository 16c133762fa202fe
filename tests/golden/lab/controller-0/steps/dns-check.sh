#!/bin/bash
# Verification: a pod resolves kubernetes.default.svc.cluster.local to 10.32.0.1 and sts.amazonaws.com to an
# address, through CoreDNS.
set -uo pipefail
# This script arrives on stdin (`bash -s`): kubectl gets /dev/null as its stdin, so that nothing can read the rest
# of the script; `kubectl_fed` is for the calls fed a manifest from a here-document.
kubectl() { /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@" </dev/null; }
kubectl_fed() { /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig "$@"; }
ns=dns-check
pod=dns-check
deadline=$((SECONDS + 300))
kubectl -n kube-system rollout status deployment/coredns --timeout=300s || {
  kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide >&2
  exit 1
}
kubectl_fed apply --server-side --force-conflicts --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF' || exit 1
{
  "apiVersion": "v1",
  "kind": "Namespace",
  "metadata": {
    "name": "dns-check",
    "labels": {
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
      "pod-security.kubernetes.io/audit": "restricted"
    }
  }
}
K8S_FROM_SCRATCH_EOF
# The addresses nslookup printed as answers in section "=== $1" of the pod's log ($2).
answers() {
  awk -v section="=== $1" '$0 == section {on = 1; next} /^=== / {on = 0}
    on && previous ~ /^Name:/ && /^Address: / {print $2} {previous = $0}' <<<"$2"
}
while :; do
  kubectl -n "$ns" delete pod "$pod" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
  created=$(kubectl_fed -n "$ns" create -f - 2>&1 <<'K8S_FROM_SCRATCH_EOF'
{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "dns-check",
    "namespace": "dns-check"
  },
  "spec": {
    "restartPolicy": "Never",
    "activeDeadlineSeconds": 120,
    "automountServiceAccountToken": false,
    "securityContext": {
      "runAsNonRoot": true,
      "runAsUser": 65534,
      "runAsGroup": 65534,
      "seccompProfile": {
        "type": "RuntimeDefault"
      }
    },
    "containers": [
      {
        "name": "nslookup",
        "image": "docker.io/library/busybox:1.37",
        "command": [
          "sh",
          "-c",
          "echo \"=== kubernetes.default.svc.cluster.local\"; nslookup kubernetes.default.svc.cluster.local; echo \"=== sts.amazonaws.com\"; nslookup sts.amazonaws.com; echo \"=== end\""
        ],
        "securityContext": {
          "allowPrivilegeEscalation": false,
          "readOnlyRootFilesystem": true,
          "capabilities": {
            "drop": [
              "ALL"
            ]
          }
        },
        "resources": {
          "requests": {
            "cpu": "10m",
            "memory": "16Mi"
          },
          "limits": {
            "memory": "32Mi"
          }
        }
      }
    ]
  }
}
K8S_FROM_SCRATCH_EOF
)
  phase=""
  until [ "$phase" = Succeeded ] || [ "$phase" = Failed ] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 2
    phase=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null)
  done
  log=$(kubectl -n "$ns" logs "$pod" 2>&1)
  internal=$(answers kubernetes.default.svc.cluster.local "$log")
  external=$(answers sts.amazonaws.com "$log")
  if grep -qxF 10.32.0.1 <<<"$internal" && [ -n "$external" ]; then
    kubectl -n "$ns" delete pod "$pod" --wait=false >/dev/null 2>&1
    echo "kubernetes.default.svc.cluster.local: ${internal//$'\n'/ }"
    echo "sts.amazonaws.com: ${external//$'\n'/ }"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "no pod resolved both kubernetes.default.svc.cluster.local (want 10.32.0.1) and sts.amazonaws.com" \
      "within 300s. Last pod: phase ${phase:-unknown}; kubernetes.default.svc.cluster.local:" \
      "${internal:-no answer}; sts.amazonaws.com: ${external:-no answer}. It printed:" >&2
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
