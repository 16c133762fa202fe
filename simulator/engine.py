"""The Pulumi engine's rules, played on recorded program runs: what `pulumi up`, `pulumi refresh` and `pulumi destroy`
do to a stack, step by step in the engine's order, and what each delete command of a `command:remote:Command` then
does, on which machine.

Each rule cites pulumi/pulumi at ENGINE_COMMIT, the newest snapshot there was to read: the SDK pins 3.272.0, whose tag
the snapshot lacks (its newest tag is v3.259.0 and sdk/.version says 3.260.0). Paths are under pkg/resource/deploy/
unless they say otherwise; line ranges are at that commit.

State is a list of recorded resources (simulator/program.py), in the order the engine keeps them (dependencies
first). What the engine cannot know from state (whether a machine still runs) is the `Machines` the caller passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

from infra.lifecycle import RULES, UPDATE_CHANGES_OUTPUTS, changed_paths, replacing_paths
from simulator.aws_replay import dependency_order
from simulator.program import Resource

ENGINE_COMMIT = "1b5949891b3cefcb9974752b24a5ecef0acc86c8"

CREATED, DELETED, UNCHANGED, UPDATED, REPLACED = "created", "deleted", "unchanged", "updated", "replaced"
PROGRAM, DELETES = "program", "deletes"          # the two phases of an update: while the program registers, after
RUNS, SKIPPED, FAILS, NO_COMMAND = "runs", "skipped", "fails", "no command"
INSTANCE = "aws:ec2/instance:Instance"
REMOTE = "command:remote:Command"
NODE_NAME = re.compile(r"\b(?:etcd|controller|worker|bastion)-\d+\b")
STEP_NAME = re.compile(r"^(?P<host>(?:etcd|controller|worker|bastion)-\d+)-(?P<step>.+)$")
INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")

# --- the rules, with their sources ---------------------------------------------------------------------------------
R_DIFF = ("provider Diff of the new inputs: an input that forces replacement changed "
          "(step_generator.go continueStepsFromDiff 1876-2206; infra/lifecycle.py)")
R_TARGETED = "`--replace`: diff answers replace, blaming the id (step_generator.go diff 2891-2893, isTargetedReplace 216-223)"
R_DELETED_WITH_REPLACED = ("its deletedWith resource is replaced (step_generator.go diff 2909-2917, pulumi/pulumi#23818)")
R_DEPENDENT = ("delete-first replacement of {root}: an input that comes from it becomes unknown and the provider's Diff "
               "says replace (step_generator.go calculateDependentReplacements 3268-3414)")
R_CASCADE = ("delete-first replacement of {root}, which it is deletedWith "
             "(step_generator.go findDependentCascadeReplacements 3419-3447, requiresReplacement 3317-3321)")
R_RECREATE = ("deleted early for a delete-first replacement, so it is created again when it registers, whatever its "
              "inputs (step_generator.go 1482-1507, case 'recreating')")
R_CREATE_FIRST = ("replaced create-first: the old half is deleted after the program has run "
                  "(step_generator.go continueStepsFromDiff 2168-2174, GenerateDeletes 2390-2423)")
R_REMOVED = "no longer declared: deleted after the program has run (step_generator.go GenerateDeletes 2424-2433)"
R_DESTROY = "`pulumi destroy`: every resource in state is deleted (step_generator.go GenerateDeletes 2436-2444)"
R_UNTARGETED = "not targeted: kept as it is (step_generator.go 1543-1550, GenerateDeletes 2454-2462)"
R_SKIPPED_CREATE = "not targeted: not created (step_generator.go 1757-1761)"
# Apply time: a delete whose deletedWith resource is deleted in the same run calls no provider Delete (step.go
# DeleteStep.Apply 663-664, isDeletedWith 603-612); a pulumi-command Delete without a delete command dials nothing
# (pulumi-command v1.2.1 provider/pkg/provider/remote/commandController.go Delete).


@dataclass
class Change:
    """What becomes of one resource in one run of the engine."""
    urn: str
    type: str
    name: str
    kind: str
    before: Resource | None
    after: Resource | None
    changed: list[str] = field(default_factory=list)     # input paths that differ (values or new upstream ids)
    forcing: list[str] = field(default_factory=list)     # those that force a replacement (or the rule that did)
    delete_first: bool = False                           # its old self is deleted before the new one is created
    reason: str = ""                                     # the engine rule that decided its kind

    @property
    def resource(self) -> Resource:
        return self.after or self.before

    @property
    def host(self) -> str | None:
        m = STEP_NAME.match(self.name)
        return m.group("host") if m and self.type == REMOTE else None

    @property
    def step(self) -> str | None:
        m = STEP_NAME.match(self.name)
        return m.group("step") if m and self.type == REMOTE else None

    @property
    def reruns(self) -> bool:
        """A step runs its script again: when created or replaced, and, having no `update` command, on update."""
        return self.type.startswith("command:") and self.kind in (CREATED, REPLACED, UPDATED)


@dataclass(frozen=True)
class CommandRun:
    """A remote command the operation dials for: on which node, with what outcome, and (for a delete command) which
    node's machine it acts on: ("worker-1", "new machine") is the machine this very update made for worker-1."""
    host: str | None
    outcome: str                                  # RUNS, SKIPPED, FAILS, NO_COMMAND
    acts_on: tuple[tuple[str, str], ...] = ()
    why: str = ""


