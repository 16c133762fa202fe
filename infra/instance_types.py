"""The CPUs and memory of the EC2 instance types the program knows, for sizing what a worker's kubelet keeps back for
the system. Pure data, no Pulumi.

Sizes follow EC2's naming (https://docs.aws.amazon.com/ec2/latest/instancetypes/): in the general purpose, compute
and memory optimized families a `large` has 2 vCPUs, an `xlarge` 4 and an `Nxlarge` 4N, with 2 GiB (c), 4 GiB (m) or
8 GiB (r) of memory per vCPU, and the Graviton families add a 1-vCPU `medium`. The burstable families have their own
table. Metal sizes and the other families are not listed: a worker of such a type is refused by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    vcpus: int
    memory_mib: int


GIB = 1024
# Burstable: size -> (vCPUs, GiB).
_T3 = {"nano": (2, 0.5), "micro": (2, 1), "small": (2, 2), "medium": (2, 4), "large": (2, 8), "xlarge": (4, 16),
       "2xlarge": (8, 32)}
_T2 = {"nano": (1, 0.5), "micro": (1, 1), "small": (1, 2), "medium": (2, 4), "large": (2, 8), "xlarge": (4, 16),
       "2xlarge": (8, 32)}
BURSTABLE = {"t2": _T2, "t3": _T3, "t3a": _T3, "t4g": _T3}
# Families whose memory is a fixed number of GiB per vCPU.
GIB_PER_VCPU = {
    **{f: 2 for f in ("c5", "c5a", "c6i", "c6a", "c7i", "c7a", "c6g", "c7g", "c8g")},
    **{f: 4 for f in ("m5", "m5a", "m6i", "m6a", "m7i", "m7a", "m6g", "m7g", "m8g")},
    **{f: 8 for f in ("r5", "r5a", "r6i", "r6a", "r7i", "r7a", "r6g", "r7g", "r8g")},
}
GRAVITON = re.compile(r"^[cmr][678]g$")
KNOWN_FAMILIES = (*BURSTABLE, *GIB_PER_VCPU)


class InstanceTypeError(ValueError):
    pass


def capacity(instance_type: str) -> Capacity:
    family, _, size = instance_type.partition(".")
    if family in BURSTABLE and size in BURSTABLE[family]:
        vcpus, gib = BURSTABLE[family][size]
        return Capacity(vcpus, int(gib * GIB))
    if family in GIB_PER_VCPU:
        match = re.fullmatch(r"(\d*)xlarge", size)
        vcpus = 2 if size == "large" else 1 if size == "medium" and GRAVITON.match(family) else \
            4 * int(match[1] or 1) if match else None
        if vcpus:
            return Capacity(vcpus, vcpus * GIB_PER_VCPU[family] * GIB)
    raise InstanceTypeError(
        f"the CPUs and memory of {instance_type!r} are not known here (infra/instance_types.py); known families: "
        f"{', '.join(KNOWN_FAMILIES)} (sizes medium, large, xlarge, Nxlarge; no metal)")
