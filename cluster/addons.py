"""Addons: CoreDNS at the cluster DNS address, applied once from the first controller, then checked from a pod that
resolves a cluster name and an external one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from cluster.remote import RemoteHost
from cluster.render.addons import coredns_manifest, dns_check_script, kubectl_apply_script
from cluster.render.common import digest
from cluster.versions import IMAGES


@dataclass
class AddonsArgs:
    host: RemoteHost                          # the controller the cluster-level steps run on
    cluster_dns_ip: str
    kubernetes_service_ip: str                # what kubernetes.default must resolve to
    dns_check_name: str                       # an external name a pod must resolve
    worker_count: int
    control_plane_ready: Sequence[pulumi.Resource]
    pod_network_ready: Sequence[pulumi.Resource]


class Addons(pulumi.ComponentResource):
    dns_ready: pulumi.Resource                   # the DNS check step

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:Addons", name, None, opts)
        manifest = coredns_manifest(cluster_dns_ip=args.cluster_dns_ip, image=IMAGES["coredns"],
                                    replicas=min(2, args.worker_count))
        applied = args.host.step("apply-coredns", kubectl_apply_script("CoreDNS", manifest),
                                 triggers=[digest(manifest)], depends_on=args.control_plane_ready, parent=self)
        check = dns_check_script(image=IMAGES["busybox"], kubernetes_service_ip=args.kubernetes_service_ip,
                                 external_name=args.dns_check_name)
        # A pod on one worker resolving through CoreDNS on another is the first cross-node pod traffic, and the
        # external name needs the pod DNS masquerade: it waits for the pod network.
        self.dns_ready = args.host.step("dns-check", check, triggers=[digest(check), applied.id],
                                        depends_on=[applied, *args.pod_network_ready], parent=self)
        self.register_outputs({})
