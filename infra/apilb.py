"""ApiLoadBalancer: a network load balancer on TCP 6443 in front of every API server.

The health check asks `/readyz` over HTTPS: the API server answers it to anonymous clients
(system:public-info-viewer), so no insecure port is needed, and a server that is up but not ready (etcd
unreachable, say) leaves the pool. People reach the API through this name; nodes never depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from cluster.render.control_plane import API_LB_CHECK_INTERVAL_SECONDS, API_LB_UNHEALTHY_THRESHOLD
from infra.security_rules import API_PORT
from infra.settings import aws_names


@dataclass
class ApiLoadBalancerArgs:
    cluster_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]          # public subnets, one per zone
    controller_instance_ids: dict[str, pulumi.Input[str]]   # node name -> instance id
    tags: dict[str, str]
    # An internet-facing load balancer is refused in a VPC whose internet gateway is not attached yet, and its
    # interfaces must find the node address blocks already reserved: the network's gateway and reservations.
    depends_on: Sequence[pulumi.Resource] = ()


class ApiLoadBalancer(pulumi.ComponentResource):
    dns_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]                 # https://<dns name>:6443

    def __init__(self, name: str, args: ApiLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:ApiLoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "Name": f"{args.cluster_name}-api"}
        names = aws_names(args.cluster_name)
        # Explicit names (settings.py checks they fit ELBv2's 32 characters) are unique in the account and region,
        # so a replacement must delete the old one first.
        unique_name = pulumi.ResourceOptions(parent=self, delete_before_replace=True)

        lb = aws.lb.LoadBalancer(
            f"{name}-nlb",
            name=names["load balancer"],
            load_balancer_type="network",
            internal=False,
            subnets=list(args.subnet_ids),
            # With one zone there is nothing to cross; with several, any node answers for any zone's clients.
            enable_cross_zone_load_balancing=len(args.subnet_ids) > 1,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(unique_name, pulumi.ResourceOptions(depends_on=list(args.depends_on))),
        )
        targets = aws.lb.TargetGroup(
            f"{name}-controllers",
            name=names["target group"],
            port=API_PORT,
            protocol="TCP",
            target_type="instance",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTPS", port=str(API_PORT), path="/readyz", matcher="200",
                # An API server that is asked to stop keeps serving until this check has taken it out (its
                # --shutdown-delay-duration follows these two numbers).
                interval=API_LB_CHECK_INTERVAL_SECONDS, healthy_threshold=2,
                unhealthy_threshold=API_LB_UNHEALTHY_THRESHOLD),
            tags=tags,
            opts=unique_name,
        )
        aws.lb.Listener(
            f"{name}-api",
            load_balancer_arn=lb.arn,
            port=API_PORT,
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=targets.arn)],
            tags=tags,
            opts=child,
        )
        for node_name, instance_id in args.controller_instance_ids.items():
            aws.lb.TargetGroupAttachment(f"{name}-{node_name}", target_group_arn=targets.arn,
                                         target_id=instance_id, port=API_PORT, opts=child)

        self.dns_name = lb.dns_name
        self.endpoint = lb.dns_name.apply(lambda dns: f"https://{dns}:{API_PORT}")
        self.register_outputs({"endpoint": self.endpoint})