@dataclass
class Operation:
    action: str                   # create | update | delete
    change: Change
    old_half: bool = False        # a delete of the old half of a replacement
    phase: str = PROGRAM          # PROGRAM: in a chain run as the program registers; DELETES: after it
    wave: int | None = None       # DELETES: the group it runs in (groups run one after another, each in parallel)
    reason: str = ""
    command: CommandRun | None = None
    status: str = "done"          # done | failed | not reached | retained (a delete that leaves it in the cloud)
    # What sg.deletes holds when the operation applies: a delete whose deletedWith resource is in it calls nothing.
    deletes_at_apply: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def name(self) -> str:
        return self.change.name


# --- refresh ---------------------------------------------------------------------------------------------------------
def refresh(state: Sequence[Resource], gone_instances: Iterable[str]) -> tuple[list[Resource], list[Resource]]:
    """`pulumi refresh` after the instances named (resource names) were terminated out of band: returns the new state
    and what it dropped.

    A provider Read that finds nothing returns an empty id and the engine drops the resource (step.go RefreshStep.Apply
    1613-1618); the AWS provider finds no terminated instance, and no target registration for it. pulumi-command has
    no Read of its own, so every step stays. The dependencies, property dependencies and deletedWith that named a
    dropped resource are removed from what stays (deployment_executor.go rebuildBaseState 868-960, and in the saved
    snapshot pkg/backend/snapshot.go Snap 750-753 with pkg/engine/test_journal.go FilterRefreshDeletes 327-400)."""
    gone = set(gone_instances)
    dropped_ids = {r.id for r in state if r.type == INSTANCE and r.name in gone}
    dropped = [r for r in state if (r.type == INSTANCE and r.name in gone) or
               (r.type == "aws:lb/targetGroupAttachment:TargetGroupAttachment" and r.inputs.get("targetId") in dropped_ids)]
    dropped_urns = {r.urn for r in dropped}
    kept = []
    for r in state:
        if r.urn in dropped_urns:
            continue
        kept.append(replace(
            r, dependencies=[d for d in r.dependencies if d not in dropped_urns],
            property_dependencies={k: [u for u in v if u not in dropped_urns]
                                   for k, v in r.property_dependencies.items()},
            deleted_with="" if r.deleted_with in dropped_urns else r.deleted_with))
    return kept, dropped


