"""How people reach the cluster: the admin kubeconfigs and the admin group's binding."""

from __future__ import annotations

import json

from cluster.render.common import kubeconfig
from infra.certs import ADMIN, API_TLS_SERVER_NAME, CLUSTER_ADMINS_GROUP, DEPLOYERS_GROUP


def admin_kubeconfig(*, cluster_name: str, endpoint: str, ca_pem: str, cert_pem: str, key_pem: str,
                     user: str = ADMIN) -> str:
    """The everyday `admin` (the cluster-admins group); `user="super-admin"` for the break-glass identity.

    The endpoint is the load balancer, whose name AWS makes up only once it exists: the API server certificate
    does not carry it (so no controller waits minutes for the load balancer), and clients verify the certificate
    against a name it does carry instead."""
    return kubeconfig(cluster=cluster_name, server=endpoint, ca_pem=ca_pem, user=user, cert_pem=cert_pem,
                      key_pem=key_pem, tls_server_name=API_TLS_SERVER_NAME)


def _cluster_admin_binding(group: str) -> str:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": group},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [binding]}, indent=2) + "\n"


def cluster_admins_rbac() -> str:
    """The admin group gets `cluster-admin` through RBAC, where a ClusterRoleBinding can narrow or revoke it."""
    return _cluster_admin_binding(CLUSTER_ADMINS_GROUP)


def deployers_rbac() -> str:
    """The program's own identity gets `cluster-admin` through a binding of its own (its steps apply ClusterRoles,
    evict pods, cordon and delete Nodes): the people's binding can be narrowed or revoked without breaking it."""
    return _cluster_admin_binding(DEPLOYERS_GROUP)
