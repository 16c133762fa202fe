"""Play what people do to a running stack the way the Pulumi engine plays it, and replay its AWS operations.

A scenario runs the real program under mocks for the stack as it is and as it will be (with shared key material,
so that equal inputs give equal keys and certificates), and hands both to the engine's rules (simulator/engine.py):
`pulumi up` after a setting change (`simulate`), with `--replace` or `--target-replace`; `pulumi refresh` after
machines were lost, then `pulumi up` (`refresh_then_up`); `pulumi destroy`, after a refresh or not (`destroy`); the
retry of a first `pulumi up` that failed part way (`retry_partial_first_up`) or was interrupted with creates pending
(`retry_interrupted`, and after `pulumi refresh --import-pending-creates`). The result is a ChangePlan: what becomes
of every resource, the operations in the engine's order with the remote commands each dials (on which node, with
which outcome, acting on which machine), and the first operation that fails.

`replay_operations` plays a plan's AWS operations into moto on top of what AWS held, so that AWS's own refusals
surface: an address in use, a name taken, a name too long, a volume that cannot shrink.

Limits: a value the program hashes (a files fingerprint) follows changes of value only, not a renewal it cannot
see under mocks; ids reach triggers directly, so a renewed id is followed. Updates reach moto only where they bear
on addresses, names, routes, rules or targets. Failures are those of commands dialling a machine that does not run
and those moto replays; a script's own failure is not played.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from infra.settings import SettingsError
from simulator import engine
from simulator.aws_replay import AwsReplay, dependency_order
from simulator.engine import (CREATED, DELETED, INSTANCE, NODE_NAME, REPLACED, RUNS, SKIPPED, UNCHANGED, UPDATED,
                              Change, Machines, Operation, node_name)
from simulator.program import ORGANIZATION, ClusterMocks, ProgramRun, Resource, run_program

__all__ = ["CREATED", "DELETED", "REPLACED", "UNCHANGED", "UPDATED", "Change", "Operation", "ChangePlan", "simulate",
           "refresh_then_up", "destroy", "retry_partial_first_up", "retry_interrupted", "replay_operations"]


@dataclass
class ChangePlan:
    before: ProgramRun               # the state the engine starts from (after any refresh)
    after: ProgramRun | None         # what the program declares (None: `pulumi destroy`)
    changes: dict[str, Change]
    operations: list[Operation]
    key_material: dict = field(default_factory=dict, repr=False)
    commands: tuple[str, ...] = ("pulumi up",)
    failure: Operation | None = None
    warnings: list[str] = field(default_factory=list)
    # What AWS held when the state was written, and the instances terminated out of band since.
    aws: list[Resource] = field(default_factory=list, repr=False)
    gone: frozenset[str] = frozenset()

    def of_kind(self, kind: str, type_: str | None = None) -> list[Change]:
        return [c for c in self.changes.values() if c.kind == kind and (type_ is None or c.type == type_)]

    def named(self, name: str, type_: str | None = None) -> Change:
        found = [c for c in self.changes.values() if c.name == name and (type_ is None or c.type == type_)]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def steps(self, host: str | None = None) -> list[Change]:
        return [c for c in self.changes.values() if c.step and (host is None or c.host == host)]

    def replaced_nodes(self) -> list[str]:
        """Nodes whose instance is replaced."""
        return sorted(node_name(c.resource) for c in self.of_kind(REPLACED, INSTANCE))

    def created_nodes(self) -> list[str]:
        return sorted(node_name(c.resource) for c in self.of_kind(CREATED, INSTANCE))

    def ops(self, name: str, action: str | None = None) -> list[Operation]:
        return [op for op in self.operations if op.change.name == name and action in (None, op.action)]

    def position(self, name: str, action: str) -> int:
        return next(i for i, op in enumerate(self.operations) if op.change.name == name and op.action == action)

    def delete_commands(self, outcome: str | None = None) -> list[Operation]:
        """Deletes of remote steps that have a delete command, with what became of it."""
        return [op for op in self.operations if op.command and op.action == "delete"
                and op.command.outcome != engine.NO_COMMAND and outcome in (None, op.command.outcome)]


def _run(resources: Iterable[Resource]) -> ProgramRun:
    return ProgramRun(resources=list(resources), outputs={}, secret_outputs=set())


def _plan(state: list[Resource], goal: ProgramRun | None, key_material: dict, *, commands: tuple[str, ...],
          aws: list[Resource], gone: Iterable[str] = (), replace: Iterable[str] = (),
          targets: Iterable[str] | None = None, dropped: Iterable[Resource] = (), warnings: Iterable[str] = (),
          deletes_first: Callable[[Resource], bool] | None = None) -> ChangePlan:
    if goal is None:
        changes, ops = engine.plan_destroy(state)
    else:
        changes, ops = engine.plan_up(state, goal.resources, replace=replace, targets=targets, dropped=dropped,
                                      **({"deletes_first": deletes_first} if deletes_first else {}))
    machines = Machines([*state, *[r for r in aws if r.type == INSTANCE and r.urn not in {s.urn for s in state}]],
                        goal.resources if goal else [], gone)
    failure = engine.execute(ops, machines)
    return ChangePlan(_run(state), goal, changes, ops, key_material, commands, failure, list(warnings), list(aws),
                      frozenset(gone))


def _first_up(config: dict[str, Any], key_material: dict, stack: str = "dev",
              organization: str = ORGANIZATION) -> ProgramRun:
    return run_program(config, stack=stack, organization=organization,
                       mocks=ClusterMocks(key_material=key_material))


def simulate(before: dict[str, Any] | ChangePlan, after: dict[str, Any], *, stack: str = "dev",
             force_replace: Iterable[str] = (), target: bool = False,
             deletes_first: Callable[[Resource], bool] | None = None,
             pod_cidrs: dict[str, str | None] | None = None) -> ChangePlan:
    """`pulumi up` of the `after` config on a stack deployed with the `before` config, or deployed by the plan
    `before` (a change after a change). `force_replace`: resource names given to `--replace`, or with `target`, to
    `--target-replace`. `pod_cidrs`: what the API says of the nodes' ranges now (see ClusterMocks)."""
    if isinstance(before, ChangePlan):
        key_material, first = before.key_material, before.after
    else:
        key_material = {}
        first = _first_up(before, key_material, stack)
    second = run_program(after, stack=stack, mocks=ClusterMocks(key_material=key_material, existing=first,
                                                                pod_cidrs=pod_cidrs))
    replace = tuple(force_replace)
    flag = "--target-replace" if target else "--replace"
    command = "pulumi up" + "".join(f" {flag} <{name}>" for name in replace)
    return _plan(first.resources, second, key_material, commands=(command,), aws=first.resources, replace=replace,
                 targets=replace if target else None, deletes_first=deletes_first)


