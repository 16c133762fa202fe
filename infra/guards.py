"""What the settings cannot do to what AWS holds, refused before anything is declared, with a message naming the
setting, the value and what to do.

Settings validation (infra/settings.py) sees only the new values. These rules compare them with the facts read from
AWS (infra/aws_facts.py): this stack's running nodes, found by the stack tag, and what the account offers.

- A running cluster cannot take: another cluster name (a new cluster would be built and this one deleted, etcd's
  data with it), another architecture (the AMI is kept by `ignore_changes`, and an arm64 instance type cannot run an
  x86_64 image), a smaller root volume (EBS volumes only grow), another SSH key (a node's key pair is fixed at
  launch: every node would be replaced at once), an etcd count change that would lose quorum in one update, and etcd
  members that would move (`zones`, `topology` and `vpcCidr` decide where nodes sit).
- Nothing can be built on: a cluster name another stack's nodes or load balancer hold, an instance type EC2 does
  not have, that does not run the architecture, or is not offered in a zone the stack uses, more Standard vCPUs
  than the account's quota, more Elastic IPs (the private topology's NAT gateways) than the account may hold.
"""

from __future__ import annotations

from infra import addressing
from infra.aws_facts import (EC2_ARCH, ELASTIC_IP_QUOTA, SSH_KEY_TAG, STACK_TAG, STANDARD_VCPU_QUOTA, AwsFacts,
                             instance_types_in_use, is_standard_family, read_aws_facts, stack_identity)
from infra.settings import SettingsError, Settings, ssh_key_identity, ssh_key_material

__all__ = ["unsafe_changes", "capacity_problems", "launch_image_warnings", "etcd_count_change_problem",
           "refuse_unsafe_changes"]

RETAG_HINT = ("if that stack is this one before a `pulumi stack rename`, give its resources this stack's tag: aws "
              "resourcegroupstaggingapi get-resources --tag-filters Key={tag},Values={old} --query "
              "'ResourceTagMappingList[].ResourceARN' --output text | xargs aws resourcegroupstaggingapi tag-resources "
              "--tags {tag}={new} --resource-arn-list")


def unsafe_changes(settings: Settings, facts: AwsFacts) -> list[str]:
    """One message per change the running cluster cannot take."""
    s = settings
    problems = []
    for old in facts.renamed_from:
        problems.append(
            f"setting 'clusterName' = {s.cluster_name!r} cannot be applied: this stack's nodes run as cluster "
            f"{old!r}, and another name builds a new cluster and deletes this one at the end, etcd's data with it. "
            f"Set it back (pulumi config set clusterName {old}); the default, k8s-<stack>, follows the stack's name")
    for other in facts.foreign_stacks:
        problems.append(
            f"setting 'clusterName' = {s.cluster_name!r} cannot be used: nodes of cluster {s.cluster_name!r} in this "
            f"account and region belong to stack {other!r} (tag {STACK_TAG}), not to this stack "
            f"{facts.stack!r}. Set a clusterName of your own; "
            + RETAG_HINT.format(tag=STACK_TAG, old=other, new=facts.stack))
    for holder in facts.name_holders:
        if holder.stack not in (None, facts.stack) or (holder.stack is None and holder.cluster != s.cluster_name):
            owner = f"stack {holder.stack!r}" if holder.stack else "something this program did not make"
            problems.append(
                f"setting 'clusterName' = {s.cluster_name!r} cannot be used: the {holder.kind} name {holder.name!r} "
                f"is taken in this account and region by {owner}. Set a clusterName of your own"
                + ("; " + RETAG_HINT.format(tag=STACK_TAG, old=holder.stack, new=facts.stack) if holder.stack else ""))
    if facts.other_architecture:
        problems.append(
            f"setting 'architecture' = {s.architecture!r} cannot be applied: {facts.other_architecture} of the "
            f"cluster's nodes run another architecture, and a node's image is kept for its lifetime (a new Ubuntu "
            f"image never replaces a running node). Build a new stack for {s.architecture}, or destroy this one first")
    for role in ("etcd", "controllers", "workers"):
        sample = facts.samples.get(role)
        wanted = addressing.role_settings(s, role).root_volume_gb
        if sample and sample.root_volume_gb and sample.root_volume_gb > wanted:
            problems.append(
                f"setting '{role}.rootVolumeGb' = {wanted} cannot be applied: the {role} nodes have "
                f"{sample.root_volume_gb} GB root volumes and EBS volumes cannot shrink. Keep {sample.root_volume_gb} "
                "or more")
    # Only members that came up hold data: a first `pulumi up` that failed before any did can be retried with any
    # key, count or layout.
    if _key_changed(s, facts) and facts.came_up("etcd"):
        problems.append(
            "setting 'sshPublicKey' cannot be changed on a running cluster: a node's key pair is fixed at launch, "
            f"so all {len(facts.nodes)} nodes would be replaced at once and etcd would start empty. "
            "Set the key you had (or unset it to keep the generated one), or build a new stack")
    members = {n.name: n.private_ip for n in facts.came_up("etcd")}
    if members:
        if problem := etcd_count_change_problem(len(members), s.etcd.count):
            problems.append(problem)
        if moved := _moved_members(s, members):
            problems.append(
                f"settings 'zones', 'topology' and 'vpcCidr' = {s.zones}, {s.topology!r}, {s.vpc_cidr!r} cannot be "
                f"applied: they move {'; '.join(moved)}, and an etcd member cannot move (every member would start "
                "empty). Keep them, or build a new stack")
    return problems


