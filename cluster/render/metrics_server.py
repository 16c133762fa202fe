"""metrics-server: the resource metrics API (`kubectl top`, the HorizontalPodAutoscaler's CPU and memory) as an
aggregated API, in a namespace of its own that enforces the `restricted` Pod Security profile.

TLS both ways, nothing skipped: the API server verifies metrics-server's serving certificate against the cluster CA
(the APIService's caBundle; the certificate is a row of infra/certs.py), and metrics-server verifies each kubelet's
serving certificate against the same CA, at the node's InternalIP, which every kubelet certificate names. The API
server reaches it at its pods' addresses (`--enable-aggregator-routing`) as the front-proxy client.
"""

from __future__ import annotations

import base64
import json

from cluster.render import shell
from cluster.render.addons import (KUBECTL, NOBODY, RESTRICTED_NAMESPACE_LABELS, restricted_container_security,
                                   restricted_pod_security)
from cluster.render.apiserver_config import TLS_CIPHER_SUITES

NAMESPACE = "metrics-server"
NAME = "metrics-server"
API_GROUP = "metrics.k8s.io"
API_VERSION = "v1beta1"
APISERVICE = f"{API_VERSION}.{API_GROUP}"
LABELS = {"k8s-app": NAME}
SECURE_PORT = 10250
TLS_SECRET = f"{NAME}-tls"
TLS_DIR = "/etc/metrics-server/tls"
# Every pod gets the cluster CA here with its service account token; the same CA signs every kubelet's certificate.
CLUSTER_CA_IN_POD = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
# How often it reads every kubelet; the HPA's default sync period is 15 s as well.
METRIC_RESOLUTION = "15s"


def args() -> list[str]:
    return [
        f"--secure-port={SECURE_PORT}",
        f"--tls-cert-file={TLS_DIR}/tls.crt",
        f"--tls-private-key-file={TLS_DIR}/tls.key",
        f"--tls-cipher-suites={','.join(TLS_CIPHER_SUITES)}",
        # The address every kubelet's certificate carries (infra/certs.py), verified with the cluster CA: no
        # --kubelet-insecure-tls.
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--kubelet-certificate-authority={CLUSTER_CA_IN_POD}",
        f"--metric-resolution={METRIC_RESOLUTION}",
    ]


def _rbac() -> list[dict]:
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]

    def role_ref(kind: str, name: str) -> dict:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}

    rbac = "rbac.authorization.k8s.io/v1"
    return [
        # Who may read the metrics: whoever may view, edit or administer (aggregated into those roles).
        {"apiVersion": rbac, "kind": "ClusterRole",
         "metadata": {"name": "system:aggregated-metrics-reader",
                      "labels": {f"rbac.authorization.k8s.io/aggregate-to-{r}": "true"
                                 for r in ("view", "edit", "admin")}},
         "rules": [{"apiGroups": [API_GROUP], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
        # What it reads: the kubelets' metrics, and the nodes and pods they belong to.
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "system:metrics-server"},
         "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "system:metrics-server"},
         "roleRef": role_ref("ClusterRole", "system:metrics-server"), "subjects": subject},
        # As every aggregated API: it reads the front-proxy settings the API servers publish, and asks them whether
        # the user named in the request headers may do what they ask.
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": "metrics-server-auth-reader", "namespace": "kube-system"},
         "roleRef": role_ref("Role", "extension-apiserver-authentication-reader"), "subjects": subject},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "metrics-server:system:auth-delegator"},
         "roleRef": role_ref("ClusterRole", "system:auth-delegator"), "subjects": subject},
    ]


def _deployment(image: str, replicas: int) -> dict:
    meta = {"namespace": NAMESPACE}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "labels": LABELS, **meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": LABELS},
            # A new pod is ready before an old one goes: the metrics API never has no endpoint in a rollout.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": LABELS}, "spec": {
                "serviceAccountName": NAME,
                "priorityClassName": "system-cluster-critical",
                # fsGroup: the serving key in the secret volume is the group's to read, and only the group's.
                "securityContext": {**restricted_pod_security(NOBODY), "fsGroup": NOBODY},
                # One per worker: losing a worker (or draining it) never takes the whole API away.
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": LABELS}, "topologyKey": "kubernetes.io/hostname"}]}},
                "containers": [{
                    "name": NAME, "image": image, "args": args(),
                    "ports": [{"name": "https", "containerPort": SECURE_PORT, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "400Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                       "periodSeconds": 10, "failureThreshold": 3, "initialDelaySeconds": 20},
                    "livenessProbe": {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                                      "periodSeconds": 10, "failureThreshold": 3},
                    "securityContext": restricted_container_security(),
                    "volumeMounts": [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
                                     {"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
            }},
        },
    }


def manifest(*, image: str, replicas: int, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    """Every object of the add-on. It holds the serving key: apply it only through a secret step."""
    meta = {"namespace": NAMESPACE}
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": RESTRICTED_NAMESPACE_LABELS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, **meta}},
        *_rbac(),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": TLS_SECRET, **meta}, "type": "kubernetes.io/tls",
         "stringData": {"tls.crt": cert_pem, "tls.key": key_pem}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "labels": LABELS, **meta},
         "spec": {"selector": LABELS, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                 "targetPort": "https", "appProtocol": "https"}]}},
        _deployment(image, replicas),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": NAME, **meta},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": LABELS}}} if replicas > 1 else None,
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE,
                                                                                       "labels": LABELS},
         "spec": {"group": API_GROUP, "version": API_VERSION, "groupPriorityMinimum": 100, "versionPriority": 100,
                  "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
                  "caBundle": base64.b64encode(ca_pem.encode()).decode()}},
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [i for i in items if i]}, indent=2) + "\n"


def check_script(*, nodes: list[str], timeout_seconds: int = 300) -> str:
    """Verification: the APIService is Available (the API servers reach metrics-server and it trusts them) and
    the metrics API lists a sample of every node (metrics-server reads every kubelet over verified TLS)."""
    return shell.render("addons/metrics-check.sh", KUBECTL=KUBECTL, NAMESPACE=NAMESPACE, NAME=NAME,
                        APISERVICE=APISERVICE, NODES=" ".join(nodes), TIMEOUT_SECONDS=timeout_seconds,
                        METRICS_RESOURCE=f"nodes.{API_VERSION}.{API_GROUP}")
