"""One typed, validated settings tree, read from stack config.

Every user-facing key lives in ``SETTINGS_REFERENCE`` with its default and an example; docs/configuration.md's
reference table is rendered from it (simulator/docs.py). ``parse_settings`` is pure (plain dict in, frozen dataclass
out) so that every validation rule runs, and is tested, before any resource is declared.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from cluster.versions import VersionError, resolve_versions
from infra.instance_types import InstanceTypeError, capacity

CONFIG_NAMESPACE = "k8s-from-scratch"

ROUTING_MODES = ("vpc", "host")
TOPOLOGIES = ("public", "private")
ARCHITECTURES = ("amd64", "arm64")
MAX_ZONES = 6

# Node addresses inside each node subnet: the tutorial's etcd .10+, controllers .20+, workers .30+. A role with more
# than ten nodes in one subnet takes as many blocks of ten as it needs and the roles after it move up, so the
# defaults keep the tutorial's addresses and larger clusters still get one contiguous range per role.
FIRST_NODE_OFFSET = 10
ADDRESS_BLOCK = 10
# A VPC route table holds the local route and the default route before any pod route is added.
ROUTES_BEFORE_POD_ROUTES = 2


class SettingsError(ValueError):
    """A stack setting is missing or invalid; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class RoleSettings:
    count: int
    instance_type: str
    root_volume_gb: int
    # Workers only: how many running workers restart at once in a rolling change (each batch drained first).
    rollout_batch_size: int = 1


@dataclass(frozen=True)
class WorkerSettings(RoleSettings):
    """Workers are a role with two facts about the machines they run on, for hosts that are not the Ubuntu VMs the
    defaults are made for (the local lab's machines are both)."""
    allow_cgroup_v1: bool = False      # the kubelet runs on cgroup v1 (failCgroupV1: false) instead of refusing to
    system_container: bool = False     # the node shares its kernel with a host (systemd-nspawn, LXC)


@dataclass(frozen=True)
class EtcdSnapshotSettings:
    interval_minutes: int = 60
    keep: int = 24
    keep_gb: int = 4          # the snapshots kept on a member's disk fit in this many GiB together
    s3: bool = False
    # The bucket's lifecycle: snapshots expire this many days after upload, and a version that was overwritten or
    # expired is kept this many days more (the window in which a deleted snapshot can still be restored).
    s3_keep_days: int = 30
    s3_noncurrent_days: int = 7


@dataclass(frozen=True)
class Settings:
    cluster_name: str
    admin_cidrs: tuple[str, ...]
    etcd: RoleSettings
    controllers: RoleSettings
    workers: WorkerSettings
    vpc_cidr: str
    pod_cidr: str
    pod_cidr_mask_size: int
    service_cidr: str
    pod_routing: str
    routes_quota: int
    topology: str
    zones: int
    architecture: str
    ssh_public_key: str | None
    ssh_user: str
    bastion_instance_type: str
    versions: Mapping[str, str] = field(default_factory=dict)
    download_base_url: str | None = None
    dns_check_name: str = "sts.amazonaws.com"
    image_registry_mirror: str | None = None
    etcd_snapshots: EtcdSnapshotSettings = EtcdSnapshotSettings()
    export_super_admin_kubeconfig: bool = False
    metrics_server: bool = True
    # Keys the stack marks secret (`pulumi config set --secret`): their values must stay secret wherever they go.
    secret_keys: frozenset[str] = frozenset()

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values of secret settings that end up on nodes (a mirror URL with credentials, say)."""
        return tuple(v for k, v in (("downloadBaseUrl", self.download_base_url),) if v and k in self.secret_keys)

    # --- derived values: computed, never stored ---------------------------------------------------------------
    @property
    def service_ip(self) -> str:
        """The first service address: the in-cluster `kubernetes` Service, a SAN of the API server certificate."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def cluster_dns_ip(self) -> str:
        """The tenth service address, where CoreDNS listens (10.32.0.10 by default)."""
        return str(ipaddress.ip_network(self.service_cidr)[10])


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: Any
    example: str
    description: str          # Markdown: docs/configuration.md's table is rendered from these (reference_table)
    shown_default: str = ""   # how the reference shows a default that is not a plain value