def refresh_then_up(config: dict[str, Any], gone: Iterable[str]) -> ChangePlan:
    """Instances (resource names) terminated out of band, then `pulumi refresh`, then `pulumi up` of the same
    config."""
    key_material: dict = {}
    gone = tuple(gone)
    first = _first_up(config, key_material)
    state, dropped = engine.refresh(first.resources, gone)
    second = run_program(config, mocks=ClusterMocks(key_material=key_material, existing=_run(state)))
    return _plan(state, second, key_material, commands=("pulumi refresh", "pulumi up"), aws=first.resources,
                 gone=gone, dropped=dropped)


def destroy(config: dict[str, Any], *, gone: Iterable[str] = (), refresh_first: bool = False) -> ChangePlan:
    """`pulumi destroy` of a stack deployed with this config; `gone` instances terminated out of band before, and
    `pulumi refresh` run first if asked."""
    key_material: dict = {}
    gone = tuple(gone)
    first = _first_up(config, key_material)
    state = engine.refresh(first.resources, gone)[0] if refresh_first else first.resources
    commands = ("pulumi refresh", "pulumi destroy") if refresh_first else ("pulumi destroy",)
    return _plan(state, None, key_material, commands=commands, aws=first.resources, gone=gone)


def _without(resources: list[Resource], failed: set[str], *, keep: Callable[[Resource], bool]) -> list[Resource]:
    """What completed: resources `keep` accepts that depend, directly or not, on none of the `failed` (names) and on
    nothing `keep` rejects (what waits for a step that never ran was never made either)."""
    bad = {r.urn for r in resources if r.name in failed or not keep(r)}
    for r in dependency_order(resources):
        if engine._Graph.edges(r, with_parent=False) & bad:
            bad.add(r.urn)
    return [r for r in resources if r.urn not in bad]


