"""EtcdCluster: every member installed in parallel; members started one after another, then one health check of the
whole cluster over mutual TLS.

Starting in member order costs nothing on a first creation (a new member's start does not wait: it cannot be ready
before a quorum of its peers has started), and makes a restart of running members a rolling one: each restarted
member waits for its own health and every member's before the next one's step runs. New members of a running cluster
join with `member add` (in their start step); members that leave are removed with `member remove`, run on the first
member, before their machines go. Once the cluster is healthy each member is tagged as come up: a first `pulumi up`
that failed before is retried as a first creation (review D3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command

from cluster.remote import RemoteHost, Ssh, fingerprint
from cluster.render import etcd as render
from cluster.render.common import files_digest, write_files_script
from cluster.render.install import install_artifact_script, service_switch_script
from cluster.render.services import installs
from cluster.versions import Artifacts
from infra.aws_facts import BOOTSTRAPPED, ETCD_JOINED
from infra.certs import ETCD_CA, etcd_peer_cert_name, etcd_server_cert_name
from infra.nodes import Node
from infra.pki import Pki


# The bound of a membership check or removal, each etcdctl call within it bounded on its own.
MEMBERSHIP_TIMEOUT_SECONDS = 240


@dataclass
class EtcdClusterArgs:
    cluster_name: str
    members: Sequence[Node]
    addresses: Sequence[pulumi.Input[str]]      # where SSH reaches each member
    ssh: Ssh
    pki: Pki
    artifacts: Artifacts
    # The cluster's VPC: membership steps are deleted with it, so `pulumi destroy` runs no removal, and a lost or
    # replaced first member (where they run) neither cascades nor skips them.
    vpc: pulumi.Resource
    # The members that came up before this update, with their bootstrapped tag (infra/aws_facts.py reads them from
    # AWS); empty on a first creation, and after a first `pulumi up` that failed before etcd was healthy.
    bootstrapped: Mapping[str, str] = field(default_factory=dict)
    # The instances AWS showed for the etcd role when this update began: a member whose instance is not one of them
    # is a new machine (a replacement).
    running_instance_ids: Sequence[str] = ()


def joins_running_cluster(member: str, bootstrapped: Mapping[str, str], instance_id: str | None = None,
                          running_instance_ids: Sequence[str] = ()) -> bool:
    """Whether `member`, should it have no data, joins a running cluster rather than starting a new one: a new
    machine (replaced: its instance is not one AWS showed) of a cluster that came up joins; a member that joined once
    is told so again (its tag says so), a member that came up with a new cluster is told not to, and a member that
    never came up joins when another one did. So the answer for a member never changes once it came up, and a
    `pulumi up` that changes nothing re-runs no start step."""
    if bootstrapped and instance_id is not None and running_instance_ids and instance_id not in running_instance_ids:
        return True
    if member in bootstrapped:
        return bootstrapped[member] == ETCD_JOINED
    return bool(bootstrapped)


class EtcdCluster(pulumi.ComponentResource):
    members: list[render.Member]
    hosts: list[RemoteHost]                        # one per member, in `members` order, for steps other components add
    client_urls: str                               # what the API server's --etcd-servers takes
    healthy: command.remote.Command                # the health check of the whole cluster, after every start
    membership: list[command.remote.Command]       # per member after the first: its removal from the cluster
    bootstrapped: list[pulumi.Resource]            # per member, the tag that says it came up

    def __init__(self, name: str, args: EtcdClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:EtcdCluster", name, None, opts)
        self.members = [render.Member(n.name, n.private_ip) for n in args.members]
        self.client_urls = render.client_urls(self.members)
        service = render.SERVICE
        ca = args.pki.cas[ETCD_CA].cert_pem

        started: list[command.remote.Command] = []
        joins_by_member: dict[str, pulumi.Output] = {}
        self.hosts = []
        for node, member, address in zip(args.members, self.members, args.addresses):
            host = RemoteHost(node.name, address, args.ssh, node, self)
            self.hosts.append(host)
            server = args.pki.certs[etcd_server_cert_name(node.name)]
            peer = args.pki.certs[etcd_peer_cert_name(node.name)]
            inputs = pulumi.Output.all(ca, server.cert_pem, server.key_pem, peer.cert_pem, peer.key_pem).apply(
                lambda pems, m=member: render.EtcdInputs(m, self.members, args.cluster_name, render.EtcdTls(*pems)))
            files = inputs.apply(service.files)

            user_script = render.etcd_user_script()
            user = host.step("etcd-user", user_script, triggers=[user_script])
            written = host.step("etcd-files", files.apply(write_files_script), triggers=[files.apply(files_digest)],
                                depends_on=[user], secret=True)
            installed = [host.step(f"install-{c}", install_artifact_script(args.artifacts[c], [service]),
                                   triggers=[args.artifacts[c].url, args.artifacts[c].digest], depends_on=[user])
                         for c in installs([service])]
            # What a running member restarts for (the row's restart files: without the membership flags) and the
            # release it runs.
            triggers = [inputs.apply(lambda i: files_digest(service.files_restarting_it(i))),
                        *(args.artifacts[c].digest for c in service.artifacts)]
            joins = node.instance.id.apply(lambda i, m=member: joins_running_cluster(
                m.name, args.bootstrapped, i, args.running_instance_ids))
            joins_by_member[member.name] = joins
            script = pulumi.Output.all(fingerprint(triggers), joins).apply(
                lambda v, m=member: render.etcd_start_script(
                    m, self.members, args.cluster_name, v[0], new_machine=v[1],
                    switch=service_switch_script(service, args.artifacts)))
            # After the previous member's start: one member at a time restarts or joins.
            started.append(host.step("start-etcd", script, triggers=triggers,
                                     depends_on=[written, *installed, *started[-1:]]))

        # Runs on the first member once every member has (re)started; re-runs whenever one of them did.
        health = render.etcd_health_script(self.members)
        self.healthy = self.hosts[0].step("etcd-health", health, triggers=[health, *(s.id for s in started)],
                                          depends_on=started)
        self.bootstrapped = [
            host.mark_bootstrapped([self.healthy], joins_by_member[m.name].apply(
                lambda joins: ETCD_JOINED if joins else BOOTSTRAPPED))
            for host, m in zip(self.hosts, self.members)]
        self.membership = self._membership_steps(args)
        self.register_outputs({"clientUrls": self.client_urls})

    def _membership_steps(self, args: EtcdClusterArgs) -> list[command.remote.Command]:
        """One step per member after the first, run on the first member (which a lower count never removes).
        Created, it checks the member is listed; deleted, it removes the member from the cluster. It depends on
        the member's machine, so the engine deletes it (removing the member) before terminating the machine; each
        depends on the previous member's, so members are removed one at a time, the highest first. It is deleted
        with the VPC, so `pulumi destroy` runs no removal; and it has no triggers (a
        replacement is created before the old one is deleted, whose removal would remove the member just
        rejoined), so a replaced machine is left to its own start step, which rejoins it."""
        first, via = self.hosts[0], self.members[0]
        steps: list[command.remote.Command] = []
        for node, member in zip(args.members[1:], self.members[1:]):
            steps.append(first.removal_step(
                f"membership-{member.name}", check=render.etcd_member_listed_script(member, via=via),
                remove=render.etcd_member_remove_script(member, via=via),
                depends_on=[self.healthy, node.instance, *steps[-1:]], deleted_with=args.vpc,
                parent=self, timeout_seconds=MEMBERSHIP_TIMEOUT_SECONDS,
                engine_timeouts=pulumi.CustomTimeouts(delete="5m")))
        return steps