_REQUIRED = object()
# Facts about the local lab's machines (systemd-nspawn containers on a host with cgroup v1 only), read from
# `workers` but in no reference: the program takes them only when the lab runs it (locallab sets LAB_MACHINES_ENV,
# see lab_machines()), so that an EC2 stack cannot be given them by mistake.
WORKER_HOST_KEYS = ("allowCgroupV1", "systemContainer")
LAB_MACHINES_ENV = "K8S_FROM_SCRATCH_LAB_MACHINES"

# The one place every user-facing key is defined. Order = the order of docs/configuration.md.
SETTINGS_REFERENCE: tuple[SettingSpec, ...] = (
    SettingSpec("adminCidrs", _REQUIRED, '["<your address>/32"]',
                "Networks allowed to reach SSH, the Kubernetes API and NodePorts. No open default.", "(required)"),
    SettingSpec("clusterName", None, "lab",
                "Name used in tags and AWS names (at most 28 characters: the load balancer is "
                "`<clusterName>-api`).", "`k8s-<stack>`"),
    SettingSpec("etcd", {"count": 3, "instanceType": "t3.small", "rootVolumeGb": 20},
                '{"count": 5}', "etcd members: an odd count from 1 to 9."),
    SettingSpec("controllers", {"count": 3, "instanceType": "t3.medium", "rootVolumeGb": 20},
                '{"count": 1}', "Control plane nodes (API server, controller-manager, scheduler)."),
    SettingSpec("workers", {"count": 3, "instanceType": "t3.medium", "rootVolumeGb": 30, "rolloutBatchSize": 1},
                '{"count": 10, "rolloutBatchSize": 2}',
                "Worker nodes (containerd, kubelet, kube-proxy). `rolloutBatchSize` (1 to `count`): how many running "
                "workers a change restarts at once, each drained first when containerd or the kubelet restart "
                "([rolling restarts](operations.md#rolling-restarts-of-controllers-and-workers)). The kubelet keeps "
                "resources back sized for `instanceType` (a family infra/instance_types.py knows)."),
    SettingSpec("vpcCidr", "10.43.0.0/16", "10.43.0.0/16",
                "The VPC range, /16 to /22. Node subnets are sixteenths of it."),
    SettingSpec("podCidr", "10.200.0.0/16", "10.200.0.0/16",
                "The cluster pod range; the controller-manager gives each node one slice of it."),
    SettingSpec("podCidrMaskSize", 24, "24", "Prefix length of each node's pod range (a /24 holds 254 pods)."),
    SettingSpec("serviceCidr", "10.32.0.0/24", "10.32.0.0/24",
                "Service range; its first address is the `kubernetes` Service, its tenth CoreDNS."),
    SettingSpec("podRouting", "vpc", "host",
                "`vpc`: one VPC route per worker pod range. `host`: routes on every worker (the tutorial's way)."),
    SettingSpec("routesQuota", 50, "500",
                "Routes per VPC route table your account allows (AWS quota L-93826ACB); checked in `vpc` mode."),
    SettingSpec("topology", "public", "private",
                "`public`: nodes have public IPs. `private`: nodes in private subnets behind NAT, SSH through a "
                "bastion."),
    SettingSpec("zones", 1, "3", f"How many availability zones to spread nodes over (1 to {MAX_ZONES})."),
    SettingSpec("architecture", "amd64", "arm64",
                "CPU architecture of every node; pick matching instance types (t4g, m7g...)."),
    SettingSpec("sshPublicKey", None, "ssh-ed25519 AAAA... you@host",
                "Public key to install on nodes. Otherwise a key pair is generated; its private key is the secret "
                "output `sshPrivateKey`.", "generated"),
    SettingSpec("sshUser", "ubuntu", "ubuntu", "Login user of the AMI."),
    SettingSpec("bastionInstanceType", "t3.micro", "t3.micro", "Instance type of the bastion (private topology only)."),
    SettingSpec("versions", {}, '{"etcd": "3.6.14"}',
                "Override pinned component versions; each version needs its checksums in `cluster/versions.py` "
                "([upgrading](operations.md#upgrading-kubernetes))."),
    SettingSpec("downloadBaseUrl", None, "https://mirror.example.internal",
                "Fetch every artifact from this mirror instead of the upstream hosts (same paths below it).",
                "upstream"),
    SettingSpec("imageRegistryMirror", None, "https://registry.example.internal:5000",
                "Workers pull docker.io and registry.k8s.io images through this registry first (containerd "
                "`hosts.toml`; it serves the same repository paths, like a pull-through cache or a registry you "
                "filled with `skopeo sync`), then from the registry itself. For mirrored and air-gapped installs.",
                "none"),
    # AWS's global STS endpoint: a public name with A records that every VPC resolver answers, internet or not.
    SettingSpec("dnsCheckName", "sts.amazonaws.com", "ec2.eu-west-1.amazonaws.com",
                "An external name a pod must resolve during `pulumi up` (through CoreDNS and the VPC resolver). The "
                "default is AWS's global STS endpoint: a public name every VPC resolver answers, with or without "
                "internet access."),
    SettingSpec("etcdSnapshots", {"intervalMinutes": 60, "keep": 24, "keepGb": 4, "s3": False, "s3KeepDays": 30,
                                  "s3NoncurrentDays": 7},
                '{"intervalMinutes": 30, "keep": 48, "keepGb": 8, "s3": true, "s3KeepDays": 90}',
                "Snapshots every etcd member takes of itself: every `intervalMinutes` (5 to 10080), the newest "
                "`keep` (1 to 1000) kept on its disk within `keepGb` GiB together (1 to 1000; the newest always "
                "stays), and with `s3` each also uploaded to a bucket the program creates, where snapshots expire "
                "after `s3KeepDays` and overwritten or expired versions `s3NoncurrentDays` later. The bucket is kept "
                "when `s3` is turned off or the stack destroyed ([backups and restore](operations.md#backups-and-"
                "restore), [restoring the whole cluster](day2.md); [recovery](recovery.md) says how to delete it)."),
    SettingSpec("exportSuperAdminKubeconfig", False, "true",
                "Also export the break-glass kubeconfig (`system:masters`, valid a week) as the secret output "
                "`superAdminKubeconfig`. Off: it lives on the first controller only."),
    SettingSpec("metricsServer", True, "false",
                "Run metrics-server, the resource metrics API behind `kubectl top` and the HorizontalPodAutoscaler's "
                "CPU and memory targets (an aggregated API, in the namespace `metrics-server`, `restricted` Pod "
                "Security). `pulumi up` waits until it has metrics of every node."),
)


