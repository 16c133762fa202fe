#!/usr/bin/env python3
"""Build the whole program under Pulumi mocks at growing worker counts and print, per size and routing mode, the
number of resources, the depth of the dependency graph (resources on its longest chain) and the time to build it.

A flat depth is the point of a first creation: nothing chains workers one after another, so a 100-worker cluster
takes as many sequential steps as a 3-worker one.

Then, per size, the depth of a rolling change: a Kubernetes patch release (`versions.kubernetes`) played by the
change simulator on a running stack, counting only the steps it runs again on the longest chain. Running nodes
restart one after another (API servers, then controller-managers and schedulers, then workers in batches of
`workers.rolloutBatchSize`), so this depth grows with the number of worker batches, by design.

Usage: .venv/bin/python bench/graph_bench.py [worker counts...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import functools  # noqa: E402

from simulator.change_sim import KUBERNETES_PATCH, UNCHANGED, ChangePlan, simulate  # noqa: E402
from simulator.graph import dependency_depth  # noqa: E402
from simulator.program import run_program  # noqa: E402


def measure(workers: int, routing: str) -> tuple[int, int, float]:
    config = {"adminCidrs": ["100.64.7.0/24"], "workers": {"count": workers}, "podRouting": routing,
              "routesQuota": 1000}
    start = time.perf_counter()
    run = run_program(config)
    elapsed = time.perf_counter() - start
    return len(run.resources), dependency_depth(run), elapsed


def changed_depth(plan: ChangePlan) -> int:
    """Resources the change creates, replaces or updates on the longest dependency chain of the new graph (an
    unchanged resource on the chain costs nothing: the engine passes it at once)."""
    custom = {r.urn: r for r in plan.after.resources if r.custom}
    changed = {urn for urn, c in plan.changes.items() if c.kind != UNCHANGED}

    @functools.lru_cache(maxsize=None)
    def depth(urn: str) -> int:
        return (urn in changed) + max((depth(d) for d in plan.after.custom_edges(custom[urn])), default=0)

    return max(depth(u) for u in custom)


def rolling(workers: int, batch: int) -> tuple[int, float]:
    config = {"adminCidrs": ["100.64.7.0/24"], "workers": {"count": workers, "rolloutBatchSize": batch},
              "routesQuota": 1000}
    start = time.perf_counter()
    plan = simulate(config, {**config, "versions": KUBERNETES_PATCH})
    return changed_depth(plan), time.perf_counter() - start


def main(sizes: list[int]) -> None:
    print("first creation")
    print(f"{'workers':>7} {'routing':>7} {'resources':>9} {'depth':>5} {'build s':>7}")
    for routing in ("vpc", "host"):
        for workers in sizes:
            resources, depth, elapsed = measure(workers, routing)
            print(f"{workers:>7} {routing:>7} {resources:>9} {depth:>5} {elapsed:>7.2f}")
    print("\nrolling change: versions.kubernetes patch release on a running stack (3 etcd, 3 controllers)")
    print(f"{'workers':>7} {'batch':>5} {'steps on the longest chain':>26} {'build s':>7}")
    for workers in sizes:
        for batch in sorted({1, max(1, workers // 10)}):
            depth, elapsed = rolling(workers, batch)
            print(f"{workers:>7} {batch:>5} {depth:>26} {elapsed:>7.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [3, 10, 30, 100])
