"""Workers: every worker prepared, installed and started in parallel (none waits for another), each then checked
to be a Ready node once the control plane is ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from cluster import versions
from cluster.remote import RemoteHost, Ssh
from cluster.render import worker as render
from cluster.render.common import files_digest, write_files_script
from cluster.render.install import install_artifact_script
from infra.certs import KUBERNETES_CA, worker_cert_name
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
    resolved_versions: dict
    architecture: str
    download_base_url: str | None
    image_registry_mirror: str | None = None
    host: render.NodeHost = render.NodeHost()     # settings workers.allowCgroupV1 and workers.systemContainer


class Workers(pulumi.ComponentResource):
    """Attributes: `hosts` (RemoteHost per worker, by name), `ready` (each worker's Ready check)."""

    def __init__(self, name: str, args: WorkersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:Workers", name, None, opts)
        artifacts = {c: versions.artifact(c, args.resolved_versions, args.architecture, args.download_base_url)
                     for c in ("containerd", "runc", "cni-plugins", "crictl", "kubernetes-node")}
        p = args.pki

        self.hosts: dict[str, RemoteHost] = {}
        self.ready = []
        for node, address in zip(args.workers, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            self.hosts[node.name] = host
            cert = p.certs[worker_cert_name(node.name)]
            inputs = pulumi.Output.all(
                ca_pem=p.cas[KUBERNETES_CA].cert_pem, kubelet_cert_pem=cert.cert_pem, kubelet_key_pem=cert.key_pem,
                kube_proxy_cert_pem=p.certs["kube-proxy"].cert_pem, kube_proxy_key_pem=p.certs["kube-proxy"].key_pem,
            ).apply(lambda v, n=node: render.WorkerInputs(
                cluster_name=args.cluster_name, node_name=n.name, node_ip=n.private_ip,
                controller_ips=list(args.controller_ips), pod_cidr=args.pod_cidr,
                cluster_dns_ip=args.cluster_dns_ip, pause_image=versions.IMAGES["pause"],
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

            started = {}
            for service in ("haproxy", "containerd", "k8s-cni-config", "kubelet", "kube-proxy"):
                needs = [installed[c] for c in (*ARTIFACTS_BY_SERVICE[service], *USES_INSTALLED.get(service, ()))]
                after = STARTS_AFTER.get(service, [])
                started[service] = host.start_services(
                    [service], triggers=[by_service.apply(lambda fs, s=service: files_digest(fs[s])),
                              *(artifacts[c].digest for c in ARTIFACTS_BY_SERVICE[service])],
                    depends_on=[written, *needs, *(started[a] for a in after)])

            check = render.node_ready_script(node.name)
            self.ready.append(host.step(
                "node-ready", check, triggers=[check, started["kubelet"].id],
                depends_on=[started["kubelet"], started["kube-proxy"], started["k8s-cni-config"],
                            *args.control_plane_ready]))
        self.register_outputs({})
