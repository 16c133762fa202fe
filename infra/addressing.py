"""Where every subnet and node sits in the VPC. Pure: settings in, addresses out.

Node subnets are sixteenths of the VPC. Zone z has public subnet z and private subnet 8 + z, so a /16 VPC
gives 10.43.0.0/20 (public, zone a), 10.43.16.0/20 (public, zone b), ... and 10.43.128.0/20 (private, zone a).
Nodes of a role go round-robin over zones; inside its subnet a node sits at the role's offset plus its index
there: the default 1-zone public cluster keeps the tutorial's 10.43.0.10+ / .20+ / .30+.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from infra.settings import Settings, node_subnet_prefix, nodes_per_zone, role_offsets

PRIVATE_SUBNET_INDEX = 8
ROLES = ("etcd", "controllers", "workers")
NAME_PREFIX = {"etcd": "etcd", "controllers": "controller", "workers": "worker"}


@dataclass(frozen=True)
class NodePlan:
    role: str          # etcd | controllers | workers
    index: int         # position within its role
    name: str          # hostname == Kubernetes node name == certificate identity
    zone_index: int
    private_ip: str


def _vpc_subnets(settings: Settings) -> list[ipaddress.IPv4Network]:
    vpc = ipaddress.IPv4Network(settings.vpc_cidr)
    return list(vpc.subnets(new_prefix=node_subnet_prefix(vpc)))


def public_subnet_cidrs(settings: Settings) -> list[str]:
    return [str(n) for n in _vpc_subnets(settings)[: settings.zones]]


def private_subnet_cidrs(settings: Settings) -> list[str]:
    subnets = _vpc_subnets(settings)
    return [str(n) for n in subnets[PRIVATE_SUBNET_INDEX: PRIVATE_SUBNET_INDEX + settings.zones]]


def node_subnet_cidrs(settings: Settings) -> list[str]:
    """The subnets nodes live in, one per zone: public or private by topology."""
    return public_subnet_cidrs(settings) if settings.topology == "public" else private_subnet_cidrs(settings)


def reserved_node_block(subnet_cidr: str) -> str:
    """The lower half of a subnet, reserved (SubnetCidrReservation, explicit) for addresses the program assigns:
    nodes and the bastion. AWS places load balancer and NAT interfaces only in the upper half, so they can never
    take a node's planned address. The block does not depend on node counts: scaling never moves a reservation."""
    subnet = ipaddress.IPv4Network(subnet_cidr)
    return str(next(subnet.subnets(prefixlen_diff=1)))


def role_settings(settings: Settings, role: str):
    return {"etcd": settings.etcd, "controllers": settings.controllers, "workers": settings.workers}[role]


def plan_nodes(settings: Settings, role: str) -> list[NodePlan]:
    offsets = role_offsets(*(nodes_per_zone(role_settings(settings, r).count, settings.zones) for r in ROLES))
    subnets = [ipaddress.IPv4Network(c) for c in node_subnet_cidrs(settings)]
    plans = []
    for index in range(role_settings(settings, role).count):
        zone = index % settings.zones
        slot = index // settings.zones
        plans.append(NodePlan(role=role, index=index, name=f"{NAME_PREFIX[role]}-{index}", zone_index=zone,
                              private_ip=str(subnets[zone][offsets[role] + slot])))
    return plans


def all_nodes(settings: Settings) -> list[NodePlan]:
    return [plan for role in ROLES for plan in plan_nodes(settings, role)]


def bastion_ip(settings: Settings) -> str:
    """The bastion sits in the first public subnet at .5, below every node offset."""
    return str(ipaddress.IPv4Network(public_subnet_cidrs(settings)[0])[5])
