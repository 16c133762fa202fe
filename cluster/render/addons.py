"""In-cluster objects applied from a controller with the deployer identity."""

from __future__ import annotations

import json

from cluster.render import shell
from cluster.render.common import kubectl_apply
from cluster.render.control_plane import DEPLOYER_KUBECTL
from infra.certs import APISERVER_KUBELET_CLIENT_CN

KUBECTL = " ".join(DEPLOYER_KUBECTL)


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
    """Server-side apply of a manifest (idempotent), from a controller with the deployer kubeconfig."""
    return shell.render("addons/apply.sh", MANIFEST_NAME=manifest_name, APPLY=kubectl_apply(KUBECTL, manifest))


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


# Pod Security Admission labels for the namespaces this program creates: their pods meet `restricted`.
RESTRICTED_NAMESPACE_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted"
                               for mode in ("enforce", "warn", "audit")}
# The user distroless images run as ("nonroot"): named, not numbered, so the kubelet could not check runAsNonRoot
# without the number.
COREDNS_USER = 65532


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED_NAMESPACE_LABELS}}


def restricted_pod_security(user: int) -> dict:
    """Pod-level part of the `restricted` Pod Security Standard: a non-root user and the runtime's seccomp
    profile."""
    return {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_container_security(*, add: tuple[str, ...] = ()) -> dict:
    """Container-level part of `restricted`: no privilege escalation, every capability dropped (restricted allows
    adding back only NET_BIND_SERVICE), and a read-only root filesystem besides."""
    capabilities: dict = {"drop": ["ALL"]}
    if add:
        capabilities["add"] = list(add)
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": capabilities}


def coredns_manifest(*, cluster_dns_ip: str, image: str, replicas: int) -> str:
    """CoreDNS at the cluster DNS address the kubelets hand to pods, one replica per worker at most (the program
    asks for no more replicas than workers). It lives in kube-system (where clients and tools expect kube-dns) and
    meets the `restricted` profile all the same.

    A drain never takes every replica at once: no two share a node (required anti-affinity, so one node's drain
    evicts one replica), and the PodDisruptionBudget lets one be evicted at a time, the next only once its
    replacement is ready elsewhere. With one replica (one worker) the budget still lets the drain evict it."""
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
                 "securityContext": restricted_pod_security(COREDNS_USER),
                 "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                     {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}]}},
                 "containers": [{
                     "name": "coredns", "image": image, "args": ["-conf", "/etc/coredns/Corefile"],
                     "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
                     "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                               {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
                     # Port 53 as a non-root user: NET_BIND_SERVICE (the one capability `restricted` allows);
                     # containerd 2 also opens unprivileged ports to every pod (enable_unprivileged_ports).
                     "securityContext": restricted_container_security(add=("NET_BIND_SERVICE",)),
                     "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 60},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                     "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                 }],
                 "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
             }},
         }},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "coredns", **meta},
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "labels": labels, **meta},
         "spec": {"selector": labels, "clusterIP": cluster_dns_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}},
    )


DNS_CHECK_NAMESPACE = "dns-check"
DNS_CHECK_POD = "dns-check"
KUBERNETES_SERVICE_NAME = "kubernetes.default.svc.cluster.local"
NOBODY = 65534
DNS_CHECK_POD_SECONDS = 120


def dns_check_pod(*, image: str, names: tuple[str, ...]) -> dict:
    """A pod that looks up each name once and prints busybox's answers, one `=== name` section each. It runs as
    nobody under the `restricted` profile, with no API token, and stops within a bound."""
    lookups = "; ".join(f'echo "=== {n}"; nslookup {n}' for n in names) + '; echo "=== end"'
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": DNS_CHECK_POD, "namespace": DNS_CHECK_NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": DNS_CHECK_POD_SECONDS,
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod_security(NOBODY),
            "containers": [{
                "name": "nslookup", "image": image, "command": ["sh", "-c", lookups],
                "securityContext": restricted_container_security(),
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
            }],
        },
    }