def retry_partial_first_up(config: dict[str, Any], failed: Iterable[str]) -> ChangePlan:
    """A first `pulumi up` whose launches of the `failed` instances (resource names) failed (a vCPU quota, no
    capacity): the other instances and everything that is not a remote step made it into state and AWS, no step
    ran (an error cancels the update: steps not yet started never start). Then `pulumi up` again."""
    key_material: dict = {}
    goal = _first_up(config, key_material)
    state = _without(goal.resources, set(failed), keep=lambda r: not r.type.startswith("command:"))
    second = run_program(config, mocks=ClusterMocks(key_material=key_material, existing=_run(state)))
    return _plan(state, second, key_material, commands=("pulumi up (failed part way)", "pulumi up"), aws=state)


# A second Ctrl-C, a killed CI job, a lost connection to the backend: the instances and the load balancer were being
# created, AWS made them, the state never recorded them.
IN_FLIGHT_TYPES = (INSTANCE, "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup")


def retry_interrupted(config: dict[str, Any], *, import_pending: bool = False) -> ChangePlan:
    """A first `pulumi up` killed while its instances and load balancer were being created: they exist in AWS, and
    the state holds them only as pending creates. The next `pulumi up` warns about them and keeps them pending
    (deployment_executor.go printPendingOperationsWarning 90-114; pkg/backend/snapshot.go Snap 763-771 carries
    pending creates over), and creates them again. `import_pending`: `pulumi refresh --import-pending-creates <urn>
    <id> ...` first (pkg/cmd/pulumi/operations/refresh.go pendingCreatesToImports), which puts them in state."""
    key_material: dict = {}
    goal = _first_up(config, key_material)
    pending = [r for r in goal.resources if r.type in IN_FLIGHT_TYPES]
    state = _without(goal.resources, {r.name for r in pending}, keep=lambda r: not r.type.startswith("command:"))
    warnings = []
    if import_pending:
        state = dependency_order([*state, *pending])
        commands = ("pulumi up (interrupted)", "pulumi refresh --import-pending-creates ...", "pulumi up")
    else:
        warnings.append(f"{len(pending)} pending operations from the previous deployment: "
                        + ", ".join(sorted(r.name for r in pending)) + " (interrupted while creating)")
        commands = ("pulumi up (interrupted)", "pulumi up")
    aws = [*state, *(r for r in pending if r not in state)]
    second = run_program(config, mocks=ClusterMocks(key_material=key_material, existing=_run(aws)))
    return _plan(list(state), second, key_material, commands=commands, aws=aws, warnings=warnings)


def rename_stack(config: dict[str, Any], old: str, new: str) -> ChangePlan:
    """`pulumi stack rename <new>` (the state's URNs are rewritten to the new stack name, the resources are the
    same), then `pulumi up` of the same config."""
    key_material: dict = {}
    first = _first_up(config, key_material, stack=old)

    def renamed(urn: str) -> str:
        return urn.replace(f"urn:pulumi:{old}::", f"urn:pulumi:{new}::")

    state = [dataclasses.replace(
        r, urn=renamed(r.urn), parent=renamed(r.parent), deleted_with=renamed(r.deleted_with),
        dependencies=[renamed(u) for u in r.dependencies],
        property_dependencies={k: [renamed(u) for u in v] for k, v in r.property_dependencies.items()})
        for r in first.resources]
    second = run_program(config, stack=new, mocks=ClusterMocks(key_material=key_material, existing=_run(state)))
    return _plan(state, second, key_material, commands=(f"pulumi stack rename {new}", "pulumi up"), aws=state)


def second_stack(config: dict[str, Any], *, organization: str) -> ChangePlan:
    """A first `pulumi up` of a stack with the same project and stack name as one that runs in the same AWS account
    and region, in another organization (or another file backend: the organization is then the same)."""
    key_material: dict = {}
    other = _first_up(config, key_material)
    second = run_program(config, organization=organization,
                         mocks=ClusterMocks(key_material=key_material, existing=other))
    return _plan([], second, key_material, commands=(f"pulumi up (stack {organization}/.../dev)",), aws=other.resources)


