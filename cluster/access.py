"""The admin and break-glass kubeconfigs (secrets) and the check that the API answers through the load balancer."""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.remote import deployer_python
from cluster.render.access import admin_kubeconfig
from cluster.render.common import digest
from cluster.render.deployer_checks import api_check_program
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


def load_balancer_check(name: str, kubeconfig: pulumi.Output[str], control_plane_ready: Sequence[pulumi.Resource],
                        parent: pulumi.Resource) -> command.local.Command:
    """Runs on the deployer beside the worker steps (only after the API servers are ready): the exported admin
    kubeconfig reaches the API through the load balancer. Nothing waits for it. The program carries the kubeconfig,
    so it is secret and its logging is off."""
    program = pulumi.Output.secret(kubeconfig.apply(api_check_program))
    return command.local.Command(
        name, create=deployer_python(), stdin=program,
        triggers=[program.apply(digest), *(r.id for r in control_plane_ready)], logging="none",
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(control_plane_ready),
                                    aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)],
                                    custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m")))