# --- how the engine decides, resource by resource --------------------------------------------------------------------
def _deletes_first(r: Resource) -> bool:
    """The resource's own `deleteBeforeReplace`, or a name the program set (two resources cannot hold one name:
    the bridge asks for delete-first, pulumi-terraform-bridge nameRequiresDeleteBeforeReplace); the engine takes the
    option over the provider's answer (step_generator.go 2030-2033)."""
    rule = RULES.get(r.type)
    explicit_name = bool(rule and rule.autoname and r.inputs.get(rule.autoname[0]))
    return r.delete_before_replace or explicit_name


def _leaf_paths(value, path: str, wanted: set[str]):
    """Paths (objects as `a.b`, a list as a whole) whose string leaves are, or contain, one of `wanted`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_paths(v, f"{path}.{k}" if path else k, wanted)
    elif isinstance(value, list):
        if any(True for v in value for _ in _leaf_paths(v, path, wanted)):
            yield path
    elif isinstance(value, str) and value:
        # Identifiers are matched whole; long values (ARNs, DNS names, PEMs) also where a script embeds them.
        if value in wanted or any(len(w) >= 16 and w in value for w in wanted):
            yield path


def _new_on_replace(r: Resource) -> set[str]:
    """The values a new resource in this one's place has anew: its id and the outputs its provider generates (a
    name the provider generates, but not one the program set). The mocks hand out the same values again; AWS
    does not."""
    rule = RULES.get(r.type)
    values = {r.id}
    for key in rule.new_on_create if rule else ():
        if rule.autoname and key == rule.autoname[0] and r.inputs.get(key):
            continue
        value = r.outputs.get(key)
        if isinstance(value, str) and value:
            values.add(value)
    return values


def _ignored(r: Resource, path: str) -> bool:
    return path in r.ignore_changes or path.split(".", 1)[0] in r.ignore_changes


def _unknown_forces_replacement(r: Resource, keys: set[str]) -> list[str]:
    """The provider's Diff of `r` with these top-level inputs unknown: a ForceNew input (or one named in the
    resource's replaceOnChanges, step_generator.go applyReplaceOnChanges 3170) that is unknown means replace. Inputs
    the resource ignores keep their old value (processIgnoreChanges 3076). Rules that need known values to decide
    (an element removed, a kind of source switched) cannot fire on an unknown."""
    rule = RULES[r.type]
    forcing = []
    for key in sorted(k for k in keys if not _ignored(r, k)):
        by_table = "*" in rule.replace_on or any(p.split(".", 1)[0] == key for p in rule.replace_on)
        by_option = any(o.split("[", 1)[0].split(".", 1)[0] == key for o in r.replace_on_changes)
        if by_table or by_option:
            forcing.append(key)
    return forcing


class _Graph:
    """The old state's dependency graph (pkg/resource/graph/dependency_graph.go)."""

    def __init__(self, state: Sequence[Resource]):
        # Any order with dependencies first is one the engine could have saved: sorted first, so runs agree.
        self.order = list(dependency_order(sorted(state, key=lambda r: r.urn), with_parent=True))
        self.index = {r.urn: i for i, r in enumerate(self.order)}
        self.by_urn = {r.urn: r for r in self.order}

    @staticmethod
    def edges(r: Resource, with_parent: bool) -> set[str]:
        deps = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        if r.deleted_with:
            deps.add(r.deleted_with)
        if with_parent and r.parent:
            deps.add(r.parent)
        return deps

    def depending_on(self, root: Resource, ignore: set[str]) -> list[Resource]:
        """Every resource after `root` that depends on it, directly or not, through a dependency, an input or
        deletedWith (not through a parent), in state order (DependingOn 55-125, includeChildren false)."""
        found, seen = [], {root.urn}
        for r in self.order[self.index[root.urn] + 1:]:
            if r.urn in ignore:
                continue
            if self.edges(r, with_parent=False) & seen:
                found.append(r)
                seen.add(r.urn)
        return found


