"""In-cluster objects applied from a controller with the admin identity."""

from __future__ import annotations

import json

from cluster.render.control_plane import ADMIN_KUBECTL
from infra.certs import APISERVER_KUBELET_CLIENT_CN

KUBECTL = " ".join(ADMIN_KUBECTL)


def apiserver_to_kubelet_rbac() -> str:
    """Lets the API server's kubelet client identity reach kubelets (logs, exec, port-forward, metrics) through the
    built-in `system:kubelet-api-admin` ClusterRole, which Kubernetes keeps current (it gains the fine-grained
    kubelet subresources as they appear); no role of ours, so no wildcard of ours (CIS 5.1.3).
    Without it: `Forbidden (user=..., verb=get, resource=nodes, subresource=proxy)`."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "k8s-from-scratch:kube-apiserver-to-kubelet"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:kubelet-api-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": APISERVER_KUBELET_CLIENT_CN}],
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [binding]}, indent=2) + "\n"


def kubectl_apply_script(manifest_name: str, manifest: str) -> str:
    """Server-side apply of a manifest (idempotent), from a controller with the admin kubeconfig."""
    return f"""#!/bin/bash
# Apply {manifest_name}. Verification: kubectl reports each object applied.
set -euo pipefail
{KUBECTL} apply --server-side --force-conflicts \\
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{manifest}K8S_FROM_SCRATCH_EOF
"""


def _list(*items: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)}, indent=2) + "\n"


COREDNS_COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def coredns_manifest(*, cluster_dns_ip: str, image: str, replicas: int) -> str:
    """CoreDNS at the cluster DNS address the kubelets hand to pods, spread over workers."""
    labels = {"k8s-app": "kube-dns"}
    meta = {"namespace": "kube-system"}
    return _list(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", **meta}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", **meta},
         "data": {"Corefile": COREDNS_COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "labels": labels, **meta},
         "spec": {
             "replicas": replicas,
             "selector": {"matchLabels": labels},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
             "template": {"metadata": {"labels": labels}, "spec": {
                 "serviceAccountName": "coredns",
                 "priorityClassName": "system-cluster-critical",
                 "dnsPolicy": "Default",
                 "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                "whenUnsatisfiable": "ScheduleAnyway",
                                                "labelSelector": {"matchLabels": labels}}],
                 "containers": [{
                     "name": "coredns", "image": image, "args": ["-conf", "/etc/coredns/Corefile"],
                     "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
                     "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                               {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                     "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                         "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
                     "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 60},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                     "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                 }],
                 "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
             }},
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "labels": labels, **meta},
         "spec": {"selector": labels, "clusterIP": cluster_dns_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}},
    )


def dns_check_script(*, image: str, timeout_seconds: int = 300) -> str:
    """Verification: CoreDNS is rolled out and a pod resolves kubernetes.default."""
    return f"""#!/bin/bash
# Verification: a pod resolves kubernetes.default through CoreDNS.
set -uo pipefail
kubectl() {{ {KUBECTL} "$@"; }}
kubectl -n kube-system rollout status deployment/coredns --timeout={timeout_seconds}s || {{
  kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide >&2
  exit 1
}}
deadline=$((SECONDS + {timeout_seconds}))
until out=$(kubectl run dns-check-$RANDOM --namespace default --image={image} --restart=Never --rm -i --quiet \\
    --pod-running-timeout=120s --command -- nslookup kubernetes.default.svc.cluster.local 2>&1) \\
    && echo "$out" | grep -q "Address"; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "no pod could resolve kubernetes.default after {timeout_seconds}s:" >&2
    echo "$out" >&2
    kubectl -n kube-system logs -l k8s-app=kube-dns --tail=20 >&2 || true
    exit 1
  fi
  sleep 5
done
echo "$out"
"""


NGINX_LABELS = {"app": "nginx-smoke-test"}


def nginx_manifest(*, replicas: int, image: str, node_port: int) -> str:
    """One nginx per worker (a hard spread on the hostname) behind a NodePort Service on a fixed port."""
    return _list(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "namespace": "default"},
         "spec": {
             "replicas": replicas,
             "selector": {"matchLabels": NGINX_LABELS},
             "template": {"metadata": {"labels": NGINX_LABELS}, "spec": {
                 "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                "whenUnsatisfiable": "DoNotSchedule",
                                                "labelSelector": {"matchLabels": NGINX_LABELS}}],
                 "containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}],
                                 "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}],
             }},
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "default"},
         "spec": {"type": "NodePort", "selector": NGINX_LABELS,
                  "ports": [{"port": 80, "targetPort": 80, "nodePort": node_port}]}},
    )


def nginx_rollout_script(timeout_seconds: int = 300) -> str:
    return f"""#!/bin/bash
# Verification: every nginx replica is ready, one per worker.
set -uo pipefail
if ! {KUBECTL} -n default rollout status deployment/nginx --timeout={timeout_seconds}s; then
  {KUBECTL} -n default get pods -l app=nginx-smoke-test -o wide >&2
  {KUBECTL} -n default describe deployment nginx >&2
  exit 1
fi
{KUBECTL} -n default get pods -l app=nginx-smoke-test -o wide
"""
