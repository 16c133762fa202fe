"""In-cluster objects applied from a controller with the admin identity."""

from __future__ import annotations

import json

from cluster.render.common import BIN_DIR
from cluster.render.control_plane import ADMIN_KUBECONFIG
from infra.certs import APISERVER_KUBELET_CLIENT_CN


def apiserver_to_kubelet_rbac() -> str:
    """Lets the API server's kubelet client identity reach kubelets (logs, exec, port-forward, metrics).
    Without it: `Forbidden (user=..., verb=get, resource=nodes, subresource=proxy)`."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:kube-apiserver-to-kubelet",
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                     "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [{"apiGroups": [""], "resources": ["nodes/proxy", "nodes/stats", "nodes/log", "nodes/spec",
                                                    "nodes/metrics"], "verbs": ["*"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:kube-apiserver-to-kubelet"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:kube-apiserver-to-kubelet"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": APISERVER_KUBELET_CLIENT_CN}],
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}, indent=2) + "\n"


def kubectl_apply_script(manifest_name: str, manifest: str) -> str:
    """Server-side apply of a manifest (idempotent), from a controller with the admin kubeconfig."""
    return f"""#!/bin/bash
# Apply {manifest_name}. Verification: kubectl reports each object applied.
set -euo pipefail
{BIN_DIR}/kubectl --kubeconfig {ADMIN_KUBECONFIG} apply --server-side --force-conflicts \\
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{manifest}K8S_FROM_SCRATCH_EOF
"""