@dataclass
class _Generator:
    """The step generator of one `pulumi up` (step_generator.go), fed the program's registrations in order."""
    graph: _Graph
    replace_targets: set[str]
    targets: set[str] | None
    dropped: dict[str, Resource]
    deletes_first: Callable[[Resource], bool]
    changes: dict[str, Change] = field(default_factory=dict)
    ops: list[Operation] = field(default_factory=list)
    deletes: set[str] = field(default_factory=set)          # sg.deletes: what this run deletes (so far)
    pending_deletes: set[str] = field(default_factory=set)  # sg.pendingDeletes: deleted early, before their turn
    replaces: set[str] = field(default_factory=set)
    registered: set[str] = field(default_factory=set)       # impossibleDependents (step_generator.go 3393-3403)
    renewed: set[str] = field(default_factory=set)          # values that replaced resources upstream no longer have
    old_halves: list[Resource] = field(default_factory=list)

    def register(self, r: Resource) -> None:
        self.registered.add(r.urn)
        b = self.graph.by_urn.get(r.urn)
        if r.urn in self.pending_deletes:
            self.deletes.discard(r.urn)
            self.replaces.add(r.urn)
            self._renew(b)
            self._record(Change(r.urn, r.type, r.name, REPLACED, b, r, forcing=["(deleted early)"],
                                delete_first=True, reason=f"{self.changes[r.urn].reason}; {R_RECREATE}"), "create")
            return
        targeted = self.targets is None or r.name in self.targets
        if b is None:
            if not targeted:
                self.changes[r.urn] = Change(r.urn, r.type, r.name, UNCHANGED, None, r, reason=R_SKIPPED_CREATE)
                return
            if r.urn in self.dropped:      # created in the place of one a refresh dropped: new id, new outputs
                self._renew(self.dropped[r.urn])
            self._record(Change(r.urn, r.type, r.name, CREATED, None, r, reason="new in the program"), "create")
            return
        if not targeted:
            self.changes[r.urn] = Change(r.urn, r.type, r.name, UNCHANGED, b, r, reason=R_UNTARGETED)
            return
        if not r.custom:
            self.changes[r.urn] = Change(r.urn, r.type, r.name, UNCHANGED, b, r)
            return
        paths, forcing, reason = self._diff(b, r)
        if forcing:
            self._replace(b, r, paths, forcing, reason)
        elif paths:
            self._record(Change(r.urn, r.type, r.name, UPDATED, b, r, paths, reason=R_DIFF), "update")
            for path, outputs in UPDATE_CHANGES_OUTPUTS.get(r.type, {}).items():
                if path in paths:
                    self.renewed |= {b.outputs[o] for o in outputs if b.outputs.get(o)}
        else:
            self.changes[r.urn] = Change(r.urn, r.type, r.name, UNCHANGED, b, r)

    def _diff(self, b: Resource, r: Resource) -> tuple[list[str], list[str], str]:
        """step_generator.go diff 2884-2970, then the provider's Diff (infra/lifecycle.py)."""
        paths = [p for p in changed_paths(b.inputs, r.inputs) if not _ignored(r, p)]
        paths += [p for p in _leaf_paths(r.inputs, "", self.renewed) if p not in paths and not _ignored(r, p)]
        if r.name in self.replace_targets:
            return paths, ["id"], R_TARGETED
        if r.deleted_with and r.deleted_with in self.replaces:
            return paths, ["deletedWith"], R_DELETED_WITH_REPLACED
        forcing = replacing_paths(r.type, paths, b.inputs, r.inputs)
        forcing += [p for p in paths if p not in forcing and any(
            p.split(".", 1)[0] == option.split("[", 1)[0].split(".", 1)[0] for option in r.replace_on_changes)]
        return paths, forcing, R_DIFF

    def _replace(self, b: Resource, r: Resource, paths: list[str], forcing: list[str], reason: str) -> None:
        self.replaces.add(r.urn)
        self._renew(b)
        if not self.deletes_first(r):
            self._record(Change(r.urn, r.type, r.name, REPLACED, b, r, paths, forcing, reason=reason), "create")
            self.changes[r.urn].reason += "; " + R_CREATE_FIRST
            self.old_halves.append(b)
            return
        # Delete-first (continueStepsFromDiff 2034-2166): first what depends on it and would be replaced, then it.
        dependents = self._dependent_replacements(b)
        cascade = [d for d in self.graph.order if d.deleted_with == b.urn]
        chain = [(d, R_CASCADE) for d in reversed(cascade)] + [(d, why) for d, why in reversed(dependents)]
        batch = []
        for d, why in chain:
            if d.urn in self.pending_deletes:
                continue
            self.deletes.add(d.urn)
            self.pending_deletes.add(d.urn)
            change = Change(d.urn, d.type, d.name, DELETED, d, None, reason=why.format(root=r.name))
            self.changes[d.urn] = change
            batch.append(Operation("delete", change, old_half=True, reason=change.reason))
        self.deletes.add(b.urn)
        change = Change(r.urn, r.type, r.name, REPLACED, b, r, paths, forcing, delete_first=True, reason=reason)
        self.changes[r.urn] = change
        batch.append(Operation("delete", change, old_half=True, reason="deleted before its replacement is created"))
        for op in batch:       # they apply once the whole batch is generated: sg.deletes holds all of it by then
            op.deletes_at_apply = frozenset(self.deletes)
        self.ops += batch
        self.ops.append(Operation("create", change, reason=reason))

    def _dependent_replacements(self, root: Resource) -> list[tuple[Resource, str]]:
        """calculateDependentReplacements (step_generator.go 3268-3414): walk what depends on `root` in the old
        state; each custom resource whose deletedWith, or one of whose inputs' sources, is in the replace set gets
        those inputs unknown and asks its provider's Diff."""
        replace_set = {root.urn}
        found = []
        for d in self.graph.depending_on(root, ignore=self.registered - {root.urn}):
            if not d.custom:
                continue
            if d.deleted_with and d.deleted_with in replace_set:
                replace_set.add(d.urn)
                found.append((d, R_CASCADE))
                continue
            unknown = {k for k, urns in d.property_dependencies.items() if set(urns) & replace_set}
            if unknown and _unknown_forces_replacement(d, unknown):
                replace_set.add(d.urn)
                found.append((d, R_DEPENDENT))
        return found

    def _renew(self, b: Resource | None) -> None:
        if b is not None:
            self.renewed |= _new_on_replace(b)

    def _record(self, change: Change, action: str) -> None:
        self.changes[change.urn] = change
        self.ops.append(Operation(action, change, reason=change.reason))

    def generate_deletes(self, reason_removed: str = R_REMOVED) -> None:
        """GenerateDeletes (2328-2466): old halves of create-first replacements and what the program no longer
        declares, scheduled by ScheduleDeletes (2747-2797) into groups over the old state's graph (a resource goes
        after everything that depends on it: dependencies, inputs, deletedWith, parent)."""
        condemned: dict[str, tuple[Resource, Change, bool]] = {}
        for b in self.old_halves:
            condemned[b.urn] = (b, self.changes[b.urn], True)
        for b in self.graph.order:
            if b.urn in self.changes or b.urn in self.pending_deletes:
                continue
            if self.targets is not None and b.name not in self.targets:
                self.changes[b.urn] = Change(b.urn, b.type, b.name, UNCHANGED, b, None, reason=R_UNTARGETED)
                continue
            change = Change(b.urn, b.type, b.name, DELETED, b, None, reason=reason_removed)
            self.changes[b.urn] = change
            condemned[b.urn] = (b, change, False)
        self.deletes |= set(condemned)
        level: dict[str, int] = {}

        def depth(urn: str) -> int:
            if urn not in level:
                b = condemned[urn][0]
                level[urn] = 1 + max((depth(u) for u in _Graph.edges(b, with_parent=True) if u in condemned),
                                     default=-1)
            return level[urn]

        top = max((depth(u) for u in condemned), default=0)
        for b in sorted(condemned.values(), key=lambda c: (top - depth(c[0].urn), self.graph.index[c[0].urn])):
            resource, change, old_half = b
            reason = R_CREATE_FIRST if old_half else change.reason
            self.ops.append(Operation("delete", change, old_half=old_half, phase=DELETES,
                                      wave=top - depth(resource.urn), reason=reason,
                                      deletes_at_apply=frozenset(self.deletes)))


