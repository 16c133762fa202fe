"""Setting changes that cannot be applied to a running cluster, refused before anything is created.

Settings validation (infra/settings.py) sees only the new values. A few changes are valid values that AWS cannot
apply to the nodes that exist: the architecture (the AMI is kept by `ignore_changes`, and an arm64 instance type
cannot run an x86_64 image) and a smaller root volume (EBS volumes only grow). The previous values are read from
the cluster's own instances, which carry them as tags (infra/nodes.py), so the check needs no state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from infra.settings import Settings, SettingsError

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
    return problems


def refuse_unsafe_changes(settings: Settings) -> None:
    """Read this cluster's instances from AWS and raise SettingsError if the settings cannot be applied to them.
    Called before any resource is declared; one invoke, plus one per existing node."""
    import pulumi_aws as aws  # local import: the rules above stay pure and testable without a Pulumi runtime

    ids = aws.ec2.get_instances(instance_tags={CLUSTER_TAG: settings.cluster_name},
                                instance_state_names=list(LIVE_STATES)).ids
    existing = []
    for instance_id in ids:
        found = aws.ec2.get_instance(instance_id=instance_id)
        tags = dict(found.tags or {})
        volumes = [d.volume_size for d in found.root_block_devices or []]
        existing.append(ExistingNode(instance_id, tags.get(ROLE_TAG, ""), tags.get(ARCHITECTURE_TAG),
                                     int(volumes[0]) if volumes else None))
    problems = unsafe_changes(settings, existing)
    if problems:
        raise SettingsError("; ".join(problems))
