"""ControlPlane: kube-apiserver, kube-controller-manager and kube-scheduler on every controller in parallel, each
controller's API server checked ready, then the cluster-wide RBAC applied once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_random as random

from cluster import versions
from cluster.remote import RemoteHost, Ssh
from cluster.render import control_plane as render
from cluster.render.access import cluster_admins_rbac
from cluster.render.addons import apiserver_to_kubelet_rbac
from cluster.render.common import NodeFile, files_digest, write_files_script
from cluster.render.install import install_artifact_script
from infra.certs import ADMIN, ETCD_CA, KUBERNETES_CA, SUPER_ADMIN
from infra.nodes import Node
from infra.pki import Pki

SERVICES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ENCRYPTION_KEY_NAME = "secrets-encryption-key"


@dataclass
class ControlPlaneArgs:
    cluster_name: str
    controllers: Sequence[Node]
    addresses: Sequence[pulumi.Input[str]]
    ssh: Ssh
    pki: Pki
    etcd_client_urls: str
    etcd_healthy: pulumi.Resource
    service_cidr: str
    pod_cidr: str
    pod_cidr_mask_size: int
    resolved_versions: dict
    architecture: str
    download_base_url: str | None


def _unique(files: list[NodeFile]) -> list[NodeFile]:
    by_path: dict[str, NodeFile] = {}
    for f in files:
        by_path.setdefault(f.path, f)
    return list(by_path.values())


class ControlPlane(pulumi.ComponentResource):
    """Attributes: `hosts` (RemoteHost per controller, by name; the first runs the cluster-wide steps),
    `ready` (every controller's readiness check), `rbac` (the cluster-wide RBAC step, after which the admin group
    has cluster-admin)."""

    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:ControlPlane", name, None, opts)
        artifact = versions.artifact("kubernetes-server", args.resolved_versions, args.architecture,
                                     args.download_base_url)
        # 32 random bytes, made once and kept in state: the key that encrypts Secrets in etcd never changes on an
        # update (a new key would make every stored Secret unreadable). Its identity depends on nothing that a
        # refactor or a new clusterName could change: a fixed name at the top of the stack, with the place it was
        # first made in as an alias. Not protected: `pulumi destroy` removes it with the cluster it belongs to.
        encryption_key = random.RandomBytes(ENCRYPTION_KEY_NAME, length=32, opts=pulumi.ResourceOptions(
            aliases=[pulumi.Alias(name=f"{name}-encryption-key", parent=self)]))
        p = args.pki
        shared = {
            "ca_pem": p.cas[KUBERNETES_CA].cert_pem, "etcd_ca_pem": p.cas[ETCD_CA].cert_pem,
            "apiserver_cert_pem": p.certs["kube-apiserver"].cert_pem,
            "apiserver_key_pem": p.certs["kube-apiserver"].key_pem,
            "kubelet_client_cert_pem": p.certs["kube-apiserver-kubelet-client"].cert_pem,
            "kubelet_client_key_pem": p.certs["kube-apiserver-kubelet-client"].key_pem,
            "etcd_client_cert_pem": p.certs["kube-apiserver-etcd-client"].cert_pem,
            "etcd_client_key_pem": p.certs["kube-apiserver-etcd-client"].key_pem,
            "service_account_key_pem": p.service_account_private_key_pem,
            "service_account_pub_pem": p.service_account_public_key_pem,
            "controller_manager_cert_pem": p.certs["kube-controller-manager"].cert_pem,
            "controller_manager_key_pem": p.certs["kube-controller-manager"].key_pem,
            "scheduler_cert_pem": p.certs["kube-scheduler"].cert_pem,
            "scheduler_key_pem": p.certs["kube-scheduler"].key_pem,
            "admin_cert_pem": p.certs[ADMIN].cert_pem, "admin_key_pem": p.certs[ADMIN].key_pem,
            "super_admin_cert_pem": p.certs[SUPER_ADMIN].cert_pem, "super_admin_key_pem": p.certs[SUPER_ADMIN].key_pem,
            "encryption_key_b64": pulumi.Output.secret(encryption_key.base64),
        }

        self.ready = []
        self.hosts: dict[str, RemoteHost] = {}
        for node, address in zip(args.controllers, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            self.hosts[node.name] = host
            inputs = pulumi.Output.all(**shared).apply(lambda v, n=node: render.ControlPlaneInputs(
                cluster_name=args.cluster_name, node_name=n.name, node_ip=n.private_ip,
                etcd_servers=args.etcd_client_urls, service_cidr=args.service_cidr, pod_cidr=args.pod_cidr,
                pod_cidr_mask_size=args.pod_cidr_mask_size, **v))
            by_service = inputs.apply(render.control_plane_files)
            everything = by_service.apply(lambda fs: _unique([f for group in fs.values() for f in group]))

            written = host.step("control-plane-files", everything.apply(write_files_script),
                                triggers=[everything.apply(files_digest)], secret=True)
            installed = host.step("install-kubernetes-server", install_artifact_script(artifact),
                                  triggers=[artifact.url, artifact.digest])
            started = []
            for service in SERVICES:
                # Each service restarts only when a file it reads (or the binary) changed.
                fingerprint = by_service.apply(lambda fs, s=service: files_digest(fs[s]))
                started.append(host.start_services(
                    [service], triggers=[fingerprint, artifact.digest],
                    depends_on=[written, installed, args.etcd_healthy, *started[:1]]))
            check = render.apiserver_ready_script()
            self.ready.append(host.step("apiserver-ready", check, triggers=[check, *(s.id for s in started)],
                                        depends_on=started))

        # As the break-glass identity (the admin group has no rights before this binding); every cluster-level step
        # after it runs as the admin group.
        rbac = render.rbac_apply_script({"the cluster-admins binding": cluster_admins_rbac(),
                                         "the API server's kubelet access": apiserver_to_kubelet_rbac()})
        self.rbac = self.first_host.step("apply-rbac", rbac, triggers=[rbac], depends_on=self.ready)
        self.register_outputs({})

    @property
    def first_host(self) -> RemoteHost:
        return next(iter(self.hosts.values()))