def replay_operations(plan: ChangePlan) -> AwsReplay:
    """Create what AWS held in moto (less what went out of band), then play the plan's AWS operations on it, up to
    its failure. Use inside `mock_aws()`."""
    aws = AwsReplay()
    for r in dependency_order([r for r in plan.aws if r.type.startswith("aws:")]):
        aws.create(r)
    for r in plan.aws:
        if r.name in plan.gone and r.type == INSTANCE:
            aws.delete(r)
    for op in plan.operations:
        c = op.change
        if op.status != "done" or not c.type.startswith("aws:"):
            continue
        if op.action == "create":
            aws.create(c.after)
        elif op.action == "update":
            aws.update(c.before, c.after, c.changed)
        else:
            aws.delete(c.before)
    return aws


# --- what a change does, for people ----------------------------------------------------------------------------------
def _count(items: Iterable[str]) -> str:
    return ", ".join(f"{n} {name}" if n > 1 else name for name, n in sorted(Counter(items).items()))


def _short(type_: str) -> str:
    return type_.split(":")[-1]


def _step(c: Change) -> str:
    # A step one node runs for each other node (drain-worker-3 on controller-0) is counted as one kind.
    return "`" + NODE_NAME.sub(lambda m: m.group(0).rsplit("-", 1)[0] + "-N", c.step) + "`"


def summarize(plan: ChangePlan) -> dict[str, str]:
    """One line per column of the README table: AWS and PKI resources by outcome, steps that run again, services
    restarted (a `start-*` step replaced; an updated one restarts nothing when its service's files and binary are
    unchanged), and what the preview does not show."""
    done = [op for op in plan.operations if op.status == "done"]

    retained = {op.change.urn for op in plan.operations if op.status == "retained"}

    def kinds(kind: str) -> str:
        return _count(_short(c.type) for c in plan.of_kind(kind) if c.resource.custom
                      and not c.type.startswith("command:") and c.urn not in retained)

    aws = "; ".join(f"{kind}: {text}" for kind in (CREATED, REPLACED, UPDATED, DELETED) if (text := kinds(kind)))
    if retained:
        aws += "; dropped from the stack but kept in AWS: " + _count(_short(plan.changes[u].type) for u in retained)
    if plan.failure is not None:
        aws = f"**fails** at `{plan.failure.name}` ({plan.failure.command.why}); planned: " + (aws or "nothing")
    reruns = [c for c in plan.changes.values() if c.reruns and c.step]
    cluster = next((c.name for c in plan.changes.values() if c.type == "aws:ec2/vpc:Vpc"), "").removesuffix("-vpc")
    local = [c.name.removeprefix(f"{cluster}-") for c in plan.changes.values()
             if c.reruns and c.type == "command:local:Command"]
    steps = _count(_step(c) for c in reruns if c.kind != UPDATED)
    connection_only = _count(_step(c) for c in reruns if c.kind == UPDATED)
    removals = _count(_step(op.change) for op in done if op.command and op.action == "delete"
                      and op.command.outcome == RUNS)
    restarted = _count(c.step.removeprefix("start-") for c in reruns
                       if c.step.startswith("start-") and c.kind != UPDATED)
    return {
        "aws": aws or "nothing",
        "steps": "; ".join(x for x in (steps, f"updated (run again, restart nothing): {connection_only}"
                                       if connection_only else "",
                                       f"deleted (runs its delete command first): {removals}" if removals else "",
                                       _count(f"`{name}` (deployer)" for name in local)) if x)
        or "none",
        "restarted": restarted or "none",
        "hidden": hidden_by_preview(plan) or "nothing",
    }


def _etcd_starts_empty(plan: ChangePlan) -> bool:
    """Every etcd member that had started is on a new machine (or gone), and no member that keeps its data is left."""
    started = [c for c in plan.changes.values() if c.step == "start-etcd" and c.before is not None]
    if not started or plan.after is None:
        return False
    members = [c for c in plan.changes.values() if c.type == INSTANCE and c.resource.inputs.get("tags", {}).get(
        "role") == "etcd"]
    return all(c.kind in (REPLACED, CREATED, DELETED) for c in members)


