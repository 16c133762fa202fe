"""The dependency graph of a recorded program run: how deep the longest chain of resources is."""

from __future__ import annotations

import functools

from simulator.program import ProgramRun


def dependency_depth(run: ProgramRun) -> int:
    """Resources on the longest dependency chain (explicit depends_on and input dependencies; component parents
    are not dependencies). A cluster whose workers do not chain has the same depth at 3 and at 100 workers."""
    urns = {r.urn: r for r in run.resources if r.custom}
    # Dependencies on a component stand for everything under it; expand them to its custom descendants.
    children: dict[str, list[str]] = {}
    for r in run.resources:
        children.setdefault(r.parent, []).append(r.urn)

    def custom_under(urn: str) -> list[str]:
        found = []
        for child in children.get(urn, []):
            found += [child] if child in urns else custom_under(child)
        return found

    def deps(r) -> set[str]:
        direct = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        out = set()
        for urn in direct:
            out |= {urn} if urn in urns else set(custom_under(urn))
        return out

    @functools.lru_cache(maxsize=None)
    def depth(urn: str) -> int:
        return 1 + max((depth(d) for d in deps(urns[urn]) if d != urn), default=0)

    return max(depth(u) for u in urns)