def reference_table() -> str:
    """The configuration reference as a Markdown table, one row per key (docs/configuration.md)."""
    rows = ["| key | default | example | meaning |", "|---|---|---|---|"]
    for spec in SETTINGS_REFERENCE:
        plain = json.dumps(spec.default) if isinstance(spec.default, (dict, list)) else spec.default
        shown = spec.shown_default or f"`{plain}`"
        rows.append(f"| `{spec.key}` | {shown} | `{spec.example}` | {spec.description} |")
    return "\n".join(rows) + "\n"


KNOWN_KEYS = frozenset(spec.key for spec in SETTINGS_REFERENCE)
_DEFAULTS = {spec.key: spec.default for spec in SETTINGS_REFERENCE}

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_REGISTRY = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")

# RFC 5737: addresses for documentation. Nobody connects from them, so an adminCidrs entry in one of them (the
# example stack's placeholder) could only lead to gates dialling for a quarter of an hour before failing.
DOCUMENTATION_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
SET_ADMIN_CIDR_HINT = "pulumi config set --path 'adminCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\""

# AWS names the program derives from clusterName, each with AWS's limit on its length. Every other AWS resource is
# named by the provider (the Pulumi name plus a random suffix, far below its limit) or not named at all.
AWS_NAME_LIMITS = {"load balancer": 32, "target group": 32}


def aws_names(cluster_name: str) -> dict[str, str]:
    """The explicit AWS names derived from the cluster name (infra/apilb.py uses exactly these)."""
    return {"load balancer": f"{cluster_name}-api", "target group": f"{cluster_name}-api"}