def hidden_by_preview(plan: ChangePlan) -> str:
    """What `pulumi preview` does not show of a plan: a delete command's work (the preview shows a step deleted,
    not the drain it runs, nor on which machine; a skipped one looks the same), resources deleted early for a
    delete-first replacement and created again only when their turn comes, and steps run again because an instance
    that stops and starts gets a new public address (the provider's plan keeps the old one: unconfirmed, D13)."""
    parts = []
    acted = Counter()
    for op in plan.operations:
        if op.command and op.action == "delete" and op.command.outcome == RUNS and op.status == "done":
            for _, machine in op.command.acts_on:
                acted[f"{_step(op.change)} on {op.command.host} acts on the node it names: {machine}"] += 1
    parts += [f"{n} × {text}" if n > 1 else text for text, n in sorted(acted.items())]
    if _etcd_starts_empty(plan):
        parts.append("etcd starts empty on new machines with no member to join: every Kubernetes object is lost")
    skipped = _count(_step(op.change) for op in plan.delete_commands(SKIPPED))
    if skipped:
        parts.append(f"delete commands skipped (their deletedWith goes too): {skipped}")
    early = _count(_short(c.type) for c in plan.changes.values() if c.kind == REPLACED and c.delete_first
                   and c.forcing == ["(deleted early)"] and not c.type.startswith("command:"))
    if early:
        parts.append(f"deleted before the replaced node goes and created again only after it is back: {early}")
    address = [c for c in plan.changes.values() if c.kind == UPDATED and c.step
               and c.changed and all(p.startswith("connection.") for p in c.changed)]
    if address:
        parts.append(f"{len(address)} steps run again over a new address (the plan may keep the old one)")
    if plan.warnings:
        parts.append("warns: " + "; ".join(plan.warnings))
    return "; ".join(parts)


# --- the cases the tests play, and the README table made from them ---------------------------------------------------
ADMIN_CIDRS = ["100.64.7.0/24"]
BASE = {"adminCidrs": ADMIN_CIDRS, "etcd": {"count": 1}, "controllers": {"count": 1}, "workers": {"count": 3}}
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv9aVfnN0d0bw0FWxT2XjvE8x8VpN7B0zEXlQ0cB3vS you@host"
# A patch release with checksums of its own (made up: the simulator downloads nothing).
KUBERNETES_PATCH = {"kubernetes": {"version": "1.37.3",
                                    "kubernetes-server": {"sha512": {"amd64": "a1" * 64}},
                                    "kubernetes-node": {"sha512": {"amd64": "b2" * 64}}}}


def _with(**settings: Any) -> dict[str, Any]:
    return {**BASE, **settings}


THREE_ETCD = _with(etcd={"count": 3})


@dataclass(frozen=True)
class ChangeCase:
    id: str
    label: str                   # the README's words for the change
    before: dict[str, Any]
    after: dict[str, Any] | None = None
    force_replace: tuple[str, ...] = ()
    target: bool = False          # `--target-replace` rather than `--replace`
    after_case: str | None = None   # play on top of this case's result instead of `before`
    play: Callable[["ChangeCase"], ChangePlan] | None = None    # a scenario other than `pulumi up` of `after`
    replay: bool = False          # the README row says what AWS refuses when the plan is replayed into moto


def _play(function: Callable[..., ChangePlan], *args, **kwargs) -> Callable[[ChangeCase], ChangePlan]:
    return lambda case: function(case.before, *args, **kwargs)


