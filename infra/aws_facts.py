"""What AWS holds that the settings must fit, read before anything is declared: this stack's nodes (found by a tag
that names the stack) and which of them came up once (a tag the program sets after their health check), whoever else
holds the cluster's names, the instance types and the zones that offer them, and the account's quotas.
`infra/guards.py` judges these facts; this module only reads them.

The number of lookups does not grow with the node count: instances and network interfaces are listed with tag and
attribute filters, and only etcd members (at most 9) and one node per other role are described one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from infra import addressing
from infra.settings import Settings

# Tags every node carries (infra/nodes.py sets them; this module reads them back).
STACK_TAG = "k8s-from-scratch:stack"      # <organization>/<project>/<stack>: this stack, whatever the cluster is called
CLUSTER_TAG = "cluster"
ROLE_TAG = "role"
ARCHITECTURE_TAG = "architecture"
SSH_KEY_TAG = "k8s-from-scratch:ssh-key"  # on the key pair: "generated", or the fingerprint of the user's key
# On a node's primary network interface once the node came up (cluster/remote.py `RemoteHost.mark_bootstrapped`):
# only such nodes count as running. Not on the instance: the instance resource owns the instance's tags, and the
# update after a `pulumi refresh` would remove one it does not declare; nothing owns the interface's tags, and the
# interface lives and dies with its instance.
BOOTSTRAPPED_TAG = "k8s-from-scratch:bootstrapped"
BOOTSTRAPPED = "yes"
ETCD_JOINED = "joined"                    # the value on an etcd member that joined a running cluster
# Instances that still exist: a terminated one holds nothing back.
LIVE_STATES = ("pending", "running", "stopping", "stopped")
ROLES = ("etcd", "controllers", "workers")
EC2_ARCH = {"amd64": "x86_64", "arm64": "arm64"}
CANONICAL_OWNER_ID = "099720109477"
# Service Quotas codes: running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, in vCPUs; Elastic IPs.
STANDARD_VCPU_QUOTA = "L-1216C47A"
ELASTIC_IP_QUOTA = "L-0263D0A3"
# What a singular lookup answers when nothing matches (terraform-provider-aws: tfresource.SingularDataSourceFindError
# "no matching %s found"; the ELBv2 data sources: "Search returned 0 results, please revise so only one is returned";
# the AMI data source: "Your query returned no results").
NOT_FOUND = re.compile(r"no matching .* found|Search returned 0 results|Your query returned no results|NotFound")


def stack_identity() -> str:
    """<organization>/<project>/<stack>, as the CLI names this stack."""
    import pulumi
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def is_standard_family(instance_type: str) -> bool:
    """t3.medium, m7i-flex.large, i4i.xlarge are Standard; inf2, dl1, hpc7g, trn1, g5, p4d, x2idn, u-6tb1 are not."""
    return bool(re.match(r"^[acdhimrtz]\d", instance_type.split(".", 1)[0]))


@dataclass(frozen=True)
class RunningNode:
    instance_id: str
    role: str
    private_ip: str
    name: str = ""                 # the node name, where it is known (etcd members, planned addresses)
    instance_type: str = ""
    bootstrapped: str = ""         # its BOOTSTRAPPED_TAG: "" while it never came up (a first `pulumi up` that failed)


@dataclass(frozen=True)
class NodeSample:
    """One node of a role, described: every node of a role is launched alike and resized together."""
    role: str
    instance_id: str
    instance_type: str
    root_volume_gb: int | None
    key_name: str
    ami: str


@dataclass(frozen=True)
class KeyPairFacts:
    name: str
    public_key: str
    tags: dict


@dataclass(frozen=True)
class NameHolder:
    """Who holds one of the AWS names the cluster needs (a load balancer, a target group)."""
    kind: str
    name: str
    stack: str | None          # the stack tag it carries (None: made before the tag existed, or not by us)
    cluster: str | None


@dataclass(frozen=True)
class InstanceTypeFacts:
    name: str
    architectures: tuple[str, ...]       # EC2's names: x86_64, arm64
    vcpus: int


@dataclass(frozen=True)
class AwsFacts:
    stack: str
    zones: tuple[str, ...]                                  # the region's availability zones, sorted
    nodes: tuple[RunningNode, ...] = ()                     # this stack's nodes of this cluster
    renamed_from: tuple[str, ...] = ()                      # other cluster names this stack's nodes carry
    foreign_stacks: tuple[str, ...] = ()                    # other stacks' nodes carrying this cluster name
    legacy_nodes: int = 0                                   # untagged nodes of this cluster, read as this stack's
    other_architecture: int = 0                             # this stack's nodes of another architecture
    samples: dict = field(default_factory=dict)             # role -> NodeSample
    key_pair: KeyPairFacts | None = None
    gone_images: tuple[str, ...] = ()                       # images running nodes were launched from, now gone
    instance_types: dict = field(default_factory=dict)      # type -> InstanceTypeFacts
    unknown_types: dict = field(default_factory=dict)       # type -> what EC2 answered
    offered: frozenset = frozenset()                        # (type, zone) pairs EC2 offers
    vcpu_quota: float | None = None
    other_vcpus: int = 0                                    # other running instances of the stack's Standard types
    eip_quota: float | None = None
    eips_in_region: int = 0
    eips_of_stack: int = 0
    name_holders: tuple[NameHolder, ...] = ()

    def running(self, role: str) -> list[RunningNode]:
        """Every instance of a role, whether or not it ever came up."""
        return [n for n in self.nodes if n.role == role]

    def came_up(self, role: str) -> list[RunningNode]:
        """The nodes of a role that came up once: what rolling restarts, etcd joins and quorum rules count."""
        return [n for n in self.running(role) if n.bootstrapped]

    def names(self, role: str) -> list[str]:
        """The names of the nodes of a role that came up and that the new layout keeps where they are."""
        return [n.name for n in self.came_up(role) if n.name]

    def bootstrapped(self, role: str) -> dict[str, str]:
        """Node name -> its bootstrapped tag, for the nodes of a role that came up."""
        return {n.name: n.bootstrapped for n in self.came_up(role) if n.name}

    def instance_ids(self, role: str) -> list[str]:
        """The instances of one role that run: a node whose instance is not among them is a new machine."""
        return [n.instance_id for n in self.running(role)]

    def staged_instance_types(self, settings: Settings) -> dict[str, str]:
        """The instance type each planned node gets in this update (see staged_instance_types)."""
        types: dict[str, str] = {}
        for role, per_update in (("etcd", 1), ("controllers", 1), ("workers", settings.workers.rollout_batch_size)):
            running = {n.name: n.instance_type for n in self.running(role) if n.name and n.instance_type}
            planned = [p.name for p in addressing.plan_nodes(settings, role)]
            types.update(staged_instance_types(addressing.role_settings(settings, role).instance_type, planned,
                                               running, per_update))
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


def _tag_filters(tags: dict[str, str]):
    import pulumi_aws as aws
    return [aws.ec2.GetInstancesFilterArgs(name=f"tag:{k}", values=[v]) for k, v in tags.items()]


def _absent(lookup: Callable[[], object]):
    """The lookup's answer, or None where AWS has nothing of that name; any other error goes through."""
    try:
        return lookup()
    except Exception as err:        # an invoke error arrives as a plain Exception carrying the provider's message
        if NOT_FOUND.search(str(err)):
            return None
        raise


