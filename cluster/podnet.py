"""PodNetwork: read the podCIDR the controller-manager gave each worker, then route to it and masquerade.

`podRouting: vpc` adds one VPC route per worker to every route table of the node subnets, targeting the worker's
primary interface. `podRouting: host` programs the same routes on every worker and controller. Both are derived
from the current set of workers, so after one is added, removed or replaced the next `pulumi up` converges: a
removed worker's VPC routes are deleted with it; on hosts, the apply script removes any route it no longer wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from cluster.remote import RemoteHost
from cluster.render import podcidrs, podnet
from cluster.render.common import digest
from cluster.render.control_plane import DEPLOYER_KUBECTL
from infra.nodes import Node

READ_TIMEOUT_SECONDS = 300


@dataclass
class PodNetworkArgs:
    pod_routing: str
    pod_cidr: str
    vpc_cidr: str
    workers: Sequence[Node]
    worker_hosts: dict[str, RemoteHost]
    controller_hosts: dict[str, RemoteHost]
    controllers: Sequence[Node]
    workers_ready: Sequence[pulumi.Resource]
    route_table_ids: Sequence[pulumi.Input[str]]


class PodNetwork(pulumi.ComponentResource):
    ranges: pulumi.Output[list[podcidrs.NodePodRange]]     # the podCIDR the cluster gave each worker
    ready: list[pulumi.Resource]                            # what pod traffic across nodes waits for

    def __init__(self, name: str, args: PodNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:PodNetwork", name, None, opts)
        expected = [w.name for w in args.workers]
        reader_host = next(iter(args.controller_hosts.values()))
        script = podcidrs.reader_script(expected, READ_TIMEOUT_SECONDS, list(DEPLOYER_KUBECTL))
        # Re-read whenever the set of workers changed or a worker is a new machine (which registers anew and may get
        # another range). Not when a worker's kubelet merely restarted (a version bump): the ranges stay known, so a
        # preview does not show every pod route replaced for values that will come out the same.
        reader = reader_host.step("read-pod-cidrs", script, triggers=[script, *(w.instance.id for w in args.workers)],
                                  depends_on=args.workers_ready, parent=self)
        self.ranges = reader.stdout.apply(podcidrs.parse_reader_output)
        by_name = self.ranges.apply(lambda rs: {r.name: r for r in rs})
        self.ready = []

        if args.pod_routing == "vpc":
            for t, table_id in enumerate(args.route_table_ids):
                for worker in args.workers:
                    self.ready.append(aws.ec2.Route(
                        f"{name}-table{t}-{worker.name}",
                        route_table_id=table_id,
                        destination_cidr_block=by_name.apply(lambda m, w=worker.name: m[w].pod_cidr),
                        network_interface_id=worker.instance.primary_network_interface_id,
                        opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True)))

        # Every worker masquerades pod traffic leaving the cluster (cluster/render/podnet.py: which VPC traffic too);
        # in host mode, workers and controllers also get a route to every other worker's pod range.
        hosts = [(args.worker_hosts[w.name], w.private_ip, True) for w in args.workers]
        if args.pod_routing == "host":
            hosts += [(args.controller_hosts[c.name], c.private_ip, False) for c in args.controllers]
        resolver = podnet.vpc_resolver(args.vpc_cidr)
        for host, ip, is_worker in hosts:
            if args.pod_routing == "host":
                apply = self.ranges.apply(lambda rs, ip=ip, w=is_worker: podnet.apply_script(
                    routes=podnet.routes_for(ip, [(r.ip, r.pod_cidr) for r in rs]),
                    cluster_pod_cidr=args.pod_cidr, vpc_cidr=args.vpc_cidr, dns_resolver=resolver, masquerade=w,
                    vpc_routes_pods=False))
            else:
                apply = podnet.apply_script(routes=[], cluster_pod_cidr=args.pod_cidr, vpc_cidr=args.vpc_cidr,
                                            dns_resolver=resolver, masquerade=True)
            install = pulumi.Output.from_input(apply).apply(podnet.install_script)
            self.ready.append(host.step("pod-network", install, triggers=[install.apply(digest)], parent=self,
                                        depends_on=[reader] if args.pod_routing == "host" else []))
        self.register_outputs({})
