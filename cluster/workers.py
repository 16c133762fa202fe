"""Workers: every worker prepared, installed and started in parallel (none waits for another), each then checked
to be a Ready node once the control plane is ready. What each service reads, runs and starts after comes from its
row (cluster/render/workers/): one start step per row, in their order.

Workers that ran before this update (AWS shows their machines) restart in batches of `workers.rolloutBatchSize`,
after the whole control plane has rolled (the version skew policy: kubelets and kube-proxy last), each batch once
the previous one is back in service. Each worker's services restart after its drain step, which cordons and drains
it when a service whose row drains (containerd, the kubelet) will restart, and before its uncordon step, which
waits until it is Ready again. Steps whose inputs did not change cost nothing in that chain; a first creation chains
nothing, so its depth does not grow with the worker count. A worker added to a running cluster starts beside the
batches, its kubelet and kube-proxy after the control plane.

Every worker also has a removal step, run on the first controller when the worker leaves the cluster (a lower count,
or its machine replaced): the engine deletes it before the worker's instance and its pod routes, and its delete
command cordons, drains and deletes the Node, unless the Node has come up on a newer machine since."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.remote import RemoteHost, Ssh, fingerprint
from cluster.render import rollout
from cluster.render import workers as render
from cluster.render.common import files_digest, write_files_script
from cluster.render.install import install_artifact_script, service_switch_script
from cluster.render.services import Skew, installs, last_started
from cluster.render.workers import prepare_os
from cluster.render.workers.node import NodeHost, WorkerInputs
from cluster.versions import IMAGES, Artifacts
from infra.certs import KUBE_PROXY, KUBERNETES_CA, worker_cert_name
from infra.nodes import Node
from infra.pki import Pki


@dataclass
class WorkersArgs:
    cluster_name: str
    workers: Sequence[Node]
    addresses: Sequence[pulumi.Input[str]]
    controller_ips: Sequence[str]
    ssh: Ssh
    pki: Pki
    pod_cidr: str
    cluster_dns_ip: str
    control_plane_ready: Sequence[pulumi.Resource]
    # Where the cluster-level steps run (the first controller, with the deployer kubeconfig): drains, uncordons and
    # the removal of leaving workers.
    cluster_host: RemoteHost
    artifacts: Artifacts
    # The cluster's VPC: removal steps are deleted with it, so `pulumi destroy` runs none, and a lost or replaced
    # first controller (where they run) neither cascades nor skips them.
    vpc: pulumi.Resource
    image_registry_mirror: str | None = None
    # The whole control plane at its new inputs: running workers restart only after it (kubelets and kube-proxy
    # last in the skew order).
    control_plane_rolled: Sequence[pulumi.Resource] = ()
    # Names of the workers whose machines ran before this update (infra/guards.py reads them from AWS): they
    # restart in batches. Empty on a first creation.
    running_workers: Sequence[str] = ()
    rollout_batch_size: int = 1
    host: NodeHost = NodeHost()     # settings workers.allowCgroupV1 and workers.systemContainer


def rollout_batches(workers: Sequence[str], running: Sequence[str], batch_size: int) -> dict[str, int]:
    """The batch of each running worker, in worker order: the first `batch_size` running workers are batch 0, and
    so on. New workers are in none: nothing runs on them yet."""
    rolling = [w for w in workers if w in set(running)]
    return {w: i // batch_size for i, w in enumerate(rolling)}


class Workers(pulumi.ComponentResource):
    hosts: dict[str, RemoteHost]               # one per worker, by name
    # Per worker, what says it is ready: its Ready check; for a running worker, its uncordon step (Ready and in
    # service again).
    ready: list[pulumi.Resource]
    removals: list[command.remote.Command]     # per worker, the step that drains it and deletes its Node when it goes
    bootstrapped: list[pulumi.Resource]        # per worker, the tag that says it came up (infra/aws_facts.py)

    def __init__(self, name: str, args: WorkersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:Workers", name, None, opts)
        self._args = args
        self.hosts, self.ready, self.removals, self.bootstrapped = {}, [], [], []
        self._node_ready: dict[str, pulumi.Resource] = {}
        self._in_service: dict[str, pulumi.Resource] = {}      # per worker, its uncordon step
        batches = rollout_batches([n.name for n in args.workers], args.running_workers, args.rollout_batch_size)
        back_in_service: dict[int, list[pulumi.Resource]] = {}    # each batch's uncordon steps
        for node, address in zip(args.workers, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            self.hosts[node.name] = host
            batch = batches.get(node.name)
            # A running worker restarts once the previous batch is back in service; the first batch, once the whole
            # control plane has rolled. A new worker waits for no batch.
            previous = None if batch is None else back_in_service.get(batch - 1, args.control_plane_rolled)
            ready = self._worker(node, host, previous)
            if batch is not None:
                back_in_service.setdefault(batch, []).append(ready)
            self.ready.append(ready)
            # Once in service (its uncordon step recorded what its pods run on): a retry after an update stopped
            # before that treats it as new, rather than draining it to restart nothing.
            self.bootstrapped.append(host.mark_bootstrapped([self._in_service[node.name]]))
        self.register_outputs({})

    def declare_removals(self, routes: dict[str, Sequence[pulumi.Resource]]) -> None:
        """Each worker's removal step, once its pod `routes` (VPC routes; none in host mode) are declared: it
        depends on them, so the engine deletes it, draining the worker, before them (step_generator.go
        ScheduleDeletes 2747-2797 deletes a resource after everything that depends on it); traffic to pods still
        being evicted keeps its route. The instance id is its only trigger, so nothing but a new machine (replaced
        delete-first: this step goes first) replaces it; its delete command names that instance, so the old half
        of a step replaced create-first (a lost worker refreshed and created again: deleted at the end of the
        update) leaves the new machine's Node alone."""
        args, cluster = self._args, self._args.cluster_host
        for node in args.workers:
            remove = node.instance.id.apply(lambda i, n=node.name: rollout.remove_node_script(n, i))
            self.removals.append(cluster.removal_step(
                f"remove-{node.name}", check=rollout.node_listed_script(node.name), remove=remove,
                triggers=[node.instance.id],
                depends_on=[node.instance, self._node_ready[node.name], *routes.get(node.name, ())],
                deleted_with=args.vpc, parent=self,
                timeout_seconds=rollout.DRAIN_TIMEOUT_SECONDS + 120))

    def _worker(self, node: Node, host: RemoteHost, previous_batch: Sequence[pulumi.Resource] | None
                ) -> pulumi.Resource:
        """One worker's steps. `previous_batch`: what a running worker's drain waits for; None for a new worker.
        Returns what says the worker is ready."""
        args, cluster = self._args, self._args.cluster_host
        by_service = self._inputs(node).apply(render.worker_files)
        everything = by_service.apply(lambda groups: [f for files in groups.values() for f in files])

        prep = prepare_os.os_prep_script(args.host)
        prepared = host.step("prepare-os", prep, triggers=[prep])
        written = host.step("worker-files", everything.apply(write_files_script),
                            triggers=[everything.apply(files_digest)], depends_on=[prepared], secret=True)
        installed = {c: host.step(f"install-{c}", install_artifact_script(args.artifacts[c], render.SERVICES),
                                  triggers=[args.artifacts[c].url, args.artifacts[c].digest], depends_on=[prepared])
                     for c in installs(render.SERVICES)}

        # A service restarts when a file it reads or a binary it runs changed.
        restart_inputs = {s.name: [by_service.apply(lambda groups, s=s: files_digest(groups[s.name])),
                                   *(args.artifacts[c].digest for c in s.artifacts)]
                          for s in render.SERVICES}
        # What the node's pods run on, as one value: the drain and uncordon steps run again when it changes.
        pod_runtime = fingerprint([i for s in render.SERVICES if s.drains for i in restart_inputs[s.name]])
        drain = None
        if previous_batch is not None:
            drain = self._drain(node, pod_runtime, [written, *installed.values(), *previous_batch])

        started: dict[str, pulumi.Resource] = {}
        for service in render.SERVICES:
            after = [*(started[name] for name in service.after), *([drain] if drain else [])]
            if drain is None and args.running_workers and service.skew == Skew.NODE:
                # A new worker of a running cluster: never a kubelet newer than an API server mid-upgrade.
                after += args.control_plane_rolled
            needs = [installed[c] for c in (*service.artifacts, *service.uses)]
            started[service.name] = host.start_services([service.name], triggers=restart_inputs[service.name],
                                                        depends_on=[written, *needs, *after], reload=service.reloads,
                                                        switch=service_switch_script(service, args.artifacts))

        check = render.node_ready_script(node.name)
        # After the services no other one starts after (then every service runs); again whenever the kubelet
        # restarted.
        node_ready = host.step(
            "node-ready", check, triggers=[check, started["kubelet"].id],
            depends_on=[*(started[s.name] for s in last_started(render.SERVICES)), *args.control_plane_ready])
        self._node_ready[node.name] = node_ready
        uncordon = cluster.step(
            f"uncordon-{node.name}", pulumi.Output.all(pod_runtime, node.instance.id).apply(
                lambda v: rollout.uncordon_script(node.name, v[0], v[1])),
            triggers=[pod_runtime, node_ready.id], parent=self, depends_on=[node_ready, *([drain] if drain else [])])
        self._in_service[node.name] = uncordon
        if drain is None:
            # A new worker: its drain step comes after its uncordon step, which recorded what its pods' runtime
            # runs, so it finds nothing to drain; the next change finds it in place, before the restarts.
            self._drain(node, pod_runtime, [uncordon])

        return node_ready if drain is None else uncordon

    def _inputs(self, node: Node) -> pulumi.Output[WorkerInputs]:
        args, pki = self._args, self._args.pki
        cert = pki.certs[worker_cert_name(node.name)]
        return pulumi.Output.all(
            ca_pem=pki.cas[KUBERNETES_CA].cert_pem, kubelet_cert_pem=cert.cert_pem, kubelet_key_pem=cert.key_pem,
            kube_proxy_cert_pem=pki.certs[KUBE_PROXY].cert_pem, kube_proxy_key_pem=pki.certs[KUBE_PROXY].key_pem,
        ).apply(lambda pems: WorkerInputs(
            cluster_name=args.cluster_name, node_name=node.name, node_ip=node.private_ip,
            controller_ips=list(args.controller_ips), pod_cidr=args.pod_cidr, cluster_dns_ip=args.cluster_dns_ip,
            pause_image=IMAGES["pause"], registry_mirror=args.image_registry_mirror, host=args.host,
            instance_type=node.instance_type, **pems))

    def _drain(self, node: Node, pod_runtime: pulumi.Output[str], after: Sequence[pulumi.Resource]
               ) -> pulumi.Resource:
        """Cordon and drain the worker, on the first controller, when its pods' runtime is about to change."""
        return self._args.cluster_host.step(
            f"drain-{node.name}", pod_runtime.apply(lambda f: rollout.drain_script(node.name, f)),
            triggers=[pod_runtime], parent=self, depends_on=after)
