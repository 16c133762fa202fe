"""Setting changes that cannot be applied to a running cluster, refused before anything is created.

Settings validation (infra/settings.py) sees only the new values. A few changes are valid values that cannot be
applied to the nodes that exist: the architecture (the AMI is kept by `ignore_changes`, and an arm64 instance type
cannot run an x86_64 image), a smaller root volume (EBS volumes only grow), an etcd count change that would lose
quorum in one update, and etcd members that would move (`zones`, `topology` and `vpcCidr` decide where nodes sit:
members that all move would start an empty cluster). A count change is applied one member at a time (cluster/etcd.py:
`member add` before a new member starts, `member remove` before a leaving one's machine goes); while it runs, the
cluster has the old members and the ones changed so far, so fewer members than a majority of the larger membership
may change in one update. The previous values are read from the cluster's own instances (their tags and addresses),
so the check needs no state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from infra import addressing
from infra.settings import Settings, SettingsError, key_pair_resource_name

# Tags every node carries (infra/nodes.py sets them; this module reads them back).
CLUSTER_TAG = "cluster"
ROLE_TAG = "role"
ARCHITECTURE_TAG = "architecture"
# Instances that still exist: a terminated one holds nothing back.
LIVE_STATES = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class ExistingNode:
    """What an instance of this cluster in AWS says about itself."""
    instance_id: str
    role: str
    architecture: str | None       # None for an instance made before the tag existed
    root_volume_gb: int | None
    name: str = ""                 # the node name (etcd-0, ...), from the Name tag
    private_ip: str = ""
    key_name: str = ""             # the EC2 key pair it was launched with
    instance_type: str = ""


@dataclass(frozen=True)
class RunningNodes:
    """The cluster's instances AWS shows before this update; none on a first creation."""
    nodes: tuple[ExistingNode, ...] = ()

    def names(self, role: str) -> list[str]:
        """The node names of one role (etcd, controllers, workers) that run."""
        return [n.name for n in self.nodes if n.role == role]

    def instance_ids(self, role: str) -> list[str]:
        """The instances of one role that run: a node whose instance is not among them is a new machine."""
        return [n.instance_id for n in self.nodes if n.role == role]

    def staged_instance_types(self, settings: Settings) -> dict[str, str]:
        """The instance type each planned node gets in this update (see staged_instance_types)."""
        types: dict[str, str] = {}
        for role, per_update in (("etcd", 1), ("controllers", 1), ("workers", settings.workers.rollout_batch_size)):
            running = {n.name: n.instance_type for n in self.nodes if n.role == role and n.instance_type}
            planned = [p.name for p in addressing.plan_nodes(settings, role)]
            types.update(staged_instance_types(getattr(settings, role).instance_type, planned, running, per_update))
        return types


def staged_instance_types(wanted: str, planned: Sequence[str], running: dict[str, str], per_update: int
                          ) -> dict[str, str]:
    """A new instance type reaches a running role a few nodes per update: EC2 applies it by stopping and starting
    the instance, and the engine would do every node of the role at once (all etcd members: the quorum; every API
    server; every worker without a drain). So one etcd member or controller per update, and one rollout batch of
    workers (which are replaced instead, each drained first by its removal step); the others keep their running
    type until a later `pulumi up`. New nodes and nodes already changed get `wanted`."""
    types, changing = {}, 0
    for name in planned:
        current = running.get(name)
        if current is None or current == wanted:
            types[name] = wanted
        elif changing < per_update:
            types[name] = wanted
            changing += 1
        else:
            types[name] = current
    return types


