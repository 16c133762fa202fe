"""The program's pinned Kubernetes and etcd releases as binaries, for the integration tests that run them.

They come from the lab's build (locallab/build.py): built from their Go modules once per version set and cached, so
only the first run on a machine pays for it (about 20 minutes on 2 cores). K8S_FROM_SCRATCH_BINARIES
(os.pathsep-separated directories) takes binaries from elsewhere instead.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path


class NoBinaries(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def pinned_binaries() -> dict[str, Path]:
    """Binary name -> path. Raises NoBinaries, saying why, where they can be neither found nor built."""
    given = [Path(d) for d in os.environ.get("K8S_FROM_SCRATCH_BINARIES", "").split(os.pathsep) if d]
    if given:
        return {p.name: p for d in given for p in sorted(d.iterdir()) if os.access(p, os.X_OK)}
    if shutil.which("go") is None:
        raise NoBinaries("building the pinned releases needs Go (1.26) and the Go module proxy")
    from locallab.build import ensure_build
    return dict(ensure_build().binaries)


def binaries_or_reason(names: tuple[str, ...]) -> tuple[dict[str, Path], str | None]:
    """The named binaries, or why they are missing (a test skips with that reason; CI counts it as a failure)."""
    try:
        found = pinned_binaries()
    except NoBinaries as why:
        return {}, str(why)
    missing = [n for n in names if n not in found]
    if missing:
        return {}, f"no {', '.join(missing)} among the built binaries"
    return {n: found[n] for n in names}, None
