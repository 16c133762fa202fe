"""EtcdCluster: every member installed and started in parallel, then one health check of the whole cluster over
mutual TLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from cluster import versions
from cluster.remote import RemoteHost, Ssh
from cluster.render import etcd as render
from cluster.render.common import files_digest, write_files_script
from cluster.render.install import install_artifact_script
from infra.certs import ETCD_CA, etcd_peer_cert_name, etcd_server_cert_name
from infra.nodes import Node
from infra.pki import Pki


@dataclass
class EtcdClusterArgs:
    cluster_name: str
    members: Sequence[Node]
    addresses: Sequence[pulumi.Input[str]]      # where SSH reaches each member
    ssh: Ssh
    pki: Pki
    resolved_versions: dict
    architecture: str
    download_base_url: str | None


class EtcdCluster(pulumi.ComponentResource):
    """Attributes: `members` (render.Member), `client_urls`, `healthy` (the health check step)."""

    def __init__(self, name: str, args: EtcdClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:EtcdCluster", name, None, opts)
        self.members = [render.Member(n.name, n.private_ip) for n in args.members]
        self.client_urls = render.client_urls(self.members)
        artifact = versions.artifact("etcd", args.resolved_versions, args.architecture, args.download_base_url)
        ca = args.pki.cas[ETCD_CA].cert_pem

        started = []
        hosts = []
        for node, member, address in zip(args.members, self.members, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            hosts.append(host)
            server = args.pki.certs[etcd_server_cert_name(node.name)]
            peer = args.pki.certs[etcd_peer_cert_name(node.name)]
            files = pulumi.Output.all(ca, server.cert_pem, server.key_pem, peer.cert_pem, peer.key_pem).apply(
                lambda v, m=member: render.etcd_files(m, self.members, args.cluster_name, render.EtcdTls(*v)))
            fingerprint = files.apply(files_digest)

            user = host.step("etcd-user", render.ETCD_USER_SCRIPT, triggers=[render.ETCD_USER_SCRIPT])
            written = host.step("etcd-files", files.apply(write_files_script), triggers=[fingerprint],
                                depends_on=[user], secret=True)
            installed = host.step("install-etcd", install_artifact_script(artifact),
                                  triggers=[artifact.url, artifact.digest], depends_on=[user])
            started.append(host.start_services(["etcd"], triggers=[fingerprint, artifact.digest],
                                               depends_on=[written, installed]))

        # Runs on the first member once every member has (re)started; re-runs whenever one of them did.
        health = render.etcd_health_script(self.members)
        self.healthy = hosts[0].step("etcd-health", health, triggers=[health, *(s.id for s in started)],
                                     depends_on=started)
        self.register_outputs({"clientUrls": self.client_urls})
