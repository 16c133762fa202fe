#!/bin/bash
# Read the pod range of worker-0. Verification: it prints a range for each.
set -euo pipefail
python3 - <<'K8S_FROM_SCRATCH_EOF'
"""Read the podCIDR the cluster gave each worker, waiting (within a bound) until it has one.

Two readers share this module. A worker's own reader step runs it on the worker, with the kubelet's kubeconfig,
after the worker is Ready (`reader_script`): it answers for a machine that has just registered. The live read runs
it on the deployer at every `pulumi up`, before anything changes (`live_read_program`): it answers what the API
says now, which is how a node that registered again with another range is routed on the next `pulumi up`. Of the
two answers for a node the program keeps the newer registration (`newest`).

This module is plain Python with no dependency beyond the standard library (the live read loads the kubernetes
client when it runs): the program ships its own source to where it runs, and the tests import it and drive it with
fakes. Its output is one JSON line, which `parse_reader_output` turns back into NodePodRange values.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

RESULT_PREFIX = "POD_CIDRS "
# What the live read prints when the API does not answer (a first creation, or the deployer cannot reach it).
UNAVAILABLE_PREFIX = "POD_CIDRS_UNAVAILABLE "


@dataclass(frozen=True)
class NodePodRange:
    name: str
    ip: str
    pod_cidr: str
    # When the Node object was created (its metadata.creationTimestamp, RFC 3339 in UTC, so it sorts as text): a
    # node deleted and registered again is a new object, and the range allocator gives it another range.
    registered: str = ""


class PodCidrTimeout(RuntimeError):
    pass


def parse_nodes(node_list: dict) -> dict[str, NodePodRange | None]:
    """`kubectl get nodes -o json` (a list, or one Node) -> name -> range (None while the node has no podCIDR or no
    InternalIP yet)."""
    items = [node_list] if node_list.get("kind") == "Node" else node_list.get("items", [])
    found: dict[str, NodePodRange | None] = {}
    for item in items:
        name = item["metadata"]["name"]
        cidr = item.get("spec", {}).get("podCIDR")
        ips = [a["address"] for a in item.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"]
        registered = item["metadata"].get("creationTimestamp", "")
        found[name] = NodePodRange(name, ips[0], cidr, registered) if cidr and ips else None
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


def newest(read: NodePodRange, live: NodePodRange | None) -> NodePodRange:
    """Of a worker's own reader's answer and the live read's, the later registration of its Node. The reader answers
    again only for a new machine, so a node that registered again since (deleted, and its kubelet restarted) is the
    live read's; the live read runs before the update, so a machine that registers during it is the reader's."""
    return live if live is not None and live.registered > read.registered else read


def parse_reader_output(stdout: str) -> list[NodePodRange]:
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return [NodePodRange(**n) for n in json.loads(line[len(RESULT_PREFIX):])]
    raise ValueError(f"no {RESULT_PREFIX.strip()} line in the reader's output:\n{stdout}")


def parse_live_output(stdout: str) -> tuple[dict[str, NodePodRange], str | None]:
    """The live read's answer: the ranges by node name, and why there are none (None when the API answered)."""
    for line in stdout.splitlines():
        if line.startswith(UNAVAILABLE_PREFIX):
            return {}, line[len(UNAVAILABLE_PREFIX):]
    return {r.name: r for r in parse_reader_output(stdout)}, None


def _print_ranges(ranges: Sequence[NodePodRange]) -> None:
    for r in ranges:
        print(f"{r.name} {r.ip} {r.pod_cidr}")
    print(RESULT_PREFIX + json.dumps([asdict(r) for r in ranges]))


def _kubectl_nodes(kubectl: Sequence[str], names: Sequence[str]) -> dict:
    out = subprocess.run([*kubectl, "get", "nodes", *names, "-o", "json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(expected: Sequence[str], timeout: float, kubectl: Sequence[str]) -> int:
    try:
        ranges = wait_for_pod_cidrs(expected, lambda: _kubectl_nodes(kubectl, expected), timeout=timeout)
    except PodCidrTimeout as err:
        print(f"reading pod ranges failed: {err}", file=sys.stderr)
        return 1
    _print_ranges(ranges)
    return 0


def reader_script(expected: Sequence[str], timeout_seconds: int, kubectl: Sequence[str]) -> str:
    """A bash step that runs this very module on a node, for the nodes `expected`."""
    source = inspect.getsource(sys.modules[__name__])
    call = f"sys.exit(main({list(expected)!r}, {timeout_seconds}, {list(kubectl)!r}))"
    return ("#!/bin/bash\n"
            f"# Read the pod range of {', '.join(expected)}. Verification: it prints a range for each.\n"
            "set -euo pipefail\n"
            "python3 - <<'K8S_FROM_SCRATCH_EOF'\n"
            f"{source}\n{call}\n"
            "K8S_FROM_SCRATCH_EOF\n")


def _api_nodes(kubeconfig: Mapping, timeout: float) -> dict:
    from kubernetes import config   # the deployer's client, as wait_for_api in deployer_checks.py

    api = config.new_client_from_config_dict(dict(kubeconfig), persist_config=False)
    try:
        response = api.call_api("/api/v1/nodes", "GET", auth_settings=["BearerToken"], _preload_content=False,
                                _return_http_data_only=True, _request_timeout=timeout)
        return json.loads(response.data)
    finally:
        api.close()


def live_main(kubeconfig: Mapping, timeout: float, fetch: Callable[[Mapping, float], dict] = _api_nodes) -> int:
    """Every node's range as the API has it now, in one bounded request. An API that does not answer (a first
    creation, an address not in adminCidrs) is an answer too: the update goes on with the ranges read before."""
    try:
        ranges = [r for r in parse_nodes(fetch(kubeconfig, timeout)).values() if r is not None]
    except Exception as err:        # unresolvable, refused, timed out, unauthorized: no answer this time
        print(UNAVAILABLE_PREFIX + (f"{type(err).__name__}: {err}".splitlines() or [""])[0])
        return 0
    _print_ranges(sorted(ranges, key=lambda r: r.name))
    return 0


def live_read_program(kubeconfig: str, timeout_seconds: int) -> str:
    """A Python program for the deployer's interpreter that runs this very module's live read with the admin
    kubeconfig (a secret: the program travels on stdin only)."""
    source = inspect.getsource(sys.modules[__name__])
    return f"{source}\nsys.exit(live_main(json.loads({json.dumps(json.loads(kubeconfig))!r}), {timeout_seconds}))\n"

sys.exit(main(['worker-0'], 300, ['/usr/local/bin/kubectl', '--kubeconfig', '/var/lib/kubelet/kubeconfig']))
K8S_FROM_SCRATCH_EOF
