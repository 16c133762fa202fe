"""How people reach the cluster: the admin kubeconfig."""

from __future__ import annotations

from cluster.render.common import kubeconfig


def admin_kubeconfig(*, cluster_name: str, endpoint: str, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    return kubeconfig(cluster=cluster_name, server=endpoint, ca_pem=ca_pem, user="admin", cert_pem=cert_pem,
                      key_pem=key_pem)
