#!/usr/bin/env python3
"""Build the whole program under Pulumi mocks at growing worker counts and print, per size and routing mode, the
number of resources, the depth of the dependency graph (resources on its longest chain) and the time to build it.

A flat depth is the point: nothing chains workers one after another, so a 100-worker cluster takes as many
sequential steps as a 3-worker one.

Usage: .venv/bin/python bench/graph_bench.py [worker counts...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.graph import dependency_depth  # noqa: E402
from tests.support.program import run_program  # noqa: E402


def measure(workers: int, routing: str) -> tuple[int, int, float]:
    config = {"adminCidrs": ["100.64.7.0/24"], "workers": {"count": workers}, "podRouting": routing,
              "routesQuota": 1000}
    start = time.perf_counter()
    run = run_program(config)
    elapsed = time.perf_counter() - start
    return len(run.resources), dependency_depth(run), elapsed


def main(sizes: list[int]) -> None:
    print(f"{'workers':>7} {'routing':>7} {'resources':>9} {'depth':>5} {'build s':>7}")
    for routing in ("vpc", "host"):
        for workers in sizes:
            resources, depth, elapsed = measure(workers, routing)
            print(f"{workers:>7} {routing:>7} {resources:>9} {depth:>5} {elapsed:>7.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [3, 10, 30, 100])
