"""ControlPlane: kube-apiserver, kube-controller-manager and kube-scheduler on every controller, each controller's API
server checked ready, then the cluster-wide RBAC applied once.

A first creation starts every controller in parallel. Controllers that ran before this update (AWS shows their
machines) restart one at a time and in the order the version skew policy asks for: controller N+1's API server
restarts only after controller N's answers `/readyz`, and the controller-managers and schedulers, again one
controller after another, only after every API server is ready. The chain is dependencies between steps, so a step
whose inputs did not change costs nothing in it; nothing is chained on a first creation, which keeps its depth.
Which service is which, and what each reads and runs, comes from the rows in cluster/render/control_plane.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_random as random

from cluster.remote import RemoteHost, Ssh
from cluster.render import control_plane as render
from cluster.render.access import cluster_admins_rbac, deployers_rbac
from cluster.render.addons import apiserver_to_kubelet_rbac
from cluster.render.common import NodeFile, files_digest, write_files_script
from cluster.render.install import install_artifact_script, service_switch_script
from cluster.render.services import Service, installs
from cluster.versions import Artifacts
from infra.certs import (ADMIN, APISERVER_ETCD_CLIENT, APISERVER_KUBELET_CLIENT, DEPLOYER, ETCD_CA, FRONT_PROXY_CA,
                         FRONT_PROXY_CLIENT, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KUBERNETES_CA,
                         SUPER_ADMIN)
from infra.nodes import Node
from infra.pki import Pki

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
    artifacts: Artifacts
    # Names of the controllers whose machines ran before this update (infra/guards.py reads them from AWS): they
    # restart one at a time. Empty on a first creation.
    running_controllers: Sequence[str] = ()


def _key_pairs(pki: Pki, **certs: str) -> dict[str, pulumi.Output[str]]:
    """The `<field>_cert_pem` and `<field>_key_pem` inputs of ControlPlaneInputs for each field=certificate name."""
    pairs = {}
    for field, cert in certs.items():
        pairs[f"{field}_cert_pem"] = pki.certs[cert].cert_pem
        pairs[f"{field}_key_pem"] = pki.certs[cert].key_pem
    return pairs


def _unique(files: list[NodeFile]) -> list[NodeFile]:
    by_path: dict[str, NodeFile] = {}
    for f in files:
        by_path.setdefault(f.path, f)
    return list(by_path.values())


class _Controller:
    """One controller while the control plane is declared: its host, its files by service, what every service
    start needs (files written, binaries installed, etcd healthy), its API server start and its readiness check."""

    def __init__(self, host: RemoteHost, rolling: bool, by_service: pulumi.Output, artifacts: Artifacts,
                 written: pulumi.Resource, installed: dict[str, pulumi.Resource], etcd_healthy: pulumi.Resource):
        self.host, self.rolling, self.by_service, self.artifacts = host, rolling, by_service, artifacts
        self.written, self.installed, self.etcd_healthy = written, installed, etcd_healthy
        self.apiserver: pulumi.Resource | None = None
        self.ready: pulumi.Resource | None = None

    def start(self, service: Service, after: list[pulumi.Resource]) -> pulumi.Resource:
        # Each service restarts only when a file it reads or a binary it runs changed.
        files_changed = self.by_service.apply(lambda groups: files_digest(groups[service.name]))
        return self.host.start_services(
            [service.name], triggers=[files_changed, *(self.artifacts[c].digest for c in service.artifacts)],
            depends_on=[self.written, *(self.installed[c] for c in (*service.artifacts, *service.uses)),
                        self.etcd_healthy, *after], switch=service_switch_script(service, self.artifacts))

    def ready_check(self, after: list[pulumi.Resource]) -> pulumi.Resource:
        """/readyz through the local API server, bounded; run again whenever the API server restarted."""
        check = render.apiserver_ready_script()
        return self.host.step("apiserver-ready", check, triggers=[check, self.apiserver.id], depends_on=after)


class ControlPlane(pulumi.ComponentResource):
    # One per controller, by name; the first runs the cluster-wide steps.
    hosts: dict[str, RemoteHost]
    ready: list[pulumi.Resource]               # every controller's readiness check
    # Those checks and every controller-manager and scheduler start: the whole control plane at its new inputs.
    rolled: list[pulumi.Resource]
    rbac: pulumi.Resource                      # the cluster-wide RBAC step: after it the admin group is cluster-admin
    bootstrapped: list[pulumi.Resource]        # per controller, the tag that says it came up (infra/aws_facts.py)

    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:ControlPlane", name, None, opts)
        # 32 random bytes, made once and kept in state: the key that encrypts Secrets in etcd never changes on an
        # update (a new key would make every stored Secret unreadable). Its identity depends on nothing that a
        # refactor or a new clusterName could change: a fixed name at the top of the stack, with the place it was
        # first made in as an alias. Not protected: `pulumi destroy` removes it with the cluster it belongs to.
        encryption_key = random.RandomBytes(ENCRYPTION_KEY_NAME, length=32, opts=pulumi.ResourceOptions(
            aliases=[pulumi.Alias(name=f"{name}-encryption-key", parent=self)]))
        pki = args.pki
        shared = {
            "ca_pem": pki.cas[KUBERNETES_CA].cert_pem, "etcd_ca_pem": pki.cas[ETCD_CA].cert_pem,
            "front_proxy_ca_pem": pki.cas[FRONT_PROXY_CA].cert_pem,
            **_key_pairs(pki, apiserver=KUBE_APISERVER, kubelet_client=APISERVER_KUBELET_CLIENT,
                         etcd_client=APISERVER_ETCD_CLIENT, controller_manager=KUBE_CONTROLLER_MANAGER,
                         scheduler=KUBE_SCHEDULER, admin=ADMIN, super_admin=SUPER_ADMIN, deployer=DEPLOYER,
                         front_proxy_client=FRONT_PROXY_CLIENT),
            "service_account_key_pem": pki.service_account_private_key_pem,
            "service_account_pub_pem": pki.service_account_public_key_pem,
            "encryption_key_b64": pulumi.Output.secret(encryption_key.base64),
        }

        self.ready, self.rolled, self.hosts = [], [], {}
        # Files, binaries and API servers; on running controllers the API servers restart one after another.
        controllers: list[_Controller] = []
        previous_ready = None        # the readiness check of the last running controller so far
        for node, address in zip(args.controllers, args.addresses):
            c = self._controller(node, address, args, shared)
            c.apiserver = c.start(render.API_SERVER, [previous_ready] if c.rolling and previous_ready else [])
            if c.rolling:
                c.ready = c.ready_check([c.apiserver])
                previous_ready = c.ready
            controllers.append(c)

        # Controller-managers and schedulers: on running controllers once every API server has rolled, one
        # controller after another; on new controllers beside their own API server, which is checked after them.
        every_apiserver_ready = [previous_ready] if previous_ready else []
        previous_controllers: list[pulumi.Resource] = []
        for c in controllers:
            after = [c.apiserver, *every_apiserver_ready, *previous_controllers] if c.rolling else [c.apiserver]
            started = [c.start(service, after) for service in render.CONTROLLERS]
            if c.rolling:
                previous_controllers = started
            else:
                c.ready = c.ready_check([c.apiserver, *started])
            self.ready.append(c.ready)
            self.rolled += [c.ready, *started]
        self.bootstrapped = [c.host.mark_bootstrapped([c.ready]) for c in controllers]

        # As the break-glass identity (neither the admin nor the deployer group has rights before these bindings);
        # every cluster-level step after it runs as the deployer.
        rbac = render.rbac_apply_script({"the cluster-admins binding": cluster_admins_rbac(),
                                         "the deployers binding": deployers_rbac(),
                                         "the API server's kubelet access": apiserver_to_kubelet_rbac()})
        self.rbac = self.first_host.step("apply-rbac", rbac, triggers=[rbac], depends_on=self.ready)
        self.register_outputs({})

    def _controller(self, node: Node, address: pulumi.Input[str], args: ControlPlaneArgs, shared: dict
                    ) -> _Controller:
        """One controller's host, files and installs."""
        host = RemoteHost(node.name, address, args.ssh, node, self)
        first = not self.hosts      # the first controller runs the cluster-level steps, and keeps the break glass
        self.hosts[node.name] = host
        inputs = pulumi.Output.all(**shared).apply(lambda pems: render.ControlPlaneInputs(
            cluster_name=args.cluster_name, node_name=node.name, node_ip=node.private_ip,
            etcd_servers=args.etcd_client_urls, service_cidr=args.service_cidr, pod_cidr=args.pod_cidr,
            pod_cidr_mask_size=args.pod_cidr_mask_size, holds_break_glass=first,
            **pems))
        by_service = inputs.apply(render.control_plane_files)
        everything = by_service.apply(lambda groups: _unique([f for files in groups.values() for f in files]))
        retired = inputs.apply(render.retired_files)
        written = host.step("control-plane-files",
                            pulumi.Output.all(everything, retired).apply(lambda v: write_files_script(*v)),
                            triggers=[everything.apply(files_digest)], secret=True)
        installed = {c: host.step(f"install-{c}", install_artifact_script(args.artifacts[c], render.SERVICES),
                                  triggers=[args.artifacts[c].url, args.artifacts[c].digest])
                     for c in installs(render.SERVICES)}
        return _Controller(host, node.name in args.running_controllers, by_service, args.artifacts, written,
                           installed, args.etcd_healthy)

    @property
    def first_host(self) -> RemoteHost:
        return next(iter(self.hosts.values()))