class _Reader:
    def __init__(self, settings: Settings, stack: str):
        import pulumi_aws as aws
        self.aws = aws
        self.s = settings
        self.stack = stack
        self.ours = {STACK_TAG: stack, CLUSTER_TAG: settings.cluster_name}

    def ids(self, tags: dict[str, str] | None = None, filters=()) -> dict[str, str]:
        """Instance id -> private address, of live instances with these tags and EC2 filters."""
        found = self.aws.ec2.get_instances(filters=[*_tag_filters(tags or {}), *filters] or None,
                                           instance_state_names=list(LIVE_STATES))
        return dict(zip(found.ids or [], found.private_ips or []))

    def describe(self, instance_id: str):
        return self.aws.ec2.get_instance(instance_id=instance_id)

    def tag(self, instance_id: str, key: str) -> str:
        return dict(self.describe(instance_id).tags or {}).get(key, "?")

    def filter(self, name: str, values: list[str]):
        return self.aws.ec2.GetInstancesFilterArgs(name=name, values=values)

    def zones(self) -> tuple[str, ...]:
        # Only real Availability Zones (no Local or Wavelength zones, which lack the instance types and NLBs), and
        # no state filter: a zone that is briefly impaired must not shift the list and move every subnet.
        return tuple(sorted(self.aws.get_availability_zones(
            all_availability_zones=False,
            filters=[self.aws.GetAvailabilityZonesFilterArgs(name="zone-type", values=["availability-zone"])]).names))

    def name_holder(self, kind: str, name: str) -> NameHolder | None:
        lookup = {"load balancer": self.aws.lb.get_load_balancer, "target group": self.aws.lb.get_target_group}[kind]
        found = _absent(lambda: lookup(name=name))
        if found is None:
            return None
        tags = dict(found.tags or {})
        return NameHolder(kind, name, tags.get(STACK_TAG), tags.get(CLUSTER_TAG))

    def nodes(self) -> tuple[list[RunningNode], dict, tuple[str, ...], tuple[str, ...], int]:
        """This stack's nodes of this cluster (by tag), other cluster names they carry, other stacks holding this
        cluster name, and how many untagged nodes were read as this stack's."""
        s = self.s
        of_stack = self.ids({STACK_TAG: self.stack})
        ours = self.ids(self.ours)
        # One of each kind is described, for the message: a refusal follows.
        elsewhere = sorted(set(of_stack) - set(ours))
        renamed = tuple(self.tag(i, CLUSTER_TAG) for i in elsewhere[:1])
        with_name = self.ids({CLUSTER_TAG: s.cluster_name})
        tagged = self.ids({CLUSTER_TAG: s.cluster_name}, [self.filter("tag-key", [STACK_TAG])])
        foreign = sorted(set(tagged) - set(ours))
        foreign_stacks = tuple(self.tag(i, STACK_TAG) for i in foreign[:1])
        legacy_ids = sorted(set(with_name) - set(tagged))
        nodes: list[RunningNode] = []
        samples: dict = {}
        for role in ROLES:
            found = self.ids({**self.ours, ROLE_TAG: role})
            # Which already run the role's instance type: only the others are described for theirs (a new type
            # reaches a role a few nodes per update, staged_instance_types).
            wanted = addressing.role_settings(s, role).instance_type
            typed = self.ids({**self.ours, ROLE_TAG: role}, [self.filter("instance-type", [wanted])]) if found else {}
            # etcd members are few (at most 9) and their names decide joins and moves: each is described.
            for instance_id, ip in sorted(found.items()):
                described = self.describe(instance_id) if role == "etcd" or instance_id not in typed else None
                name = ""
                if role == "etcd":
                    name = dict(described.tags or {}).get("Name", "").removeprefix(f"{s.cluster_name}-")
                instance_type = wanted if described is None else (described.instance_type or "")
                nodes.append(RunningNode(instance_id, role, ip, name, instance_type))
        # Untagged nodes with this cluster name were made before the stack tag existed. They are this stack's
        # unless another stack holds the cluster's names: two stacks could never both have made the load balancer
        # `<clusterName>-api`. They are read once, one by one; the update that follows tags them.
        legacy = 0
        if legacy_ids and not foreign_stacks:
            for instance_id in legacy_ids:
                described = self.describe(instance_id)
                tags = dict(described.tags or {})
                name = tags.get("Name", "").removeprefix(f"{s.cluster_name}-") if tags.get(ROLE_TAG) == "etcd" else ""
                nodes.append(RunningNode(instance_id, tags.get(ROLE_TAG, ""), with_name[instance_id], name,
                                         described.instance_type or ""))
                legacy += 1
        marks = self.bootstrapped([n.instance_id for n in nodes])
        nodes = [replace(n, bootstrapped=marks.get(n.instance_id, "")) for n in nodes]
        return _named(s, nodes), samples, renamed, foreign_stacks, legacy

    def bootstrapped(self, instance_ids: list[str]) -> dict[str, str]:
        """Instance id -> its bootstrapped tag, for the instances that carry one: two lookups of interfaces by tag,
        and the instances they belong to, whatever the node count."""
        if not instance_ids:
            return {}
        marks: dict[str, str] = {}
        for value in (BOOTSTRAPPED, ETCD_JOINED):
            interfaces = self.aws.ec2.get_network_interfaces(filters=[
                self.aws.ec2.GetNetworkInterfacesFilterArgs(name=f"tag:{BOOTSTRAPPED_TAG}", values=[value]),
                self.aws.ec2.GetNetworkInterfacesFilterArgs(name="attachment.instance-id", values=instance_ids)])
            if interfaces.ids:
                marks |= {i: value for i in self.ids(filters=[
                    self.filter("network-interface.network-interface-id", list(interfaces.ids))])}
        return marks

    def sample(self, role: str, nodes: list[RunningNode]) -> NodeSample | None:
        if not nodes:
            return None
        found = self.describe(nodes[0].instance_id)
        volumes = [d.volume_size for d in found.root_block_devices or []]
        return NodeSample(role, nodes[0].instance_id, found.instance_type or "", int(volumes[0]) if volumes else None,
                          found.key_name or "", found.ami or "")

    def other_architecture(self, nodes: list[RunningNode]) -> int:
        if not nodes:
            return 0
        others = [a for a in EC2_ARCH.values() if a != EC2_ARCH[self.s.architecture]]
        return len(self.ids(self.ours, [self.filter("architecture", others)]))

    def key_pair(self, samples: dict) -> KeyPairFacts | None:
        names = sorted({x.key_name for x in samples.values() if x.key_name})
        if not names:
            return None
        found = _absent(lambda: self.aws.ec2.get_key_pair(key_name=names[0], include_public_key=True))
        if found is None:
            return None
        return KeyPairFacts(found.key_name or names[0], found.public_key or "", dict(found.tags or {}))

    def gone_images(self, samples: dict) -> tuple[str, ...]:
        gone = []
        for ami in sorted({x.ami for x in samples.values() if x.ami}):
            found = _absent(lambda: self.aws.ec2.get_ami(
                owners=[CANONICAL_OWNER_ID], include_deprecated=True,
                filters=[self.aws.ec2.GetAmiFilterArgs(name="image-id", values=[ami])]))
            if found is None:
                gone.append(ami)
        return tuple(gone)

    def instance_types(self, wanted: list[str]) -> tuple[dict, dict]:
        known, unknown = {}, {}
        for t in wanted:
            try:
                found = self.aws.ec2.get_instance_type(instance_type=t)
            except Exception as err:        # EC2 answers InvalidInstanceType for a type it does not have
                unknown[t] = str(err).splitlines()[0]
                continue
            known[t] = InstanceTypeFacts(t, tuple(found.supported_architectures or ()), int(found.default_vcpus or 0))
        return known, unknown

    def offered(self, types: list[str], zones: list[str]) -> frozenset:
        if not types or not zones:
            return frozenset()
        f = self.aws.ec2.GetInstanceTypeOfferingsFilterArgs
        found = self.aws.ec2.get_instance_type_offerings(
            location_type="availability-zone",
            filters=[f(name="instance-type", values=types), f(name="location", values=zones)])
        return frozenset(zip(found.instance_types or [], found.locations or []))

    def quota(self, code: str) -> float | None:
        return self.aws.servicequotas.get_service_quota(service_code="ec2", quota_code=code).value

    def other_vcpus(self, types: dict, ours: set[str]) -> int:
        """vCPUs of the account's other running instances of the stack's Standard types (instances of other types
        are not seen: the check is a lower bound)."""
        total = 0
        for t, facts in types.items():
            if is_standard_family(t):
                running = self.aws.ec2.get_instances(filters=[self.filter("instance-type", [t])],
                                                     instance_state_names=["pending", "running"])
                total += facts.vcpus * len(set(running.ids or []) - ours)
        return total

    def eips(self) -> tuple[int, int]:
        everyone = self.aws.ec2.get_eips()
        ours = self.aws.ec2.get_eips(tags={STACK_TAG: self.stack})
        return len(everyone.allocation_ids or []), len(ours.allocation_ids or [])


