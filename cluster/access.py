"""The admin and break-glass kubeconfigs (secrets) and the check that the API answers through the load balancer."""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.render.access import admin_kubeconfig, load_balancer_ready_script
from infra.certs import ADMIN, KUBERNETES_CA, SUPER_ADMIN
from infra.pki import Pki


def _kubeconfig_output(cluster_name: str, endpoint: pulumi.Output[str], pki: Pki, identity: str
                       ) -> pulumi.Output[str]:
    keys = pki.certs[identity]
    return pulumi.Output.secret(pulumi.Output.all(endpoint, pki.cas[KUBERNETES_CA].cert_pem, keys.cert_pem,
                                                  keys.key_pem).apply(
        lambda v: admin_kubeconfig(cluster_name=cluster_name, endpoint=v[0], ca_pem=v[1], cert_pem=v[2],
                                   key_pem=v[3], user=identity)))


def admin_kubeconfig_output(cluster_name: str, endpoint: pulumi.Output[str], pki: Pki) -> pulumi.Output[str]:
    """The everyday kubeconfig: the admin group, bound to cluster-admin by RBAC."""
    return _kubeconfig_output(cluster_name, endpoint, pki, ADMIN)


def super_admin_kubeconfig_output(cluster_name: str, endpoint: pulumi.Output[str], pki: Pki) -> pulumi.Output[str]:
    """Break glass: system:masters, which no RBAC change can lock out (nor revoke until the CA is replaced)."""
    return _kubeconfig_output(cluster_name, endpoint, pki, SUPER_ADMIN)


def load_balancer_check(name: str, endpoint: pulumi.Output[str], pki: Pki,
                        control_plane_ready: Sequence[pulumi.Resource]) -> command.local.Command:
    """Runs beside the worker steps (only after the API servers are ready): nothing waits for it."""
    script = pulumi.Output.all(endpoint, pki.cas[KUBERNETES_CA].cert_pem).apply(
        lambda v: load_balancer_ready_script(endpoint=v[0], ca_pem=v[1]))
    return command.local.Command(
        name, create="bash -s", stdin=script, triggers=[script, *(r.id for r in control_plane_ready)],
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(depends_on=list(control_plane_ready),
                                    custom_timeouts=pulumi.CustomTimeouts(create="20m")))
