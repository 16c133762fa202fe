"""PodNetwork: read the podCIDR the controller-manager gave each worker, then route to it and masquerade.

`podRouting: vpc` adds one VPC route per worker to every route table of the node subnets, targeting the worker's
primary interface. `podRouting: host` programs the same routes on every worker and controller. Both follow the
cluster's own truth, read twice: each worker reads its range once it is Ready (again whenever it is a new machine),
and the deployer reads every node's range from the API at each `pulumi up` before anything changes; the newer
registration of a node wins (`podcidrs.newest`). So a node that registered again with another range is routed on
the next `pulumi up`, and only the routes whose range changed are replaced.

No range depends on a step of another node: replacing a worker or the first controller (delete-first) leaves the
other workers' routes in place. A removed worker's VPC routes are deleted with it, after its removal step drained it
(`Workers.declare_removals`); on hosts, the apply script removes any route it no longer wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from cluster.remote import RemoteHost, deployer_python
from cluster.render import podcidrs, podnet
from cluster.render.common import BIN_DIR, digest
from cluster.render.workers.kubelet import KUBELET_KUBECONFIG
from infra.nodes import Node

READ_TIMEOUT_SECONDS = 300
LIVE_READ_TIMEOUT_SECONDS = 15
# A worker reads its own Node with its kubelet's identity (the node authorizer lets a node read itself).
NODE_KUBECTL = (f"{BIN_DIR}/kubectl", "--kubeconfig", KUBELET_KUBECONFIG)


@dataclass
class PodNetworkArgs:
    pod_routing: str
    pod_cidr: str
    vpc_cidr: str
    workers: Sequence[Node]
    worker_hosts: dict[str, RemoteHost]
    controller_hosts: dict[str, RemoteHost]
    controllers: Sequence[Node]
    workers_ready: Sequence[pulumi.Resource]       # per worker, in `workers` order: it is Ready (and in service)
    route_table_ids: Sequence[pulumi.Input[str]]
    kubeconfig: pulumi.Input[str]                  # the admin kubeconfig, through the load balancer: the live read


class PodNetwork(pulumi.ComponentResource):
    ranges: pulumi.Output[list[podcidrs.NodePodRange]]     # the podCIDR the cluster gave each worker
    ready: list[pulumi.Resource]                            # what pod traffic across nodes waits for
    routes: dict[str, list[aws.ec2.Route]]                  # per worker, its VPC routes (none in host mode)

    def __init__(self, name: str, args: PodNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:PodNetwork", name, None, opts)
        live = live_ranges(args.kubeconfig)
        readers, by_worker = [], {}
        for worker, ready in zip(args.workers, args.workers_ready):
            script = podcidrs.reader_script([worker.name], READ_TIMEOUT_SECONDS, list(NODE_KUBECTL))
            # On the worker itself, so it follows that machine only (its instance id is in its triggers): a new
            # machine registers anew and may get another range; a restarted kubelet keeps its Node.
            reader = args.worker_hosts[worker.name].step("read-pod-cidr", script, triggers=[script],
                                                         depends_on=[ready], parent=self)
            readers.append(reader)
            by_worker[worker.name] = pulumi.Output.all(reader.stdout, live).apply(
                lambda v, w=worker.name: podcidrs.newest(podcidrs.parse_reader_output(v[0])[0], v[1].get(w)))
        self.ranges = pulumi.Output.all(*by_worker.values()).apply(list)
        self.ready, self.routes = [], {}

        if args.pod_routing == "vpc":
            for worker in args.workers:
                self.routes[worker.name] = [aws.ec2.Route(
                    f"{name}-table{t}-{worker.name}",
                    route_table_id=table_id,
                    destination_cidr_block=by_worker[worker.name].apply(lambda r: r.pod_cidr),
                    network_interface_id=worker.instance.primary_network_interface_id,
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
                    for t, table_id in enumerate(args.route_table_ids)]
            # Table by table, as they were declared before.
            self.ready += [routes[t] for t in range(len(args.route_table_ids)) for routes in self.routes.values()]

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
                                        depends_on=readers if args.pod_routing == "host" else []))
        self.register_outputs({})


def live_ranges(kubeconfig: pulumi.Input[str]) -> pulumi.Output[dict[str, podcidrs.NodePodRange]]:
    """Every node's range as the API has it when this `pulumi up` (or preview) runs: an invoke, so it runs every
    time, and changes no resource unless a range changed. Empty when the API does not answer (a first creation)."""
    program = pulumi.Output.secret(pulumi.Output.from_input(kubeconfig).apply(
        lambda k: podcidrs.live_read_program(k, LIVE_READ_TIMEOUT_SECONDS)))
    answer = command.local.run_output(command=deployer_python(), stdin=program, logging="none")

    def parse(stdout: str) -> dict[str, podcidrs.NodePodRange]:
        ranges, unavailable = podcidrs.parse_live_output(stdout)
        if unavailable is not None:
            pulumi.log.info(f"the nodes' pod ranges could not be read from the API ({unavailable}): routes follow "
                            "what each worker read when it came up")
        return ranges

    return facts_only(answer.stdout.apply(parse))


def facts_only(value: pulumi.Output) -> pulumi.Output:
    """The same value, not secret and without the resources it came from. The live read's answer is names,
    addresses and ranges, and it is what the API says, not something the kubeconfig's load balancer or
    certificates make: were one of them replaced delete-first, the engine must not count every route as depending
    on it (it replaces whatever has an input from a replaced resource, step_generator.go
    calculateDependentReplacements 3268-3414)."""
    async def plain() -> bool:
        return False

    return pulumi.Output(set(), value.future(), value.is_known(), plain())
