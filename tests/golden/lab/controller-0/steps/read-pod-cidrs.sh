#!/bin/bash
# Read the pod range of every worker: worker-0, worker-1, worker-2.
set -euo pipefail
python3 - <<'K8S_FROM_SCRATCH_EOF'
"""Read every worker's name, InternalIP and podCIDR from the API, waiting (within a bound) until each has one.

This module is plain Python with no dependency beyond the standard library: the program ships its own source to a
controller (`reader_script`) and runs it there with kubectl and the deployer kubeconfig, and the tests import it and
drive `wait_for_pod_cidrs` with a fake clock. Its output is one JSON line, which `parse_reader_output` turns back
into NodePodRange values on the deployer.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

RESULT_PREFIX = "POD_CIDRS "


@dataclass(frozen=True)
class NodePodRange:
    name: str
    ip: str
    pod_cidr: str


class PodCidrTimeout(RuntimeError):
    pass


def parse_nodes(node_list: dict) -> dict[str, NodePodRange | None]:
    """`kubectl get nodes -o json` -> name -> range (None while the node has no podCIDR or no InternalIP yet)."""
    found: dict[str, NodePodRange | None] = {}
    for item in node_list.get("items", []):
        name = item["metadata"]["name"]
        cidr = item.get("spec", {}).get("podCIDR")
        ips = [a["address"] for a in item.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"]
        found[name] = NodePodRange(name, ips[0], cidr) if cidr and ips else None
    return found


def wait_for_pod_cidrs(expected: Sequence[str], fetch: Callable[[], dict], *, timeout: float, interval: float = 5,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> list[NodePodRange]:
    """Poll `fetch` (a node list) until every expected node has a podCIDR; raise naming the ones still missing."""
    deadline = clock() + timeout
    while True:
        try:
            nodes = parse_nodes(fetch())
            error = ""
        except Exception as err:  # the API may be briefly unavailable; keep polling within the bound
            nodes, error = {}, f" (last error: {err})"
        missing = [name for name in expected if nodes.get(name) is None]
        if not missing:
            return [nodes[name] for name in expected]
        remaining = deadline - clock()
        if remaining <= 0:
            raise PodCidrTimeout(f"after {timeout:.0f}s these nodes still have no podCIDR: {', '.join(missing)}"
                                 f"{error}")
        sleep(min(interval, remaining))


def parse_reader_output(stdout: str) -> list[NodePodRange]:
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return [NodePodRange(**n) for n in json.loads(line[len(RESULT_PREFIX):])]
    raise ValueError(f"no {RESULT_PREFIX.strip()} line in the reader's output:\n{stdout}")


def _kubectl_nodes(kubectl: Sequence[str]) -> dict:
    out = subprocess.run([*kubectl, "get", "nodes", "-o", "json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(expected: Sequence[str], timeout: float, kubectl: Sequence[str]) -> int:
    try:
        ranges = wait_for_pod_cidrs(expected, lambda: _kubectl_nodes(kubectl), timeout=timeout)
    except PodCidrTimeout as err:
        print(f"reading pod ranges failed: {err}", file=sys.stderr)
        return 1
    for r in ranges:
        print(f"{r.name} {r.ip} {r.pod_cidr}")
    print(RESULT_PREFIX + json.dumps([asdict(r) for r in ranges]))
    return 0


def reader_script(expected: Sequence[str], timeout_seconds: int, kubectl: Sequence[str]) -> str:
    """A bash step that runs this very module on a controller."""
    source = inspect.getsource(sys.modules[__name__])
    call = f"sys.exit(main({list(expected)!r}, {timeout_seconds}, {list(kubectl)!r}))"
    return ("#!/bin/bash\n"
            f"# Read the pod range of every worker: {', '.join(expected)}.\n"
            "set -euo pipefail\n"
            "python3 - <<'K8S_FROM_SCRATCH_EOF'\n"
            f"{source}\n{call}\n"
            "K8S_FROM_SCRATCH_EOF\n")

sys.exit(main(['worker-0', 'worker-1', 'worker-2'], 300, ['/usr/local/bin/kubectl', '--kubeconfig', '/etc/kubernetes/deployer.kubeconfig']))
K8S_FROM_SCRATCH_EOF
