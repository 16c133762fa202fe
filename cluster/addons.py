"""Addons: CoreDNS at the cluster DNS address, applied once from the first controller, then checked from a pod that
resolves a cluster name and an external one; metrics-server (unless turned off), checked through the API servers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from cluster.remote import RemoteHost
from cluster.render import metrics_server
from cluster.render.addons import coredns_manifest, dns_check_script, kubectl_apply_script
from cluster.render.common import digest
from cluster.versions import IMAGES
from infra.pki import KeyPair


@dataclass
class AddonsArgs:
    host: RemoteHost                          # the controller the cluster-level steps run on
    cluster_dns_ip: str
    kubernetes_service_ip: str                # what kubernetes.default must resolve to
    dns_check_name: str                       # an external name a pod must resolve
    workers: Sequence[str]                    # the workers' node names
    control_plane_ready: Sequence[pulumi.Resource]
    pod_network_ready: Sequence[pulumi.Resource]
    cluster_ca_pem: pulumi.Input[str]
    metrics_server_tls: KeyPair | None = None  # its serving certificate; None: no metrics-server


class Addons(pulumi.ComponentResource):
    dns_ready: pulumi.Resource                   # the DNS check step
    metrics_ready: pulumi.Resource | None        # the metrics API check step, when metrics-server runs

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:Addons", name, None, opts)
        manifest = coredns_manifest(cluster_dns_ip=args.cluster_dns_ip, image=IMAGES["coredns"],
                                    replicas=min(2, len(args.workers)))
        applied = args.host.step("apply-coredns", kubectl_apply_script("CoreDNS", manifest),
                                 triggers=[digest(manifest)], depends_on=args.control_plane_ready, parent=self)
        check = dns_check_script(image=IMAGES["busybox"], kubernetes_service_ip=args.kubernetes_service_ip,
                                 external_name=args.dns_check_name)
        # A pod on one worker resolving through CoreDNS on another is the first cross-node pod traffic, and the
        # external name needs the pod DNS masquerade: it waits for the pod network.
        self.dns_ready = args.host.step("dns-check", check, triggers=[digest(check), applied.id],
                                        depends_on=[applied, *args.pod_network_ready], parent=self)
        self.metrics_ready = self._metrics_server(args) if args.metrics_server_tls else None
        self.register_outputs({})

    def _metrics_server(self, args: AddonsArgs) -> pulumi.Resource:
        tls = args.metrics_server_tls
        manifest = pulumi.Output.all(ca=args.cluster_ca_pem, cert=tls.cert_pem, key=tls.key_pem).apply(
            lambda pems: metrics_server.manifest(image=IMAGES["metrics-server"], replicas=min(2, len(args.workers)),
                                                 ca_pem=pems["ca"], cert_pem=pems["cert"], key_pem=pems["key"]))
        # The manifest holds its serving key: a secret step (stdin secret, no log), keyed on a digest that stays
        # secret in state.
        applied = args.host.step("apply-metrics-server", manifest.apply(
            lambda m: kubectl_apply_script("metrics-server", m)), triggers=[manifest.apply(digest)], secret=True,
            depends_on=args.control_plane_ready, parent=self)
        check = metrics_server.check_script(nodes=list(args.workers))
        # The API servers reach its pods and it reaches every kubelet: after the pod network.
        return args.host.step("metrics-check", check, triggers=[digest(check), applied.id],
                              depends_on=[applied, *args.pod_network_ready], parent=self)