def plan_up(state: Sequence[Resource], goal: Sequence[Resource], *, replace: Iterable[str] = (),
            targets: Iterable[str] | None = None, dropped: Iterable[Resource] = (),
            deletes_first: Callable[[Resource], bool] = _deletes_first) -> tuple[dict[str, Change], list[Operation]]:
    """`pulumi up` of the program run `goal` on `state`: every resource's Change and the operations in the engine's
    order. `replace`: `--replace` (resource names); `targets`: `--target` (with `replace`, `--target-replace`).
    `dropped`: what a refresh removed from state (a resource created in its place has new values)."""
    gen = _Generator(_Graph(state), set(replace), set(targets) if targets is not None else None,
                     {r.urn: r for r in dropped}, deletes_first)
    for r in dependency_order(sorted(goal, key=lambda r: r.urn), with_parent=True):
        gen.register(r)
    gen.generate_deletes()
    return gen.changes, gen.ops


def plan_destroy(state: Sequence[Resource]) -> tuple[dict[str, Change], list[Operation]]:
    """`pulumi destroy`: the program does not run (unless --run-program); every resource in state is deleted, in
    groups, and every one of them is in sg.deletes before any applies."""
    gen = _Generator(_Graph(state), set(), None, {}, _deletes_first)
    gen.generate_deletes(reason_removed=R_DESTROY)
    return gen.changes, gen.ops