def dns_check_script(*, image: str, kubernetes_service_ip: str, external_name: str,
                     timeout_seconds: int = 300) -> str:
    """Verification: CoreDNS is rolled out, and a pod resolves kubernetes.default to the `kubernetes` Service
    address (CoreDNS answers it) and `external_name` to some address (CoreDNS forwards it to the VPC resolver, which
    answers only the node's address: this proves the pod DNS masquerade). The answers are read from nslookup's
    output, not from its exit code, and busybox prints the server's own address on failure too: only an
    `Address:` line right after a `Name:` line counts.

    The pod is created, waited for and read with plain kubectl calls (no `kubectl run -i`), each with its own
    stdin: the script's stdin carries the script itself (`bash -s`)."""
    pod = json.dumps(dns_check_pod(image=image, names=(KUBERNETES_SERVICE_NAME, external_name)), indent=2)
    return shell.render(
        "addons/dns-check.sh", KUBERNETES_SERVICE_NAME=KUBERNETES_SERVICE_NAME,
        KUBERNETES_SERVICE_IP=kubernetes_service_ip, EXTERNAL_NAME=external_name, KUBECTL=KUBECTL,
        NAMESPACE=DNS_CHECK_NAMESPACE, POD=DNS_CHECK_POD, TIMEOUT_SECONDS=timeout_seconds,
        NAMESPACE_MANIFEST=json.dumps(namespace(DNS_CHECK_NAMESPACE), indent=2), POD_MANIFEST=pod)


SMOKE_TEST_NAMESPACE = "smoke-test"
NGINX_LABELS = {"app": "nginx-smoke-test"}
NGINX_PORT = 8080          # unprivileged: nginx runs as its own user, not root
NGINX_USER = 101           # the `nginx` user of the official image
NGINX_CONFIG_DIR = "/etc/nginx-smoke-test"
# The official image runs nginx as root and writes under /var/cache/nginx and /var/run. Here it runs as the nginx
# user on a read-only root filesystem: every path it writes is under /tmp, an emptyDir; errors go to stderr.
NGINX_CONF = f"""worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 256;
}}

http {{
    include /etc/nginx/mime.types;
    # Off: the readiness probe would fill it, and opening /dev/stdout needs the container user to own it.
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;

    server {{
        listen {NGINX_PORT};
        root /usr/share/nginx/html;
        index index.html;
    }}
}}
"""


def nginx_manifest(*, replicas: int, image: str, node_port: int) -> str:
    """One nginx per worker (a hard spread on the hostname) behind a NodePort Service on a fixed port, in a
    namespace of its own that enforces the `restricted` profile."""
    meta = {"namespace": SMOKE_TEST_NAMESPACE}
    return _list(
        namespace(SMOKE_TEST_NAMESPACE),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nginx", **meta},
         "data": {"nginx.conf": NGINX_CONF}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", **meta},
         "spec": {
             "replicas": replicas,
             "selector": {"matchLabels": NGINX_LABELS},
             "template": {"metadata": {"labels": NGINX_LABELS}, "spec": {
                 "automountServiceAccountToken": False,
                 "securityContext": restricted_pod_security(NGINX_USER),
                 "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                "whenUnsatisfiable": "DoNotSchedule",
                                                "labelSelector": {"matchLabels": NGINX_LABELS}}],
                 "containers": [{
                     "name": "nginx", "image": image,
                     # nginx itself, not the image's entrypoint scripts (they try to edit files under /etc/nginx).
                     "command": ["nginx", "-c", f"{NGINX_CONFIG_DIR}/nginx.conf"],
                     "ports": [{"containerPort": NGINX_PORT}],
                     "readinessProbe": {"httpGet": {"path": "/", "port": NGINX_PORT}},
                     "securityContext": restricted_container_security(),
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                     "volumeMounts": [{"name": "config", "mountPath": NGINX_CONFIG_DIR, "readOnly": True},
                                      {"name": "tmp", "mountPath": "/tmp"}],
                 }],
                 "volumes": [{"name": "config", "configMap": {"name": "nginx"}},
                             {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
             }},
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", **meta},
         "spec": {"type": "NodePort", "selector": NGINX_LABELS,
                  "ports": [{"port": 80, "targetPort": NGINX_PORT, "nodePort": node_port}]}},
    )


def nginx_rollout_script(timeout_seconds: int = 300) -> str:
    return shell.render("addons/nginx-rollout.sh", KUBECTL=KUBECTL, NAMESPACE=SMOKE_TEST_NAMESPACE,
                        TIMEOUT_SECONDS=timeout_seconds)
