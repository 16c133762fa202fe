"""How people reach the cluster: the admin kubeconfigs, the admin group's binding, and the check of the API through
the load balancer."""

from __future__ import annotations

import json

from cluster.render.common import kubeconfig
from infra.certs import ADMIN, CLUSTER_ADMINS_GROUP


def admin_kubeconfig(*, cluster_name: str, endpoint: str, ca_pem: str, cert_pem: str, key_pem: str,
                     user: str = ADMIN) -> str:
    """The everyday `admin` (the cluster-admins group); `user="super-admin"` for the break-glass identity."""
    return kubeconfig(cluster=cluster_name, server=endpoint, ca_pem=ca_pem, user=user, cert_pem=cert_pem,
                      key_pem=key_pem)


def cluster_admins_rbac() -> str:
    """The admin group gets `cluster-admin` through RBAC, where a ClusterRoleBinding can narrow or revoke it."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ADMINS_GROUP},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CLUSTER_ADMINS_GROUP}],
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [binding]}, indent=2) + "\n"


def load_balancer_ready_script(*, endpoint: str, ca_pem: str, timeout_seconds: int = 900) -> str:
    """Run on the deployer's machine: the API answers /readyz through the load balancer, checked against the
    cluster CA. A network load balancer takes minutes to register its first targets, hence the long bound;
    nothing on the nodes waits for this check."""
    return f"""#!/bin/bash
# Verification: {endpoint}/readyz answers through the load balancer.
set -uo pipefail
ca=$(mktemp)
trap 'rm -f "$ca"' EXIT
cat > "$ca" <<'K8S_FROM_SCRATCH_EOF'
{ca_pem.strip()}
K8S_FROM_SCRATCH_EOF
deadline=$((SECONDS + {timeout_seconds}))
until out=$(curl --silent --show-error --fail --max-time 10 --cacert "$ca" "{endpoint}/readyz" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "the API does not answer through the load balancer {endpoint} after {timeout_seconds}s:" >&2
    echo "$out" >&2
    echo "check that your address is in adminCidrs and the target group's health in the AWS console" >&2
    exit 1
  fi
  sleep 10
done
echo "{endpoint}/readyz: $out"
"""
