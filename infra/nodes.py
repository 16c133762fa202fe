"""Nodes: the EC2 instances of every role (and the bastion in the private topology), the Ubuntu AMI lookup and
the SSH key pair."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra import addressing
from infra.addressing import NodePlan
from infra.aws_facts import ARCHITECTURE_TAG, CANONICAL_OWNER_ID, CLUSTER_TAG, EC2_ARCH, ROLE_TAG, SSH_KEY_TAG
from infra.settings import Settings, key_pair_former_name, key_pair_resource_name, ssh_key_identity
from infra.user_data import render_user_data

AMI_ARCH = {"amd64": "amd64", "arm64": "arm64"}


@dataclass
class Node:
    plan: NodePlan
    instance: aws.ec2.Instance
    instance_type: str
    # What must exist before the node can reach the internet (its zone's default route, its group's egress rule):
    # the node's first remote step waits for these, not only for the instance.
    egress_ready: Sequence[pulumi.Resource] = ()

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def private_ip(self) -> str:
        return self.plan.private_ip


@dataclass
class NodesArgs:
    settings: Settings
    subnet_ids: Sequence[pulumi.Input[str]]            # node subnets, by zone
    public_subnet_ids: Sequence[pulumi.Input[str]]     # for the bastion
    security_group_ids: dict[str, pulumi.Input[str]]   # by role
    tags: dict[str, str]
    egress_ready_by_zone: Sequence[Sequence[pulumi.Resource]] = ()   # Network.egress_ready_by_zone
    egress_rules: dict[str, pulumi.Resource] | None = None            # Network.egress_rules, by group
    etcd_instance_profile: pulumi.Input[str] | None = None            # BackupBucket's, when snapshots go to S3
    # Per node name, the instance type this update gives it (RunningNodes.staged_instance_types): a new type
    # reaches a running role a few nodes per update. A node not listed gets its role's setting.
    instance_types: Mapping[str, str] = field(default_factory=dict)


def ubuntu_ami(architecture: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest Ubuntu 24.04 LTS image published by Canonical for this architecture."""
    return aws.ec2.get_ami_output(
        most_recent=True,
        owners=[CANONICAL_OWNER_ID],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[
                f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{AMI_ARCH[architecture]}-server-*"]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=[EC2_ARCH[architecture]]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
        ],
        opts=pulumi.InvokeOptions(parent=parent),
    ).id