# The key types EC2 ImportKeyPair accepts (EC2 User Guide, "Create a key pair using a third-party tool": RSA and
# ED25519; ECDSA is refused).
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")


def ssh_key_material(ssh_public_key: str) -> str:
    """The key itself, without its comment: "ssh-ed25519 AAAA..."."""
    return " ".join(ssh_public_key.split()[:2])


def ssh_key_identity(ssh_public_key: str | None) -> str:
    """What the key pair's tag says of the key: "generated", or a fingerprint of the user's key (its comment left
    out, so that a new comment is the same key)."""
    if not ssh_public_key:
        return "generated"
    return hashlib.sha256(ssh_key_material(ssh_public_key).encode()).hexdigest()[:16]


def key_pair_resource_name(cluster_name: str, ssh_public_key: str | None) -> str:
    """The Pulumi name of the nodes' key pair: one per key (AWS names it this plus '-' and 7 random characters), so
    another key is another key pair, never an in-place change. The comment is not part of the key."""
    if not ssh_public_key:
        return f"{cluster_name}-ssh"
    return f"{cluster_name}-ssh-{hashlib.sha256(ssh_key_material(ssh_public_key).encode()).hexdigest()[:8]}"


def key_pair_former_name(cluster_name: str, ssh_public_key: str | None) -> str | None:
    """The name the key pair had when the comment was part of it: an alias, so that no key pair made then is
    replaced now (None where both names are the same)."""
    if not ssh_public_key:
        return None
    former = f"{cluster_name}-ssh-{hashlib.sha256(ssh_public_key.encode()).hexdigest()[:8]}"
    return former if former != key_pair_resource_name(cluster_name, ssh_public_key) else None


MAX_CLUSTER_NAME = min(limit - (len(aws_names("")[kind])) for kind, limit in AWS_NAME_LIMITS.items())


