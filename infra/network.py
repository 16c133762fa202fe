"""Network: the VPC, a subnet per zone (public, and private behind NAT in the private topology), the internet
gateway, route tables, and one security group per role built from infra/security_rules.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from infra import addressing
from infra.security_rules import groups_in_use, ingress_rules
from infra.settings import Settings


@dataclass
class NetworkArgs:
    settings: Settings
    tags: dict[str, str]
    # The region's availability zones, sorted (infra/aws_facts.py reads them before anything is declared); the
    # first `zones` of them are used.
    zone_names: Sequence[str] = ()


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    internet_gateway: aws.ec2.InternetGateway
    zone_names: list[str]                                   # by zone
    public_subnet_ids: list[pulumi.Output[str]]             # by zone
    node_subnet_ids: list[pulumi.Output[str]]               # by zone
    node_route_table_ids: list[pulumi.Output[str]]          # every table a node subnet uses: pod routes go in each
    # By zone: the default route (and gateway) a node of that zone reaches the internet through.
    egress_ready_by_zone: list[list[pulumi.Resource]]
    address_reservations: list[pulumi.Resource]             # the node blocks
    security_group_ids: dict[str, pulumi.Output[str]]       # by group
    egress_rules: dict[str, pulumi.Resource]                # by group

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:Network", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        def tags(suffix: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{settings.cluster_name}-{suffix}"}

        self.zone_names: list[str] = list(args.zone_names[: settings.zones])

        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=settings.vpc_cidr, enable_dns_support=True,
                               enable_dns_hostnames=True, tags=tags("vpc"), opts=child)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"), opts=child)
        self.internet_gateway = gateway

        public_table = aws.ec2.RouteTable(f"{name}-public", vpc_id=self.vpc.id, tags=tags("public"), opts=child)
        public_default = aws.ec2.Route(f"{name}-public-default", route_table_id=public_table.id,
                                       destination_cidr_block="0.0.0.0/0", gateway_id=gateway.id, opts=child)

        # What must exist before a resource takes an address in a subnet (a NAT gateway, the load balancer): the
        # reservation of the node block.
        self.address_reservations = []

        def subnet(kind: str, z: int, cidr: str, table_id: pulumi.Input[str]) -> pulumi.Output[str]:
            created = aws.ec2.Subnet(f"{name}-{kind}-{z}", vpc_id=self.vpc.id, cidr_block=cidr,
                                     availability_zone=self.zone_names[z], map_public_ip_on_launch=False,
                                     tags=tags(f"{kind}-{z}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-{kind}-{z}", subnet_id=created.id, route_table_id=table_id,
                                          opts=child)
            self.address_reservations.append(aws.ec2.SubnetCidrReservation(
                f"{name}-{kind}-{z}-nodes", subnet_id=created.id, cidr_block=addressing.reserved_node_block(cidr),
                reservation_type="explicit",
                description=f"{settings.cluster_name}: node addresses (assigned explicitly)",
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True)))
            return created.id

        self.public_subnet_ids = [subnet("public", z, cidr, public_table.id)
                                  for z, cidr in enumerate(addressing.public_subnet_cidrs(settings))]

        # What a node in each zone needs before it can reach the internet (packages, binaries): its subnet's
        # default route. The egress rules of the security groups are added below.
        self.egress_ready_by_zone = []
        if settings.topology == "public":
            self.node_subnet_ids = list(self.public_subnet_ids)
            self.node_route_table_ids = [public_table.id]
            self.egress_ready_by_zone = [[public_default, gateway] for _ in range(settings.zones)]
        else:
            # One NAT gateway and one route table per zone: a zone keeps its egress when another zone fails.
            self.node_subnet_ids, self.node_route_table_ids = [], []
            for z, cidr in enumerate(addressing.private_subnet_cidrs(settings)):
                eip = aws.ec2.Eip(f"{name}-nat-{z}", domain="vpc", tags=tags(f"nat-{z}"), opts=child)
                nat = aws.ec2.NatGateway(f"{name}-nat-{z}", allocation_id=eip.id,
                                         subnet_id=self.public_subnet_ids[z], tags=tags(f"nat-{z}"),
                                         opts=pulumi.ResourceOptions(
                                             parent=self, depends_on=[gateway, *self.address_reservations]))
                table = aws.ec2.RouteTable(f"{name}-private-{z}", vpc_id=self.vpc.id, tags=tags(f"private-{z}"),
                                           opts=child)
                nat_default = aws.ec2.Route(f"{name}-private-{z}-default", route_table_id=table.id,
                                            destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child)
                self.node_subnet_ids.append(subnet("private", z, cidr, table.id))
                self.node_route_table_ids.append(table.id)
                self.egress_ready_by_zone.append([nat_default])

        self.security_group_ids = {}
        self.egress_rules = {}
        for group in groups_in_use(settings):
            sg = aws.ec2.SecurityGroup(f"{name}-{group}", vpc_id=self.vpc.id,
                                       description=f"{settings.cluster_name} {group}", tags=tags(group), opts=child)
            self.egress_rules[group] = aws.vpc.SecurityGroupEgressRule(
                f"{name}-{group}-egress", security_group_id=sg.id, ip_protocol="-1", cidr_ipv4="0.0.0.0/0",
                description="all egress", opts=child)
            self.security_group_ids[group] = sg.id

        for rule in ingress_rules(settings):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule.key}",
                security_group_id=self.security_group_ids[rule.group],
                ip_protocol=rule.protocol,
                from_port=rule.from_port,
                to_port=rule.to_port,
                cidr_ipv4=rule.cidr,
                referenced_security_group_id=self.security_group_ids[rule.source_group] if rule.source_group else None,
                description=rule.description,
                opts=child,
            )

        self.register_outputs({"vpcId": self.vpc.id})