CHANGE_CASES: tuple[ChangeCase, ...] = (
    ChangeCase("ssh-key", "`sshPublicKey` set after the first up", BASE, _with(sshPublicKey=SSH_PUBLIC_KEY)),
    ChangeCase("workers-up", "`workers.count` 3 → 5", BASE, _with(workers={"count": 5})),
    ChangeCase("workers-down", "`workers.count` 5 → 2", {}, _with(workers={"count": 2}), after_case="workers-up"),
    ChangeCase("instance-type", "`workers.instanceType` t3.medium → t3.large", BASE,
               _with(workers={"count": 3, "instanceType": "t3.large"})),
    ChangeCase("root-volume-up", "`workers.rootVolumeGb` 30 → 40", BASE,
               _with(workers={"count": 3, "rootVolumeGb": 40})),
    ChangeCase("version", "`versions.kubernetes` 1.37.2 → 1.37.3 (with its checksums)", BASE,
               _with(versions=KUBERNETES_PATCH)),
    ChangeCase("admin-cidr", "`adminCidrs`: one more network", BASE,
               _with(adminCidrs=[*ADMIN_CIDRS, "100.64.8.0/24"])),
    ChangeCase("zones", "`zones` 1 → 3", BASE, _with(zones=3)),
    ChangeCase("zones-moving-etcd", "`zones` 1 → 3 with 3 etcd members", THREE_ETCD, {**THREE_ETCD, "zones": 3}),
    ChangeCase("etcd-up", "`etcd.count` 3 → 5", THREE_ETCD, _with(etcd={"count": 5})),
    ChangeCase("etcd-down", "`etcd.count` 5 → 3", {}, THREE_ETCD, after_case="etcd-up"),
    ChangeCase("etcd-too-many", "`etcd.count` 3 → 7", THREE_ETCD, _with(etcd={"count": 7})),
    ChangeCase("topology", "`topology` public → private", BASE, _with(topology="private")),
    ChangeCase("bastion-type", "`bastionInstanceType` t3.micro → t3.small (private topology)",
               _with(topology="private"), _with(topology="private", bastionInstanceType="t3.small")),
    ChangeCase("architecture", "`architecture` amd64 → arm64", BASE,
               _with(architecture="arm64", etcd={"count": 1, "instanceType": "t4g.small"},
                     controllers={"count": 1, "instanceType": "t4g.medium"},
                     workers={"count": 3, "instanceType": "t4g.medium"})),
    ChangeCase("root-volume-down", "`workers.rootVolumeGb` 30 → 20", BASE,
               _with(workers={"count": 3, "rootVolumeGb": 20})),
    ChangeCase("snapshots-off", "`etcdSnapshots.s3` true → false", _with(etcdSnapshots={"s3": True}), BASE),
    ChangeCase("cluster-name", "`clusterName` set on a running stack", BASE, _with(clusterName="renamed")),
    ChangeCase("stack-rename", "`pulumi stack rename staging`, `clusterName` left to its default (k8s-<stack>)",
               BASE, play=_play(rename_stack, "dev", "staging")),
    ChangeCase("second-stack", "a stack with the same project and stack name, from another organization, in the "
               "same account and region", BASE, play=_play(second_stack, organization="other-org")),
    # --- replacing, losing and retrying ---
    ChangeCase("replace-worker", "`pulumi up --target-replace` of a worker", BASE, BASE,
               force_replace=("k8s-dev-worker-1",), target=True),
    ChangeCase("replace-controller", "`pulumi up --target-replace` of controller-0", BASE, BASE,
               force_replace=("k8s-dev-controller-0",), target=True),
    ChangeCase("replace-controller-scale-down", "`pulumi up --replace` of controller-0 with `workers.count` 3 → 2",
               BASE, _with(workers={"count": 2}), force_replace=("k8s-dev-controller-0",)),
    ChangeCase("replace-etcd", "`pulumi up --target-replace` of etcd-1 (of 3)", THREE_ETCD, THREE_ETCD,
               force_replace=("k8s-dev-etcd-1",), target=True),
    ChangeCase("replace-etcd-0", "`pulumi up --target-replace` of etcd-0 (of 3)", THREE_ETCD, THREE_ETCD,
               force_replace=("k8s-dev-etcd-0",), target=True),
    ChangeCase("replace-only-etcd", "`pulumi up --target-replace` of etcd-0 when it is the only member", BASE, BASE,
               force_replace=("k8s-dev-etcd-0",), target=True),
    ChangeCase("worker-lost", "a worker's instance terminated out of band, then `pulumi refresh` and `pulumi up`",
               BASE, play=_play(refresh_then_up, ["k8s-dev-worker-1"])),
    ChangeCase("partial-first-up", "a first `pulumi up` that launched 1 of 3 etcd instances (a vCPU quota), "
               "then `pulumi up` again", THREE_ETCD,
               play=_play(retry_partial_first_up, ["k8s-dev-etcd-1", "k8s-dev-etcd-2"])),
    ChangeCase("interrupted", "a first `pulumi up` killed while its instances and load balancer were created, then "
               "`pulumi up` again", BASE, play=_play(retry_interrupted), replay=True),
    ChangeCase("interrupted-imported", "the same, after `pulumi refresh --import-pending-creates <urn> <id> ...`",
               BASE, play=_play(retry_interrupted, import_pending=True), replay=True),
    ChangeCase("destroy", "`pulumi destroy`", BASE, play=_play(destroy)),
    ChangeCase("destroy-controller-lost", "controller-0 terminated out of band, `pulumi refresh`, then `pulumi "
               "destroy`", BASE, play=_play(destroy, gone=["k8s-dev-controller-0"], refresh_first=True)),
)
CASES_BY_ID = {c.id: c for c in CHANGE_CASES}
_PLANS: dict[str, ChangePlan | Exception] = {}
_DEPLOYED: dict[str, ChangePlan] = {}
_KEY_MATERIAL: dict = {}    # shared by every case: equal inputs, equal keys and certificates


