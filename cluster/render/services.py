"""One row per node service: the facts a role's renderer and its wiring must agree on, stated once.

A row names what the service reads (its files), what it runs (artifacts) and calls (uses), which services of its
node it talks to (after), whether its restart stops the node's pods (drains) and its place in Kubernetes' version
skew order. Each role keeps its rows in start order (cluster/render/workers/, control_plane.py, etcd.py). Its
renderer reads them for the files it groups by service, the units' After= lines and the failure report of its
readiness check; its wiring (cluster/workers.py, control_plane.py, etcd.py) reads the same rows for the installs,
one start step per service in that order, the drain and the skew waits. docs/node-services.md walks through one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Generic, Iterable, Sequence, TypeVar

from cluster.render.common import NodeFile

Inputs = TypeVar("Inputs")


class Skew(IntEnum):
    """Kubernetes' version skew order: on a running cluster a rank restarts only once every lower rank has rolled."""
    ETCD = 0
    API_SERVER = 1
    CONTROLLERS = 2      # the controller-manager and the scheduler, after every API server
    NODE = 3             # the kubelet and kube-proxy, after the whole control plane


@dataclass(frozen=True)
class Service(Generic[Inputs]):
    name: str                                        # the systemd unit, without .service
    # What it reads, rendered from its role's inputs: a change of any file restarts it.
    files: Callable[[Inputs], list[NodeFile]]
    artifacts: tuple[str, ...] = ()                  # components of cluster/versions.py it runs: a new one restarts it
    uses: tuple[str, ...] = ()                       # components it calls anew each time: installed first, no restart
    after: tuple[str, ...] = ()                      # services of its node it talks to: they start before it
    drains: bool = False                             # its restart stops the node's pods: drain a running node first
    skew: Skew | None = None                         # its rank in the version skew order; None: outside it
    # Where its log comes in the report of its role's failed readiness check, lowest first.
    report_rank: int = 0
    # What its restart is keyed on when that is not every file it reads; None: its files.
    restart_files: Callable[[Inputs], list[NodeFile]] | None = None
    # A change applies with `systemctl reload` (a running unit keeps its open connections); a stopped unit starts.
    reloads: bool = False
    # The binaries of its artifacts it runs, switched to a new release by its own start step; None: all of them.
    runs: tuple[str, ...] | None = None

    @property
    def unit(self) -> str:
        return f"{self.name}.service"

    def files_restarting_it(self, inputs: Inputs) -> list[NodeFile]:
        return (self.restart_files or self.files)(inputs)


def units(names: Iterable[str]) -> tuple[str, ...]:
    """systemd unit names for service names."""
    return tuple(f"{name}.service" for name in names)


def installs(services: Sequence[Service]) -> tuple[str, ...]:
    """Every component the services run or use, each once, in the order of the rows."""
    return tuple(dict.fromkeys(c for s in services for c in (*s.artifacts, *s.uses)))


def in_report_order(services: Sequence[Service]) -> list[str]:
    """The services' names as their role's failed readiness check reports their logs."""
    return [s.name for s in sorted(services, key=lambda s: s.report_rank)]


def last_started(services: Sequence[Service]) -> list[Service]:
    """The services no other service of the node starts after: once they run, every service runs."""
    waited_for = {name for s in services for name in s.after}
    return [s for s in services if s.name not in waited_for]