def _named(settings: Settings, nodes: list[RunningNode]) -> list[RunningNode]:
    """Name controllers and workers by the address the settings plan for them: a node at a planned address is that
    node; one elsewhere is leaving or moving, and is no running node of the new layout."""
    planned = {(p.role, p.private_ip): p.name for role in ("controllers", "workers")
               for p in addressing.plan_nodes(settings, role)}
    return [n if n.name else replace(n, name=planned.get((n.role, n.private_ip), "")) for n in nodes]


def instance_types_in_use(settings: Settings) -> dict[str, list[str]]:
    """Instance type -> the settings that choose it."""
    used: dict[str, list[str]] = {}
    for role in ROLES:
        used.setdefault(addressing.role_settings(settings, role).instance_type, []).append(f"{role}.instanceType")
    if settings.topology == "private":
        used.setdefault(settings.bastion_instance_type, []).append("bastionInstanceType")
    return used


def read_aws_facts(settings: Settings, stack: str) -> AwsFacts:
    """Every fact the guards need, read with the provider's lookups (invokes), before any resource is declared."""
    r = _Reader(settings, stack)
    zones = r.zones()
    nodes, samples, renamed, foreign_stacks, legacy = r.nodes()
    holders = tuple(h for h in (r.name_holder("load balancer", f"{settings.cluster_name}-api"),
                                r.name_holder("target group", f"{settings.cluster_name}-api")) if h)
    for role in ROLES:
        sample = r.sample(role, [n for n in nodes if n.role == role])
        if sample:
            samples[role] = sample
    used = instance_types_in_use(settings)
    known, unknown = r.instance_types(sorted(used))
    zones_used = list(zones[: settings.zones])
    facts = dict(
        stack=stack, zones=zones, nodes=tuple(nodes), renamed_from=renamed, foreign_stacks=foreign_stacks,
        legacy_nodes=legacy, other_architecture=r.other_architecture(nodes), samples=samples,
        key_pair=r.key_pair(samples), gone_images=r.gone_images(samples), instance_types=known,
        unknown_types=unknown, offered=r.offered(sorted(known), zones_used), name_holders=holders,
        vcpu_quota=r.quota(STANDARD_VCPU_QUOTA), other_vcpus=r.other_vcpus(known, {n.instance_id for n in nodes}))
    if settings.topology == "private":
        facts["eip_quota"] = r.quota(ELASTIC_IP_QUOTA)
        facts["eips_in_region"], facts["eips_of_stack"] = r.eips()
    return AwsFacts(**facts)
