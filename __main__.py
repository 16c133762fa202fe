"""k8s-from-scratch: the table of contents. Read settings, compose the components in order, export outputs."""

import pulumi

from cluster.render.ssh_config import render_ssh_config
from infra.apilb import ApiLoadBalancer, ApiLoadBalancerArgs
from infra.certs import CA_SPECS, KUBERNETES_CA, Host, cluster_cert_specs
from infra.network import Network, NetworkArgs
from infra.nodes import Nodes, NodesArgs
from infra.pki import Pki, PkiArgs
from infra.settings import read_stack_settings

settings = read_stack_settings()
tags = {"cluster": settings.cluster_name, "project": "k8s-from-scratch"}

# 1. Network: VPC, subnets, gateways, route tables, security groups.
network = Network(settings.cluster_name, NetworkArgs(settings=settings, tags=tags))

# 2. Nodes: etcd members, controllers, workers (and a bastion in the private topology).
nodes = Nodes(settings.cluster_name, NodesArgs(
    settings=settings,
    subnet_ids=network.node_subnet_ids,
    public_subnet_ids=network.public_subnet_ids,
    security_group_ids=network.security_group_ids,
    tags=tags,
))

# 3. API load balancer in front of the controllers.
api_lb = ApiLoadBalancer(f"{settings.cluster_name}-api", ApiLoadBalancerArgs(
    cluster_name=settings.cluster_name,
    vpc_id=network.vpc.id,
    subnet_ids=network.public_subnet_ids,
    controller_instance_ids={n.name: n.instance.id for n in nodes.controllers},
    tags=tags,
))

# 4. PKI: CAs and one certificate per identity; the API server's names include the load balancer's.
pki = Pki(f"{settings.cluster_name}-pki", PkiArgs(cas=CA_SPECS, certs=cluster_cert_specs(
    etcd=[Host(n.name, n.private_ip) for n in nodes.etcd],
    controllers=[Host(n.name, n.private_ip) for n in nodes.controllers],
    workers=[Host(n.name, n.private_ip) for n in nodes.workers],
    service_ip=settings.service_ip,
    api_dns_names=[api_lb.dns_name],
)))

# --- outputs: access ----------------------------------------------------------------------------------------------
pulumi.export("apiEndpoint", api_lb.endpoint)
pulumi.export("caCertificate", pki.cas[KUBERNETES_CA].cert_pem)

ssh_identity_file = f"~/.ssh/{settings.cluster_name}"
ssh_targets = {n.name: (n.instance.public_ip if settings.topology == "public" else n.private_ip) for n in nodes.all}
bastion_ip = nodes.bastion.public_ip if nodes.bastion else None
pulumi.export("sshConfig", pulumi.Output.all(hosts=ssh_targets, bastion=bastion_ip).apply(
    lambda v: render_ssh_config(user=settings.ssh_user, identity_file=ssh_identity_file,
                                hosts=v["hosts"], bastion=v["bastion"])))
if nodes.ssh_private_key is not None:
    pulumi.export("sshPrivateKey", nodes.ssh_private_key)
if nodes.bastion is not None:
    pulumi.export("bastionPublicIp", nodes.bastion.public_ip)

# --- outputs: debugging -------------------------------------------------------------------------------------------
pulumi.export("nodes", {
    role: {n.name: {"privateIp": n.private_ip, "publicIp": n.instance.public_ip} for n in members}
    for role, members in (("etcd", nodes.etcd), ("controllers", nodes.controllers), ("workers", nodes.workers))
})