# --- what the operations do on the machines -------------------------------------------------------------------------
@dataclass
class Machine:
    node: str
    instance_urn: str
    instance_id: str          # the id in state ("" for one this run made: AWS gives it a new one)
    new: bool                 # made by this run
    running: bool = True


class Machines:
    """The nodes' machines as AWS has them while the run goes: the state's instances (less those gone out of band),
    replaced and added by the run's instance operations."""

    def __init__(self, state: Sequence[Resource], goal: Sequence[Resource], gone: Iterable[str] = ()):
        gone = set(gone)
        self.by_node: dict[str, Machine] = {}
        self.node_of_urn: dict[str, str] = {}
        self.address: dict[str, str] = {}
        for r in [*state, *goal]:
            if r.type == INSTANCE and (node := node_name(r)):
                self.node_of_urn[r.urn] = node
                for ip in (r.inputs.get("privateIp"), r.outputs.get("publicIp")):
                    if ip:
                        self.address[ip] = node
        for r in state:
            if r.type == INSTANCE and (node := node_name(r)):
                self.by_node[node] = Machine(node, r.urn, r.id, new=False, running=r.name not in gone)

    def apply(self, op: Operation) -> None:
        c = op.change
        if c.type != INSTANCE or c.urn not in self.node_of_urn:
            return
        node = self.node_of_urn[c.urn]
        if op.action == "delete" and node in self.by_node and self.by_node[node].instance_urn == c.urn:
            self.by_node[node].running = False
        elif op.action == "create":
            self.by_node[node] = Machine(node, c.urn, "", new=True)

    def running(self, node: str | None) -> bool:
        return node is not None and node in self.by_node and self.by_node[node].running

    def host_of(self, r: Resource) -> tuple[str | None, str | None]:
        """The node a command dials, and the bastion it dials through (private topology)."""
        conn = r.inputs.get("connection") or {}
        host = self.address.get(conn.get("host", ""))
        if host is None and (m := STEP_NAME.match(r.name)):
            host = m.group("host")
        proxy = (conn.get("proxy") or {}).get("host")
        return host, self.address.get(proxy) if proxy else None

    def acts_on(self, text: str, host: str | None) -> tuple[tuple[str, str], ...]:
        """The machines a delete command acts on: every node it names (but its own host), as that node's machine is
        now. A command that also names an instance id acts only while that instance is the node's machine (the
        node's annotation is checked against it): on any other machine it does nothing."""
        ids = set(INSTANCE_ID.findall(text))
        found = []
        for node in sorted(set(NODE_NAME.findall(text)) - {host}):
            m = self.by_node.get(node)
            if m is None or not m.running:
                found.append((node, "no running machine"))
            elif ids and (m.new or m.instance_id not in ids):
                found.append((node, "none: the instance it names is not this machine"))
            else:
                found.append((node, "new machine" if m.new else "old machine"))
        return tuple(found)