def deployed(config: dict[str, Any]) -> ChangePlan:
    """A stack deployed with this config and left alone since (a plan that changes nothing), made once."""
    key = json.dumps(config, sort_keys=True)
    if key not in _DEPLOYED:
        run = run_program(config, mocks=ClusterMocks(key_material=_KEY_MATERIAL))
        _DEPLOYED[key] = ChangePlan(run, run, {}, [], _KEY_MATERIAL, aws=run.resources)
    return _DEPLOYED[key]


def plan_case(case_id: str) -> ChangePlan:
    """The plan of a case, made once per process; raises what the program raised (a refused change)."""
    if case_id not in _PLANS:
        case = CASES_BY_ID[case_id]
        try:
            if case.play is not None:
                _PLANS[case_id] = case.play(case)
            else:
                before = plan_case(case.after_case) if case.after_case else deployed(case.before)
                _PLANS[case_id] = simulate(before, case.after, force_replace=case.force_replace, target=case.target)
        except SettingsError as refused:   # the program refused the change: that is the case's outcome
            _PLANS[case_id] = refused
    outcome = _PLANS[case_id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


CHANGES_HEADER = ("| change | AWS and PKI resources | steps that run again | services restarted | "
                  "what the preview does not show |\n|---|---|---|---|---|\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def aws_refusal(plan: ChangePlan) -> str | None:
    """What AWS (moto, and the checks simulator/aws_replay.py adds where moto accepts what AWS refuses) answers the
    plan's first operation it refuses, or None."""
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from simulator.aws_replay import AwsRefused
    with mock_aws():
        try:
            replay_operations(plan)
        except (AwsRefused, ClientError) as refused:
            return str(refused).splitlines()[0]
        except Exception as refused:     # moto answers some refusals with a bare exception ("IP already in use")
            if "/moto/" not in traceback.extract_tb(refused.__traceback__)[-1].filename:
                raise
            return str(refused)
    return None


def render_changes_table() -> str:
    """The README's table of changes: every case, as the simulator played it."""
    rows = []
    for case in CHANGE_CASES:
        try:
            s = summarize(plan_case(case.id))
            if case.replay:
                refused = aws_refusal(plan_case(case.id))
                s["aws"] = (f"**AWS refuses** the first of them: {refused}; planned: " if refused else
                            "AWS accepts every operation; planned: ") + s["aws"]
            rows.append(f"| {case.label} | {_cell(s['aws'])} | {_cell(s['steps'])} | {_cell(s['restarted'])} | "
                        f"{_cell(s['hidden'])} |")
        except SettingsError as refused:
            message = str(refused).splitlines()[0]
            rows.append(f"| {case.label} | **refused** before anything is created: {_cell(message)} | none | none "
                        "| nothing |")
    return CHANGES_HEADER + "\n".join(rows) + "\n"


def sdk_name(type_: str) -> str:
    """The Python SDK's name for a type token: aws:ec2/instance:Instance -> aws.ec2.Instance."""
    package, module, name = type_.split(":")
    module = module.split("/")[0]
    return ".".join(part for part in (package, "" if module == "index" else module, name) if part)


def render_replace_rules() -> str:
    """The README's table of what forces a replacement, per resource type, with its source."""
    from infra.lifecycle import REPLACE_RULES

    def forcing(rule) -> str:
        if "*" in rule.replace_on:
            return "any input"
        parts = [f"`{p}`" for p in rule.replace_on]
        parts += [f"`{p}` (an element removed)" for p in rule.replace_when_shrunk]
        if rule.replace_when_switched:
            parts.append("one of " + ", ".join(f"`{p}`" for p in rule.replace_when_switched) + " for another")
        return ", ".join(parts) or "nothing"

    rows = [f"| `{sdk_name(r.type)}` | {forcing(r)} | {_cell(r.source)} |" for r in REPLACE_RULES]
    return "| resource | replaced when this input changes | source |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def delete_first_types() -> list[str]:
    """Resource types the program replaces delete-first: its `deleteBeforeReplace` option, or a name it sets."""
    runs = [plan_case(c).after for c in ("bastion-type", "workers-up")]
    return sorted({sdk_name(r.type) for run in runs for r in run.resources if r.custom and engine._deletes_first(r)})


README_SECTION = "## Changing a running cluster"


def render_readme_section() -> str:
    return f"""{README_SECTION}

`pulumi up` after a setting change updates in place what it can, replaces what it must, and refuses before anything
is created what it cannot apply. Nodes keep fixed private addresses, so a node whose instance must be replaced is
deleted first and created again at the same address; every step on it runs again, because each step's triggers
hold its instance's id. A change of connection alone (a new public address after a stop and start) updates the
steps: they run again, and a `start-*` step restarts its service only when the service's files or binary changed.

What each change does, as the change simulator plays it on a running stack of 1 etcd member (3 where it says so),
1 controller and 3 workers. The program runs under mocks before and after the change, and the engine's own rules
(`simulator/engine.py`, each citing the pulumi/pulumi source it follows, at commit {engine.ENGINE_COMMIT[:10]}) decide
what is created, updated, replaced and deleted, in which order, which delete commands run on which machine and
which are skipped: a delete-first replacement makes the inputs that come from the replaced resource unknown and
replaces what the provider then must (a replaced worker's own pod routes go with it), a step deletedWith a
replaced instance goes with it, old halves of create-first replacements are deleted last, a refresh drops what
AWS no longer has. `simulator/change_sim.py` plays the scenarios; counts grow with the node counts.
`tests/unit/test_change_simulator.py` checks that this section is what the simulator prints
(`python -m simulator.change_sim --readme [FILE]` rewrites it).

{render_changes_table()}
"Updated" steps run their script again over the new connection; "deleted (runs its delete command first)" are
steps whose delete command does the work before what they depend on goes (a worker drained and its Node deleted
before its instance, an etcd member removed before its machine); "services restarted" are the `start-*` steps
that are replaced. A step one node runs for each other node is counted by kind (`drain-worker-N`). The preview
lists the same resources, but not what a delete command does and on which machine, nor that a skipped one does
nothing, nor for how long what was deleted early stays gone. Replaced delete-first: \
{", ".join(f"`{t}`" for t in delete_first_types())} (the others are created before the old one is deleted).
What to do when an update is interrupted or a node is lost: `docs/recovery.md`.

What forces a replacement, per resource type (`infra/lifecycle.py`; every other input change is an update):

{render_replace_rules()}"""


def write_readme_section(path: str) -> None:
    """Rewrite the section in a Markdown file, from its heading to the next heading of its level."""
    with open(path) as f:
        text = f.read()
    head, rest = text.split(README_SECTION, 1)
    tail = rest.split("\n## ", 1)[1] if "\n## " in rest else None
    section = render_readme_section()    # before the file is opened for writing: a failure leaves it whole
    with open(path, "w") as f:
        f.write(head + section + ("\n## " + tail if tail is not None else ""))


if __name__ == "__main__":
    import sys
    from pathlib import Path

    args = sys.argv[1:]
    if args[:1] == ["--readme"]:
        target = args[1] if len(args) > 1 else str(Path(__file__).resolve().parents[1] / "docs" / "operations.md")
        write_readme_section(target)
    else:
        print(render_readme_section())