class Nodes(pulumi.ComponentResource):
    etcd: list[Node]
    controllers: list[Node]
    workers: list[Node]
    bastion: aws.ec2.Instance | None                        # in the private topology
    public: bool                                            # whether nodes have public addresses
    key_name: pulumi.Output[str]
    ssh_private_key: pulumi.Output[str] | None              # secret; None when the user brought their own public key

    def __init__(self, name: str, args: NodesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:Nodes", name, None, opts)
        settings = args.settings

        if settings.ssh_public_key:
            public_key: pulumi.Input[str] = settings.ssh_public_key
            self.ssh_private_key = None

        else:
            generated = tls.PrivateKey(f"{name}-ssh", algorithm="ED25519", opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"]))
            public_key = generated.public_key_openssh
            self.ssh_private_key = pulumi.Output.secret(generated.private_key_openssh)
        # AWS may read the public key back in another form (pulumi-aws 7.x reads it, where 6.x did not): such a
        # refresh must not turn into a new key pair and with it new nodes. A key the user changes has a new name;
        # a new comment on the same key is the same key pair. The tag tells infra/guards.py which key it holds.
        former = key_pair_former_name(name, settings.ssh_public_key)
        key_pair = aws.ec2.KeyPair(key_pair_resource_name(name, settings.ssh_public_key), public_key=public_key,
                                   tags={**args.tags, "Name": f"{settings.cluster_name}-ssh",
                                         SSH_KEY_TAG: ssh_key_identity(settings.ssh_public_key)},
                                   opts=pulumi.ResourceOptions(parent=self, ignore_changes=["publicKey"],
                                                               aliases=[pulumi.Alias(name=former)] if former else None))
        self.key_name = key_pair.key_name

        ami = ubuntu_ami(settings.architecture, self)
        public = settings.topology == "public"

        def launch(plan: NodePlan, instance_type: str, volume_gb: int, group: str, *, routes_pods: bool,
                   subnet_id: pulumi.Input[str], with_public_ip: bool,
                   instance_profile: pulumi.Input[str] | None = None, replaced_for_type: bool = False
                   ) -> aws.ec2.Instance:
            return aws.ec2.Instance(
                f"{name}-{plan.name}",
                ami=ami,
                instance_type=instance_type,
                subnet_id=subnet_id,
                private_ip=plan.private_ip,
                associate_public_ip_address=with_public_ip,
                vpc_security_group_ids=[args.security_group_ids[group]],
                key_name=key_pair.key_name,
                iam_instance_profile=instance_profile,
                # Packets from and to pod addresses pass through the node's interface: EC2 drops them unless the
                # source/destination check is off.
                source_dest_check=not routes_pods,
                metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                    http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
                root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                    volume_type="gp3", volume_size=volume_gb, encrypted=True, delete_on_termination=True),
                user_data=render_user_data(plan.name),
                tags={**args.tags, "Name": f"{settings.cluster_name}-{plan.name}", CLUSTER_TAG: settings.cluster_name,
                      ROLE_TAG: plan.role, ARCHITECTURE_TAG: settings.architecture},
                volume_tags={**args.tags, "Name": f"{settings.cluster_name}-{plan.name}"},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # A newer Ubuntu image must not replace running nodes on an unrelated `pulumi up`: a node keeps
                    # its image for its lifetime, and a replacement launches that image again (the engine feeds
                    # ignored inputs their old values, step_generator.go 1264-1268). infra/guards.py warns when the
                    # image is gone; docs/recovery.md says what to do then.
                    ignore_changes=["ami"],
                    # The node's address is fixed: its replacement can only start once the old one has gone.
                    delete_before_replace=True,
                    # A worker of another type is a new machine: its removal step drains it before the old one goes
                    # (EC2 would stop it in place, pods and all).
                    replace_on_changes=["instanceType"] if replaced_for_type else None),
            )

        def egress_ready(plan: NodePlan, group: str) -> list[pulumi.Resource]:
            route = list(args.egress_ready_by_zone[plan.zone_index]) if args.egress_ready_by_zone else []
            rule = [args.egress_rules[group]] if args.egress_rules else []
            return route + rule

        def role(role_name: str, group: str, routes_pods: bool,
                 instance_profile: pulumi.Input[str] | None = None) -> list[Node]:
            rs = addressing.role_settings(settings, role_name)
            nodes = []
            for plan in addressing.plan_nodes(settings, role_name):
                instance_type = args.instance_types.get(plan.name, rs.instance_type)
                if instance_type != rs.instance_type:
                    pulumi.log.warn(f"setting '{role_name}.instanceType' = {rs.instance_type!r} reaches {plan.name} "
                                    f"in a later update: it keeps {instance_type!r} in this one, so that no more "
                                    "than one etcd member, one controller or one rollout batch of workers stops at "
                                    "a time. Run `pulumi up` again until no such warning is left", resource=self)
                instance = launch(plan, instance_type, rs.root_volume_gb, group, routes_pods=routes_pods,
                                  subnet_id=args.subnet_ids[plan.zone_index], with_public_ip=public,
                                  instance_profile=instance_profile, replaced_for_type=role_name == "workers")
                nodes.append(Node(plan, instance, instance_type, egress_ready(plan, group)))
            return nodes

        # Only etcd members get a role, and only to upload their snapshots; no other node holds AWS credentials.
        self.etcd = role("etcd", "etcd", routes_pods=False, instance_profile=args.etcd_instance_profile)
        self.controllers = role("controllers", "controllers", routes_pods=False)
        self.workers = role("workers", "workers", routes_pods=True)

        self.public = public
        self.bastion = None
        if not public:
            plan = NodePlan("bastion", 0, "bastion", 0, addressing.bastion_ip(settings))
            self.bastion = launch(plan, settings.bastion_instance_type, 8, "bastion", routes_pods=False,
                                  subnet_id=args.public_subnet_ids[0], with_public_ip=True)

        self.register_outputs({})

    @property
    def all(self) -> list[Node]:
        return [*self.etcd, *self.controllers, *self.workers]

    def ssh_addresses(self, members: list[Node]) -> list[pulumi.Input[str]]:
        """Where SSH reaches each node: its public address, or its private one behind the bastion."""
        return [n.instance.public_ip if self.public else n.private_ip for n in members]