def unsafe_changes(settings: Settings, existing: Sequence[ExistingNode]) -> list[str]:
    """One message per refused change, each naming the setting, the running value, the new one, and what to do."""
    problems = []
    running_archs = sorted({n.architecture for n in existing if n.architecture})
    if running_archs and running_archs != [settings.architecture]:
        problems.append(
            f"setting 'architecture' = {settings.architecture!r} cannot be applied: the cluster's nodes run "
            f"{', '.join(running_archs)}, and a node's image is kept for its lifetime (a new Ubuntu image never "
            f"replaces a running node). Build a new stack for {settings.architecture}, or destroy this one first")
    roles = {"etcd": settings.etcd, "controllers": settings.controllers, "workers": settings.workers}
    for role, wanted in roles.items():
        sizes = [n.root_volume_gb for n in existing if n.role == role and n.root_volume_gb]
        if sizes and max(sizes) > wanted.root_volume_gb:
            problems.append(
                f"setting '{role}.rootVolumeGb' = {wanted.root_volume_gb} cannot be applied: the {role} nodes have "
                f"{max(sizes)} GB root volumes and EBS volumes cannot shrink. Keep {max(sizes)} or more")
    key_pair = key_pair_resource_name(settings.cluster_name, settings.ssh_public_key)
    launched_with_other_keys = [n for n in existing if n.key_name and not _made_by(key_pair, n.key_name)]
    if launched_with_other_keys and any(n.role == "etcd" for n in existing):
        problems.append(
            "setting 'sshPublicKey' cannot be changed on a running cluster: a node's key pair is fixed at launch, "
            f"so all {len(launched_with_other_keys)} nodes would be replaced at once and etcd would start empty. "
            "Set the key you had (or unset it to keep the generated one), or build a new stack")
    members = {n.name: n.private_ip for n in existing if n.role == "etcd"}
    count_problem = etcd_count_change_problem(len(members), settings.etcd.count) if members else None
    if count_problem:
        problems.append(count_problem)
    if members:
        planned = {p.name: p.private_ip for p in addressing.plan_nodes(settings, "etcd")}
        moved = [f"{name} from {ip} to {planned[name]}" for name, ip in sorted(members.items())
                 if name in planned and ip and planned[name] != ip]
        if moved:
            problems.append(
                f"settings 'zones', 'topology' and 'vpcCidr' = {settings.zones}, {settings.topology!r}, "
                f"{settings.vpc_cidr!r} cannot be applied: they move {'; '.join(moved)}, and an etcd member cannot "
                "move (every member would start empty). Keep them, or build a new stack")
    return problems


def quorum(members: int) -> int:
    return members // 2 + 1


def etcd_count_change_problem(running: int, wanted: int) -> str | None:
    """Why an etcd count change cannot be applied in one update, or None. Members are added or removed one at a
    time; a change of as many members as a majority of the larger membership would leave the cluster, part way,
    with a majority of members that are new and not started yet (or gone), which is a lost quorum."""
    changed = abs(wanted - running)
    if changed == 0 or changed < quorum(max(running, wanted)):
        return None
    setting = f"setting 'etcd.count' = {wanted} cannot be applied to the running {running} etcd members in one update"
    if running == 1:
        return (f"{setting}: a single member loses its quorum as soon as a second one is added (until it starts), "
                "and etcd refuses that. Keep 1, or build a new stack with the count you want")
    if wanted == 1:
        return (f"{setting}: the last step down, from 3 members to 1, removes a majority at once. Keep 3 or more "
                "(a cluster of one member survives no failure), or build a new stack with 1")
    path = [running]
    while path[-1] != wanted:
        step = quorum(path[-1]) - 1 if wanted < path[-1] else quorum(path[-1])
        step = max(2, step - step % 2)         # counts stay odd
        path.append(max(wanted, path[-1] - step) if wanted < path[-1] else min(wanted, path[-1] + step))
    direction = "adds" if wanted > running else "removes"
    steps = " -> ".join(str(n) for n in path)
    return (f"{setting}: it {direction} {changed} members at once, and {quorum(max(running, wanted))} would be a "
            f"majority of {max(running, wanted)}, so the cluster could lose its quorum part way. Change it in steps "
            f"of fewer members, one `pulumi up` each: {steps}")


def _made_by(resource_name: str, key_name: str) -> bool:
    """Whether an EC2 key pair name is the one the provider made for this Pulumi name (the name, '-', 7 random
    characters): `k8s-dev-ssh-1a2b3c4` is `k8s-dev-ssh`'s, `k8s-dev-ssh-0f1e2d3c-1a2b3c4` is not."""
    suffix = key_name.removeprefix(resource_name + "-")
    return suffix != key_name and len(suffix) == 7 and "-" not in suffix


def refuse_unsafe_changes(settings: Settings) -> RunningNodes:
    """Read this cluster's instances from AWS and raise SettingsError if the settings cannot be applied to them;
    return them (the etcd members that run decide whether new members join). Called before any resource is
    declared; one invoke, plus one per existing node."""
    import pulumi_aws as aws  # local import: the rules above stay pure and testable without a Pulumi runtime

    ids = aws.ec2.get_instances(instance_tags={CLUSTER_TAG: settings.cluster_name},
                                instance_state_names=list(LIVE_STATES)).ids
    existing = []
    for instance_id in ids:
        found = aws.ec2.get_instance(instance_id=instance_id)
        tags = dict(found.tags or {})
        volumes = [d.volume_size for d in found.root_block_devices or []]
        existing.append(ExistingNode(instance_id, tags.get(ROLE_TAG, ""), tags.get(ARCHITECTURE_TAG),
                                     int(volumes[0]) if volumes else None,
                                     name=tags.get("Name", "").removeprefix(f"{settings.cluster_name}-"),
                                     private_ip=found.private_ip or "", key_name=found.key_name or "",
                                     instance_type=found.instance_type or ""))
    problems = unsafe_changes(settings, existing)
    if problems:
        raise SettingsError("; ".join(problems))
    return RunningNodes(tuple(existing))