def _key_changed(s: Settings, facts: AwsFacts) -> bool:
    """Whether the nodes run with another key than the settings name, judged by the key pair they were launched with
    (its tag, or for a key pair made before the tag, its key): never by the name AWS gave it, which autonaming
    settings may shape any way."""
    pair = facts.key_pair
    if pair is None:
        return False
    tagged = pair.tags.get(SSH_KEY_TAG)
    if tagged is not None:
        return tagged != ssh_key_identity(s.ssh_public_key)
    if s.ssh_public_key:
        return ssh_key_material(pair.public_key) != ssh_key_material(s.ssh_public_key)
    # A key pair from before the tag, with no key set now: only a key the user once set tells itself apart, by the
    # name the program gave it then (<cluster>-ssh-<8 hex>).
    return pair.name.startswith(f"{s.cluster_name}-ssh-") and len(pair.name.split("-ssh-", 1)[1].split("-")[0]) == 8


def _moved_members(s: Settings, members: dict[str, str]) -> list[str]:
    """Members whose address the settings plan elsewhere. Planned for as many members as run now or will run, so
    that a lower count is not a move."""
    wide = addressing.role_settings(s, "etcd").count
    from dataclasses import replace
    planned = {p.name: p.private_ip for p in addressing.plan_nodes(
        replace(s, etcd=replace(s.etcd, count=max(wide, len(members)))), "etcd")}
    return [f"{name} from {ip} to {planned[name]}" for name, ip in sorted(members.items())
            if name in planned and ip and planned[name] != ip]


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


