"""Workers: every worker prepared, installed and started in parallel (none waits for another), each then checked
to be a Ready node once the control plane is ready.

Workers that ran before this update (AWS shows their machines) restart in batches of `workers.rolloutBatchSize`,
after the whole control plane has rolled (the version skew policy: kubelets and kube-proxy last), each batch once
the previous one is back in service. Each worker's services restart after its drain step, which cordons and drains
it when containerd or the kubelet will restart (a kube-proxy or haproxy change drains nothing), and before its
uncordon step, which waits until it is Ready again. Steps whose inputs did not change cost nothing in that chain; a
first creation chains nothing, so its depth does not grow with the worker count. A worker added to a running cluster
starts beside the batches, its kubelet and kube-proxy after the control plane.

Every worker also has a removal step, run on the first controller when the worker leaves the cluster (a lower count,
or its machine replaced): the engine deletes it before the worker's instance, and its delete command cordons,
drains and deletes the Node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from cluster.remote import RemoteHost, Ssh
from cluster.render import rollout
from cluster.render import worker as render
from cluster.render.common import digest
from cluster.render.common import files_digest, write_files_script
from cluster.render.install import install_artifact_script
from cluster.versions import IMAGES, Artifacts
from infra.certs import KUBE_PROXY, KUBERNETES_CA, worker_cert_name
from infra.nodes import Node
from infra.pki import Pki

ARTIFACTS_BY_SERVICE = {
    "containerd": ("containerd", "runc", "cni-plugins", "crictl"),
    "kubelet": ("kubernetes-node",),
    "kube-proxy": ("kubernetes-node",),
    "haproxy": (),
    "k8s-cni-config": (),
}
# k8s-cni-config runs kubectl anew every few seconds: it needs it installed, but a new kubectl needs no restart.
USES_INSTALLED = {"k8s-cni-config": ("kubernetes-node",)}
# Services whose restart stops the pods' runtime: the node is drained before either restarts (a restart of
# containerd restarts the kubelet too: its unit requires containerd's).
POD_RUNTIME = ("containerd", "kubelet")
# Last in the version skew order: on a running cluster they start only once the whole control plane has rolled.
SKEW_LAST = ("kubelet", "kube-proxy")
# A service starts after the ones it talks to.
STARTS_AFTER = {"kubelet": ["containerd", "haproxy"], "kube-proxy": ["haproxy"], "k8s-cni-config": ["haproxy"]}


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
    # Where the cluster-level steps run (the first controller, with the admin kubeconfig): drains, uncordons and
    # the removal of leaving workers.
    cluster_host: RemoteHost
    artifacts: Artifacts
    image_registry_mirror: str | None = None
    # The whole control plane at its new inputs: running workers restart only after it (kubelets and kube-proxy
    # last in the skew order).
    control_plane_rolled: Sequence[pulumi.Resource] = ()
    # Names of the workers whose machines ran before this update (infra/guards.py reads them from AWS): they
    # restart in batches. Empty on a first creation.
    running_workers: Sequence[str] = ()
    rollout_batch_size: int = 1
    host: render.NodeHost = render.NodeHost()     # settings workers.allowCgroupV1 and workers.systemContainer


def rollout_batches(workers: Sequence[str], running: Sequence[str], batch_size: int) -> dict[str, int]:
    """The batch of each running worker, in worker order: the first `batch_size` running workers are batch 0, and
    so on. New workers are in none: nothing runs on them yet."""
    rolling = [w for w in workers if w in set(running)]
    return {w: i // batch_size for i, w in enumerate(rolling)}


class Workers(pulumi.ComponentResource):
    """Attributes: `hosts` (RemoteHost per worker, by name), `ready` (each worker's Ready check; for a running
    worker, its uncordon step: Ready and in service again), `removals` (each worker's removal step)."""

    def __init__(self, name: str, args: WorkersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:Workers", name, None, opts)
        artifacts = {c: args.artifacts[c] for c in ("containerd", "runc", "cni-plugins", "crictl", "kubernetes-node")}
        pki = args.pki

        self.hosts: dict[str, RemoteHost] = {}
        self.ready = []
        self.removals = []
        cluster = args.cluster_host
        batches = rollout_batches([n.name for n in args.workers], args.running_workers, args.rollout_batch_size)
        done: dict[int, list[pulumi.Resource]] = {}    # each batch's uncordon steps
        for node, address in zip(args.workers, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            self.hosts[node.name] = host
            cert = pki.certs[worker_cert_name(node.name)]
            inputs = pulumi.Output.all(
                ca_pem=pki.cas[KUBERNETES_CA].cert_pem, kubelet_cert_pem=cert.cert_pem, kubelet_key_pem=cert.key_pem,
                kube_proxy_cert_pem=pki.certs[KUBE_PROXY].cert_pem, kube_proxy_key_pem=pki.certs[KUBE_PROXY].key_pem,
            ).apply(lambda v, n=node: render.WorkerInputs(
                cluster_name=args.cluster_name, node_name=n.name, node_ip=n.private_ip,
                controller_ips=list(args.controller_ips), pod_cidr=args.pod_cidr,
                cluster_dns_ip=args.cluster_dns_ip, pause_image=IMAGES["pause"],
                registry_mirror=args.image_registry_mirror, host=args.host, **v))
            by_service = inputs.apply(render.worker_files)
            everything = by_service.apply(lambda fs: [f for group in fs.values() for f in group])

            prep = render.os_prep_script(args.host)
            prepared = host.step("prepare-os", prep, triggers=[prep])
            written = host.step("worker-files", everything.apply(write_files_script),
                                triggers=[everything.apply(files_digest)], depends_on=[prepared], secret=True)
            installed = {c: host.step(f"install-{c}", install_artifact_script(a), triggers=[a.url, a.digest],
                                      depends_on=[prepared])
                         for c, a in artifacts.items()}

            restart_inputs = {service: [by_service.apply(lambda fs, s=service: files_digest(fs[s])),
                                        *(artifacts[c].digest for c in ARTIFACTS_BY_SERVICE[service])]
                              for service in ARTIFACTS_BY_SERVICE}
            # What the node's pods run on, as one value: the drain and uncordon steps run again when it changes.
            # A digest of key material reveals none of it, so the scripts stay plain.
            runtime_inputs = pulumi.Output.unsecret(pulumi.Output.all(
                *(v for s in POD_RUNTIME for v in restart_inputs[s])).apply(lambda vs: digest(*map(str, vs))))

            def drain_step(after: Sequence[pulumi.Resource], n=node.name, fingerprint=runtime_inputs):
                return cluster.step(f"drain-{n}", fingerprint.apply(lambda f: rollout.drain_script(n, f)),
                                    triggers=[fingerprint], parent=self, depends_on=after)

            # A running worker: drained (when its pods' runtime restarts) after the previous batch is back in
            # service, or, for the first batch, after the whole control plane has rolled.
            batch = batches.get(node.name)
            drain = None
            if batch is not None:
                drain = drain_step([written, *installed.values(), *done.get(batch - 1, args.control_plane_rolled)])

            started = {}
            for service in ("haproxy", "containerd", "k8s-cni-config", "kubelet", "kube-proxy"):
                needs = [installed[c] for c in (*ARTIFACTS_BY_SERVICE[service], *USES_INSTALLED.get(service, ()))]
                after = [*(started[a] for a in STARTS_AFTER.get(service, [])), *([drain] if drain else [])]
                if drain is None and args.running_workers and service in SKEW_LAST:
                    # A new worker of a running cluster: never a kubelet newer than an API server mid-upgrade.
                    after += args.control_plane_rolled
                started[service] = host.start_services([service], triggers=restart_inputs[service],
                                                       depends_on=[written, *needs, *after])

            check = render.node_ready_script(node.name)
            node_ready = host.step(
                "node-ready", check, triggers=[check, started["kubelet"].id],
                depends_on=[started["kubelet"], started["kube-proxy"], started["k8s-cni-config"],
                            *args.control_plane_ready])
            uncordon = cluster.step(
                f"uncordon-{node.name}", runtime_inputs.apply(lambda f, n=node.name: rollout.uncordon_script(n, f)),
                triggers=[runtime_inputs, node_ready.id], parent=self,
                depends_on=[node_ready, *([drain] if drain else [])])
            if batch is not None:
                done.setdefault(batch, []).append(uncordon)
                self.ready.append(uncordon)
            else:
                # A new worker: its drain step comes after its uncordon step, which recorded what its pods' runtime
                # runs, so it finds nothing to drain; the next change finds it in place, before the restarts.
                drain_step([uncordon])
                self.ready.append(node_ready)

            # Deleted before the worker's instance (it depends on it): a lower count or a replaced machine drains
            # the worker and deletes its Node first. The instance id is its only trigger, so nothing but a new
            # machine (replaced delete-first: this step goes first) replaces it.
            self.removals.append(cluster.removal_step(
                f"remove-{node.name}", check=rollout.node_listed_script(node.name),
                remove=rollout.remove_node_script(node.name), triggers=[node.instance.id],
                depends_on=[node.instance, node_ready], deleted_with=cluster.instance, parent=self,
                timeout_seconds=rollout.DRAIN_TIMEOUT_SECONDS + 120))
        self.register_outputs({})
