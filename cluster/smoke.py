"""SmokeTest: nginx on every worker behind a NodePort, and the page fetched from every worker's NodePort.

The fetch runs on the deployer's machine when workers have public addresses (it then proves the whole path a user
takes, security groups included) and on the first controller in the private topology. A worker that does not
answer "Welcome to nginx!" fails the update, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.remote import RemoteHost
from cluster.render.addons import kubectl_apply_script, nginx_manifest, nginx_rollout_script, smoke_check_script
from cluster.render.common import digest
from cluster.versions import IMAGES
from infra.nodes import Node

NODE_PORT = 30080


@dataclass
class SmokeTestArgs:
    host: RemoteHost
    workers: Sequence[Node]
    public: bool
    ready: Sequence[pulumi.Resource]          # pod network and DNS


class SmokeTest(pulumi.ComponentResource):
    """Attributes: `urls` (worker name -> URL), `passed` (the fetch check)."""

    def __init__(self, name: str, args: SmokeTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:SmokeTest", name, None, opts)
        manifest = nginx_manifest(replicas=len(args.workers), image=IMAGES["nginx"], node_port=NODE_PORT)
        applied = args.host.step("apply-nginx", kubectl_apply_script("nginx smoke test", manifest),
                                 triggers=[digest(manifest)], depends_on=args.ready)
        rollout = nginx_rollout_script()
        rolled_out = args.host.step("nginx-rollout", rollout, triggers=[digest(rollout), applied.id],
                                    depends_on=[applied])

        self.urls = pulumi.Output.all(**{
            w.name: (w.instance.public_ip if args.public else pulumi.Output.from_input(w.private_ip))
            for w in args.workers}).apply(lambda ips: {n: f"http://{ip}:{NODE_PORT}/" for n, ip in ips.items()})
        script = self.urls.apply(smoke_check_script)
        if args.public:
            self.passed = command.local.Command(
                f"{name}-fetch-from-every-worker", create="bash -s", stdin=script,
                triggers=[script, rolled_out.id], add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[rolled_out],
                                            custom_timeouts=pulumi.CustomTimeouts(create="10m")))
        else:
            self.passed = args.host.step("fetch-from-every-worker", script, triggers=[script, rolled_out.id],
                                         depends_on=[rolled_out])
        self.register_outputs({"urls": self.urls})