def capacity_problems(settings: Settings, facts: AwsFacts) -> list[str]:
    """What the account and region cannot give the stack: instance types (known to EC2, of the architecture, offered
    in every zone the stack uses), Standard vCPUs, Elastic IPs."""
    s = settings
    problems = []
    if len(facts.zones) < s.zones:
        problems.append(f"setting 'zones' = {s.zones} is invalid: this region has only {len(facts.zones)} "
                        f"availability zones ({', '.join(facts.zones)})")
    used = instance_types_in_use(s)
    arch = EC2_ARCH[s.architecture]
    zones = list(facts.zones[: s.zones])
    for t, keys in sorted(used.items()):
        setting = f"setting '{keys[0]}' = {t!r}" + (f" (also {', '.join(keys[1:])})" if keys[1:] else "")
        if t in facts.unknown_types:
            problems.append(f"{setting} is invalid: EC2 does not know it ({facts.unknown_types[t]})")
            continue
        known = facts.instance_types[t]
        if arch not in known.architectures:
            problems.append(
                f"{setting} is invalid: it runs {', '.join(known.architectures)}, not {arch}, and 'architecture' is "
                f"{s.architecture!r}. Pick a type of that architecture (t3 for amd64, t4g for arm64) or set "
                "'architecture'")
        where = zones[:1] if keys == ["bastionInstanceType"] else zones
        missing = [z for z in where if (t, z) not in facts.offered]
        if missing:
            problems.append(
                f"{setting} is invalid: EC2 does not offer it in {', '.join(missing)}, a zone this stack uses "
                f"(setting 'zones' = {s.zones}: {', '.join(zones)}). Pick a type offered there, or fewer zones")
    needed = _standard_vcpus(s, facts)
    if facts.vcpu_quota is not None and needed and needed + facts.other_vcpus > facts.vcpu_quota:
        others = f" and other running instances of the same types use {facts.other_vcpus}" if facts.other_vcpus else ""
        problems.append(
            f"settings 'etcd', 'controllers' and 'workers' (counts and instance types) need {needed} vCPUs of "
            f"On-Demand Standard instances{others}, but the account's quota {STANDARD_VCPU_QUOTA} in this region is "
            f"{facts.vcpu_quota:g}. Ask for more (Service Quotas, Amazon EC2, 'Running On-Demand Standard (A, C, D, "
            "H, I, M, R, T, Z) instances'), or choose fewer or smaller nodes")
    if s.topology == "private" and facts.eip_quota is not None:
        new = max(0, s.zones - facts.eips_of_stack)
        free = facts.eip_quota - facts.eips_in_region
        if new > free:
            problems.append(
                f"setting 'topology' = 'private' with 'zones' = {s.zones} needs {s.zones} Elastic IP addresses (a NAT "
                f"gateway per zone), {new} of them new, but the region holds {facts.eips_in_region} of the "
                f"{facts.eip_quota:g} the account may have (quota {ELASTIC_IP_QUOTA}). Release some, ask for more, "
                "or use fewer zones")
    return problems


def _standard_vcpus(s: Settings, facts: AwsFacts) -> int:
    total = 0
    for role in ("etcd", "controllers", "workers"):
        rs = addressing.role_settings(s, role)
        if is_standard_family(rs.instance_type) and rs.instance_type in facts.instance_types:
            total += rs.count * facts.instance_types[rs.instance_type].vcpus
    if s.topology == "private" and s.bastion_instance_type in facts.instance_types and \
            is_standard_family(s.bastion_instance_type):
        total += facts.instance_types[s.bastion_instance_type].vcpus
    return total


def launch_image_warnings(facts: AwsFacts) -> list[str]:
    """A node keeps the image it was launched from (`ignore_changes=["ami"]`), and a replacement launches that same
    image again: once it is gone, a replaced node is terminated and its successor cannot start."""
    roles = {x.ami: [] for x in facts.samples.values()}
    for x in facts.samples.values():
        roles[x.ami].append(x.role)
    return [f"the image {ami} that the {', '.join(roles[ami])} nodes were launched from is no longer available: a "
            "replacement of one of them (--replace, a zones change) would terminate it and fail to launch its "
            "successor. See docs/recovery.md, 'A node's image is gone'" for ami in facts.gone_images]


def refuse_unsafe_changes(settings: Settings) -> AwsFacts:
    """Read what AWS holds and raise SettingsError if the settings cannot be applied to it; return the facts (the
    nodes that run decide rolling restarts and etcd joins). Called before any resource is declared."""
    import pulumi   # local import: the rules above stay pure and testable without a Pulumi runtime

    facts = read_aws_facts(settings, stack_identity())
    problems = unsafe_changes(settings, facts) + capacity_problems(settings, facts)
    if problems:
        raise SettingsError("; ".join(problems))
    for warning in launch_image_warnings(facts):
        pulumi.log.warn(warning)
    return facts
