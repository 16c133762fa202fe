"""The dependency graph of a recorded program run: how deep the longest chain of resources is."""

from __future__ import annotations

import functools

from simulator.program import ProgramRun


def dependency_depth(run: ProgramRun) -> int:
    """Resources on the longest dependency chain (explicit depends_on and input dependencies; component parents
    are not dependencies). A cluster whose workers do not chain has the same depth at 3 and at 100 workers."""
    urns = {r.urn: r for r in run.resources if r.custom}

    @functools.lru_cache(maxsize=None)
    def depth(urn: str) -> int:
        return 1 + max((depth(d) for d in run.custom_edges(urns[urn])), default=0)

    return max(depth(u) for u in urns)