def node_name(instance: Resource) -> str | None:
    m = re.search(r"^hostname: (\S+)$", instance.inputs.get("userData", "") or "", re.M)
    return m.group(1) if m else None


def execute(ops: list[Operation], machines: Machines) -> Operation | None:
    """Play the operations in order against the machines: decide, for each remote command, whether it dials and
    what it acts on. Returns the first failed operation. In the program phase the run stops there; in the delete
    phase the groups go on, less whatever the failed one depends on (deployment_executor.go performPostSteps
    514-548)."""
    failed: Operation | None = None
    kept: set[str] = set()           # resources a failed delete still needs
    for op in ops:
        if failed is not None and (failed.phase == PROGRAM or op.change.urn in kept):
            op.status = "not reached"
            continue
        if op.action == "delete" and op.change.before.retain_on_delete:
            op.status = "retained"      # dropped from state, left in the cloud (step.go DeleteStep.Apply 661-662)
            continue
        if op.change.type == REMOTE:
            op.command = _command_run(op, op.deletes_at_apply, machines)
            if op.command.outcome == FAILS:
                op.status = "failed"
                if failed is None:
                    failed = op
                kept |= _transitive_dependencies(op.change.before, ops)
                continue
        machines.apply(op)
    return failed


def _transitive_dependencies(r: Resource, ops: list[Operation]) -> set[str]:
    by_urn = {op.change.urn: op.change.before for op in ops if op.change.before is not None}
    found, stack = set(), [r]
    while stack:
        for urn in _Graph.edges(stack.pop(), with_parent=False):
            if urn not in found and urn in by_urn:
                found.add(urn)
                stack.append(by_urn[urn])
    return found


def _command_run(op: Operation, deletes: frozenset[str], machines: Machines) -> CommandRun:
    r = op.change.before if op.action == "delete" else op.change.after
    host, bastion = machines.host_of(r)
    reachable = machines.running(host) and (bastion is None or machines.running(bastion))
    dial = f"dials {host}" + (f" through {bastion}" if bastion else "")
    if op.action != "delete":
        if not reachable:
            return CommandRun(host, FAILS, why=f"{dial}, whose machine is not running")
        return CommandRun(host, RUNS, why=f"runs its script on {host}")
    text = r.inputs.get("delete")
    if not text:
        return CommandRun(host, NO_COMMAND, why="no delete command: the provider dials nothing")
    if r.deleted_with and r.deleted_with in deletes:
        return CommandRun(host, SKIPPED, why="its deletedWith resource is deleted in this run (step.go 663)")
    if not reachable:
        timeout = r.custom_timeouts.get("delete", "the dial budget")
        return CommandRun(host, FAILS, why=f"{dial}, whose machine is not running: the delete fails after {timeout}")
    return CommandRun(host, RUNS, machines.acts_on(text, host), why=f"runs its delete command on {host}")
