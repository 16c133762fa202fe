"""SmokeTest: nginx on every worker behind a NodePort, and the page fetched from every worker's NodePort.

The fetch runs on the deployer's machine when workers have public addresses (it then proves the whole path a user
takes, security groups included). In the private topology it runs on the first worker: the workers' security group
admits the other workers on every port, so no rule is opened for it. A worker that does not answer "Welcome to
nginx!" fails the update, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.remote import RemoteHost, deployer_python
from cluster.render.addons import kubectl_apply_script, nginx_manifest, nginx_rollout_script
from cluster.render.common import digest
from cluster.render.deployer_checks import nodeport_check_program, on_node
from cluster.versions import IMAGES
from infra.nodes import Node

NODE_PORT = 30080
FETCH_TIMEOUT_SECONDS = 300


@dataclass
class SmokeTestArgs:
    host: RemoteHost                          # the controller that applies the manifests
    workers: Sequence[Node]
    fetch_from: RemoteHost | None             # None: the deployer (public topology)
    ready: Sequence[pulumi.Resource]          # pod network and DNS


class SmokeTest(pulumi.ComponentResource):
    urls: pulumi.Output[dict[str, str]]          # worker name -> URL
    passed: pulumi.Resource                      # the fetch from every worker

    def __init__(self, name: str, args: SmokeTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:SmokeTest", name, None, opts)
        manifest = nginx_manifest(replicas=len(args.workers), image=IMAGES["nginx"], node_port=NODE_PORT)
        applied = args.host.step("apply-nginx", kubectl_apply_script("nginx smoke test", manifest),
                                 triggers=[digest(manifest)], depends_on=args.ready, parent=self)
        rollout = nginx_rollout_script()
        rolled_out = args.host.step("nginx-rollout", rollout, triggers=[digest(rollout), applied.id],
                                    depends_on=[applied], parent=self)

        public = args.fetch_from is None
        self.urls = pulumi.Output.all(**{
            w.name: (w.instance.public_ip if public else pulumi.Output.from_input(w.private_ip))
            for w in args.workers}).apply(lambda ips: {n: f"http://{ip}:{NODE_PORT}/" for n, ip in ips.items()})
        program = self.urls.apply(lambda urls: nodeport_check_program(urls, FETCH_TIMEOUT_SECONDS))
        if public:
            self.passed = command.local.Command(
                f"{name}-fetch-from-every-worker", create=deployer_python(), stdin=program,
                triggers=[program.apply(digest), rolled_out.id], add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[rolled_out],
                                            custom_timeouts=pulumi.CustomTimeouts(create="10m", update="10m")))
        else:
            script = program.apply(on_node)
            self.passed = args.fetch_from.step("fetch-from-every-worker", script,
                                               triggers=[script.apply(digest), rolled_out.id],
                                               depends_on=[rolled_out], parent=self)
        self.register_outputs({"urls": self.urls})