def default_cluster_name(stack: str) -> str:
    """k8s-<stack>, with what AWS names cannot hold (upper case, '_', '.') turned into '-'."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"k8s-{stack}".lower())).strip("-")


def _fail(key: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"setting '{key}' = {value!r} is invalid: {allowed}")


def _network(key: str, value: Any) -> ipaddress.IPv4Network:
    if not isinstance(value, str):
        raise _fail(key, value, "expected an IPv4 CIDR string such as 10.0.0.0/16")
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise _fail(key, value, f"expected an IPv4 CIDR with no host bits set ({err})") from None


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(key, value, f"expected a whole number from {low} to {high}")
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(key, value, "allowed values are " + ", ".join(allowed))
    return value


def _role(key: str, raw: Any, default: Mapping[str, Any], max_count: int) -> RoleSettings:
    if not isinstance(raw, Mapping):
        raise _fail(key, raw, 'expected an object such as {"count": 3, "instanceType": "t3.medium"}')
    unknown = set(raw) - set(default)
    if unknown:
        raise _fail(f"{key}.{sorted(unknown)[0]}", raw[sorted(unknown)[0]],
                    "unknown key; allowed keys are " + ", ".join(default))
    merged = {**default, **raw}
    count = _int(f"{key}.count", merged["count"], 1, max_count)
    instance_type = merged["instanceType"]
    if not isinstance(instance_type, str) or not _INSTANCE_TYPE.match(instance_type):
        raise _fail(f"{key}.instanceType", instance_type, "expected an EC2 instance type such as t3.medium")
    volume = _int(f"{key}.rootVolumeGb", merged["rootVolumeGb"], 8, 16384)
    batch = _int(f"{key}.rolloutBatchSize", merged["rolloutBatchSize"], 1, count) if "rolloutBatchSize" in merged else 1
    return RoleSettings(count=count, instance_type=instance_type, root_volume_gb=volume, rollout_batch_size=batch)


def _workers(raw: Any, default: Mapping[str, Any], max_count: int, lab_machines: bool) -> WorkerSettings:
    host = {k: raw[k] for k in WORKER_HOST_KEYS if k in raw} if isinstance(raw, Mapping) else {}
    raw = {k: v for k, v in raw.items() if k not in host} if host else raw
    if host and not lab_machines:
        key = next(iter(host))
        raise _fail(f"workers.{key}", host[key],
                    "it describes the local lab's machines (systemd-nspawn containers on a cgroup v1 host) and only "
                    "the lab may set it: on an EC2 node it would let the kubelet run without cgroup v2 or leave the "
                    "kernel's conntrack table and containers' OOM scores unmanaged. Remove it from the stack")
    role = _role("workers", raw, default, max_count)
    try:
        capacity(role.instance_type)
    except InstanceTypeError as err:
        raise _fail("workers.instanceType", role.instance_type,
                    f"each worker's kubelet keeps resources back sized for its CPUs and memory, and {err}") from None
    for key, value in host.items():
        if not isinstance(value, bool):
            raise _fail(f"workers.{key}", value, "expected true or false")
    return WorkerSettings(count=role.count, instance_type=role.instance_type, root_volume_gb=role.root_volume_gb,
                          rollout_batch_size=role.rollout_batch_size,
                          allow_cgroup_v1=host.get("allowCgroupV1", False),
                          system_container=host.get("systemContainer", False))


@contextlib.contextmanager
def lab_machines() -> Iterator[None]:
    """While the lab runs the program: the workers' lab-only keys are taken (WORKER_HOST_KEYS)."""
    previous = os.environ.get(LAB_MACHINES_ENV)
    os.environ[LAB_MACHINES_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(LAB_MACHINES_ENV, None)
        else:
            os.environ[LAB_MACHINES_ENV] = previous


def _etcd_snapshots(raw: Any, default: Mapping[str, Any]) -> EtcdSnapshotSettings:
    key = "etcdSnapshots"
    if not isinstance(raw, Mapping):
        raise _fail(key, raw, 'expected an object such as {"intervalMinutes": 60, "keep": 24, "keepGb": 4, '
                    '"s3": false}')
    unknown = sorted(set(raw) - set(default))
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", raw[unknown[0]], "unknown key; allowed keys are " + ", ".join(default))
    merged = {**default, **raw}
    # At least every 5 minutes apart (a snapshot of a large database takes a while), at most once a week.
    interval = _int(f"{key}.intervalMinutes", merged["intervalMinutes"], 5, 7 * 24 * 60)
    keep = _int(f"{key}.keep", merged["keep"], 1, 1000)
    keep_gb = _int(f"{key}.keepGb", merged["keepGb"], 1, 1000)
    if not isinstance(merged["s3"], bool):
        raise _fail(f"{key}.s3", merged["s3"], "expected true or false")
    keep_days = _int(f"{key}.s3KeepDays", merged["s3KeepDays"], 1, 3650)
    noncurrent_days = _int(f"{key}.s3NoncurrentDays", merged["s3NoncurrentDays"], 1, 3650)
    return EtcdSnapshotSettings(interval_minutes=interval, keep=keep, keep_gb=keep_gb, s3=merged["s3"],
                                s3_keep_days=keep_days, s3_noncurrent_days=noncurrent_days)


def role_offsets(etcd: int, controllers: int, workers: int) -> dict[str, int]:
    """First host offset of each role inside a node subnet, given the most nodes of each role in one subnet."""
    offsets: dict[str, int] = {}
    nxt = FIRST_NODE_OFFSET
    for role, count in (("etcd", etcd), ("controllers", controllers), ("workers", workers)):
        offsets[role] = nxt
        blocks = max(1, -(-count // ADDRESS_BLOCK))
        nxt += blocks * ADDRESS_BLOCK
    return offsets


def nodes_per_zone(count: int, zones: int) -> int:
    """Nodes of a role are spread round-robin over zones; the busiest zone holds this many."""
    return -(-count // zones)


def node_subnet_prefix(vpc: ipaddress.IPv4Network) -> int:
    """Node subnets are sixteenths of the VPC: room for public and private subnets in up to six zones."""
    return vpc.prefixlen + 4


def parse_settings(raw: Mapping[str, Any], *, stack: str = "dev", secret_keys: frozenset[str] = frozenset(),
                   lab_machines: bool = False) -> Settings:
    """Validate raw stack config (keys without the project prefix) and return the settings tree. `lab_machines`:
    the local lab runs the program, and the workers' lab-only keys are taken."""
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise _fail(unknown[0], raw[unknown[0]], "unknown setting; known settings are " + ", ".join(sorted(KNOWN_KEYS)))
    values = {**_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}

    admin = values["adminCidrs"]
    if admin is _REQUIRED:
        raise SettingsError(
            "setting 'adminCidrs' is required: the networks allowed to reach SSH and the Kubernetes API, "
            f"for example your own address: {SET_ADMIN_CIDR_HINT}")
    if isinstance(admin, str) or not isinstance(admin, (list, tuple)) or not admin:
        raise _fail("adminCidrs", admin, "expected a non-empty list of CIDRs such as [\"<your address>/32\"]")
    admin_cidrs = tuple(str(_network(f"adminCidrs[{i}]", c)) for i, c in enumerate(admin))
    for i, cidr in enumerate(admin_cidrs):
        for documentation in DOCUMENTATION_RANGES:
            if ipaddress.IPv4Network(cidr).overlaps(documentation):
                raise _fail(f"adminCidrs[{i}]", cidr,
                            f"it is in {documentation}, a range reserved for documentation (RFC 5737) that no real "
                            f"client has: nothing could reach the cluster. Set your own address: {SET_ADMIN_CIDR_HINT}")

    cluster_name = values["clusterName"]
    if cluster_name is None:
        cluster_name = default_cluster_name(stack)
    if not isinstance(cluster_name, str) or not _NAME.match(cluster_name) or cluster_name.endswith("-"):
        raise _fail("clusterName", cluster_name,
                    f"expected 1-{MAX_CLUSTER_NAME} characters: lowercase letters, digits and '-', starting with a "
                    "letter and not ending with '-'")
    if cluster_name.startswith("internal-"):
        # ELBv2 reserves the prefix for the DNS names of internal load balancers (terraform-provider-aws
        # elbv2/validate.go validName: "cannot begin with 'internal-'").
        raise _fail("clusterName", cluster_name, "the load balancer is named after it, and ELBv2 refuses names "
                    "that begin with 'internal-'")
    if len(cluster_name) > MAX_CLUSTER_NAME:
        longest = max(aws_names(cluster_name).items(), key=lambda kv: len(kv[1]))
        raise _fail("clusterName", cluster_name,
                    f"the {longest[0]} would be named {longest[1]!r} ({len(longest[1])} characters) but AWS allows "
                    f"{AWS_NAME_LIMITS[longest[0]]}; use at most {MAX_CLUSTER_NAME} characters"
                    + (" (the default is k8s-<stack name>: set clusterName)" if values["clusterName"] is None else ""))

    etcd = _role("etcd", values["etcd"], _DEFAULTS["etcd"], 9)
    if etcd.count % 2 == 0:
        raise _fail("etcd.count", etcd.count, "etcd needs an odd number of members (1, 3, 5, 7 or 9) to keep quorum")
    controllers = _role("controllers", values["controllers"], _DEFAULTS["controllers"], 50)
    workers = _workers(values["workers"], _DEFAULTS["workers"], 1000, lab_machines)

    vpc = _network("vpcCidr", values["vpcCidr"])
    # Node subnets are sixteenths of the VPC and nodes sit from the 10th address of their lower half: from /23 on,
    # that half (8 or 16 addresses) holds no worker, so such a VPC could never be used.
    if not 16 <= vpc.prefixlen <= 22:
        raise _fail("vpcCidr", values["vpcCidr"], "expected /16 to /22: smaller VPCs leave no room for the nodes' "
                    "addresses in the lower half of each node subnet")
    pod = _network("podCidr", values["podCidr"])
    service = _network("serviceCidr", values["serviceCidr"])
    if service.prefixlen > 28:
        raise _fail("serviceCidr", values["serviceCidr"], "expected /28 or larger: it must hold the API and DNS addresses")
    if not 12 <= service.prefixlen:
        raise _fail("serviceCidr", values["serviceCidr"], "expected /12 or smaller (the API server's limit)")
    for (key_a, net_a), (key_b, net_b) in (
        (("podCidr", pod), ("vpcCidr", vpc)),
        (("serviceCidr", service), ("vpcCidr", vpc)),
        (("serviceCidr", service), ("podCidr", pod)),
    ):
        if net_a.overlaps(net_b):
            raise _fail(key_a, str(net_a), f"it overlaps {key_b} {net_b}; the ranges must be disjoint")

    mask = _int("podCidrMaskSize", values["podCidrMaskSize"], 16, 28)
    if mask < pod.prefixlen:
        raise _fail("podCidrMaskSize", mask, f"must be at least the podCidr prefix length /{pod.prefixlen}")
    node_ranges = 2 ** (mask - pod.prefixlen)
    if workers.count > node_ranges:
        raise _fail("workers.count", workers.count,
                    f"podCidr {pod} split into /{mask} ranges holds {node_ranges} nodes; "
                    "widen podCidr or raise podCidrMaskSize")

    pod_routing = _choice("podRouting", values["podRouting"], ROUTING_MODES)
    routes_quota = _int("routesQuota", values["routesQuota"], 1, 1000)
    if pod_routing == "vpc" and workers.count + ROUTES_BEFORE_POD_ROUTES > routes_quota:
        raise _fail("workers.count", workers.count,
                    f"podRouting 'vpc' puts one route per worker in each node route table, which already holds "
                    f"{ROUTES_BEFORE_POD_ROUTES} routes; routesQuota {routes_quota} allows at most "
                    f"{routes_quota - ROUTES_BEFORE_POD_ROUTES} workers. Raise the AWS quota and routesQuota, "
                    "or use podRouting 'host'")

    topology = _choice("topology", values["topology"], TOPOLOGIES)
    zones = _int("zones", values["zones"], 1, MAX_ZONES)
    if pod_routing == "host" and zones > 1:
        raise _fail("podRouting", pod_routing,
                    f"'host' routes to other nodes as on-link next hops, so every node must share one subnet, but "
                    f"zones = {zones} puts them in {zones}; use podRouting 'vpc' or zones 1")
    architecture = _choice("architecture", values["architecture"], ARCHITECTURES)

    offsets = role_offsets(*(nodes_per_zone(r.count, zones) for r in (etcd, controllers, workers)))
    subnet_size = 2 ** (32 - node_subnet_prefix(vpc))
    last_offset = offsets["workers"] + nodes_per_zone(workers.count, zones) - 1
    if last_offset >= subnet_size // 2:
        raise _fail("workers.count", workers.count,
                    f"node subnets of vpcCidr {vpc} are /{node_subnet_prefix(vpc)} ({subnet_size} addresses) and "
                    f"nodes live in the lower half, which is reserved for them; the last worker would need host "
                    f"offset {last_offset}. Use a larger vpcCidr or more zones")

    ssh_key = values["sshPublicKey"]
    if ssh_key is not None and (not isinstance(ssh_key, str) or not re.match(
            rf"^({'|'.join(SSH_KEY_TYPES)}) [A-Za-z0-9+/=]+( .*)?$", ssh_key.strip())):
        kind = ssh_key.split()[0] if isinstance(ssh_key, str) and ssh_key.split() else ""
        refused = f"EC2 key pairs take {' and '.join(SSH_KEY_TYPES)} keys only, not {kind}; " if kind.startswith(
            ("ecdsa-", "sk-", "ssh-dss")) else ""
        raise _fail("sshPublicKey", ssh_key, f"{refused}expected an OpenSSH public key line such as "
                    "'ssh-ed25519 AAAA... me'")
    ssh_user = values["sshUser"]
    if not isinstance(ssh_user, str) or not re.match(r"^[a-z_][a-z0-9_-]*$", ssh_user):
        raise _fail("sshUser", ssh_user, "expected a Unix user name")
    bastion_type = values["bastionInstanceType"]
    if not isinstance(bastion_type, str) or not _INSTANCE_TYPE.match(bastion_type):
        raise _fail("bastionInstanceType", bastion_type, "expected an EC2 instance type such as t3.micro")

    versions = values["versions"]
    if not isinstance(versions, Mapping):
        raise _fail("versions", versions, 'expected an object of component to version, such as {"etcd": "3.6.14"}')
    try:
        resolve_versions(versions)
    except VersionError as err:
        raise SettingsError(str(err)) from None
    base_url = values["downloadBaseUrl"]
    if base_url is not None and (not isinstance(base_url, str) or not re.match(r"^https?://[^\s'\"]+$", base_url)):
        raise _fail("downloadBaseUrl", base_url, "expected an http(s) URL with no spaces or quotes")

    mirror = values["imageRegistryMirror"]
    if mirror is not None and (not isinstance(mirror, str) or not _REGISTRY.match(mirror)):
        raise _fail("imageRegistryMirror", mirror, "expected a registry as scheme://host[:port] (http or https, no "
                    "path), such as https://registry.example.internal:5000")

    dns_check_name = values["dnsCheckName"]
    if not isinstance(dns_check_name, str) or not _DNS_NAME.match(dns_check_name) or \
            dns_check_name == "cluster.local" or dns_check_name.endswith(".cluster.local"):
        raise _fail("dnsCheckName", dns_check_name, "expected a lowercase DNS name outside the cluster with at least "
                    "one dot and no trailing dot, such as sts.amazonaws.com")

    etcd_snapshots = _etcd_snapshots(values["etcdSnapshots"], _DEFAULTS["etcdSnapshots"])
    export_super_admin = values["exportSuperAdminKubeconfig"]
    if not isinstance(export_super_admin, bool):
        raise _fail("exportSuperAdminKubeconfig", export_super_admin, "expected true or false")
    metrics_server = values["metricsServer"]
    if not isinstance(metrics_server, bool):
        raise _fail("metricsServer", metrics_server, "expected true or false")

    return Settings(
        cluster_name=cluster_name, admin_cidrs=admin_cidrs, etcd=etcd, controllers=controllers, workers=workers,
        vpc_cidr=str(vpc), pod_cidr=str(pod), pod_cidr_mask_size=mask, service_cidr=str(service),
        pod_routing=pod_routing, routes_quota=routes_quota, topology=topology, zones=zones,
        architecture=architecture, ssh_public_key=ssh_key.strip() if ssh_key else None, ssh_user=ssh_user,
        bastion_instance_type=bastion_type, versions=dict(versions),
        download_base_url=base_url.rstrip("/") if base_url else None, secret_keys=frozenset(secret_keys),
        dns_check_name=dns_check_name, image_registry_mirror=mirror.rstrip("/") if mirror else None,
        etcd_snapshots=etcd_snapshots, export_super_admin_kubeconfig=export_super_admin,
        metrics_server=metrics_server,
    )


def _decode(value: str) -> Any:
    """Stack config stores objects and lists as JSON and plain values as text; accept both."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_stack_settings() -> Settings:
    """Read every key of this project's stack config and validate it. The only function here that touches Pulumi.

    The engine hands config to the program either in the PULUMI_CONFIG environment variable or (Automation API,
    test mocks) in the runtime's config map; both are searched for this project's keys, so a misspelt key is
    reported, not ignored. Values are read raw, secret ones included (no warning), and the secret keys are
    remembered so that their values stay secret wherever the program puts them."""
    import pulumi  # local import: the parsing above stays pure and testable without a Pulumi runtime
    from pulumi import runtime

    prefix = f"{CONFIG_NAMESPACE}:"
    # The runtime's own map is not part of the SDK's public surface: read it if it is there.
    runtime_map = getattr(runtime.config, "CONFIG", None)
    keys = {**runtime.get_config_env(), **(runtime_map.get() if runtime_map is not None else {})}
    present = {key[len(prefix):] for key in keys if key.startswith(prefix)}
    raw = {}
    for key in sorted(present | KNOWN_KEYS):
        value = runtime.get_config(prefix + key)
        if value is not None:
            raw[key] = _decode(value)
    secret = frozenset(key for key in raw if runtime.is_config_secret(prefix + key)
                       or prefix + key in runtime.get_config_secret_keys_env())
    return parse_settings(raw, stack=pulumi.get_stack(), secret_keys=secret,
                          lab_machines=os.environ.get(LAB_MACHINES_ENV) == "1")
