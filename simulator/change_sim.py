"""Play a setting change the way `pulumi up` would play it on a running stack, and replay its AWS operations.

`simulate(before, after, stack=...)` runs the program under mocks for the stack as it is (`before` config) and as it
will be (`after` config), with shared key material so that equal inputs give equal keys and certificates, then:

1. matches resources by URN and classifies each: created, deleted, unchanged, updated, or replaced. A resource is
   replaced when an input that forces replacement changed (infra/lifecycle.py, with sources), including when it
   holds a value that a replaced resource upstream will give anew (an instance id, an ARN, a command's id, a key
   name the provider generates): the mocks hand out the same ids on both runs, the real providers do not.
2. orders the operations as the engine does: creates, updates and replacements in dependency order; a
   replacement creates the new resource before deleting the old one unless it is delete-first (the resource's
   `deleteBeforeReplace` option, or a name the program set itself); a delete-first replacement first deletes the
   resources that depend on it and are replaced too; deletes of removed resources and of old halves of create-first
   replacements come last, in reverse dependency order.
3. replays those operations into moto on top of the "before" stack (simulator/aws_replay.py), so that AWS's
   own refusals surface: an address in use, a name taken, a name too long, a volume that cannot shrink.

A test can mark resources replaced that the settings alone would not (`force_replace`), as `pulumi up
--target-replace` or a node lost out of band would.

Limits: a value the program hashes (a files fingerprint) follows changes of value only, not a renewal it cannot
see under mocks (the mocks give a replaced resource the same outputs); ids reach triggers directly, so a renewed
id is followed. Updates reach moto only where they bear on addresses, names, routes, rules or targets.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from infra.lifecycle import RULES, UPDATE_CHANGES_OUTPUTS, changed_paths, replacing_paths
from infra.settings import SettingsError
from simulator.aws_replay import AwsReplay, dependency_edges, dependency_order
from simulator.program import ClusterMocks, ProgramRun, Resource, run_program

CREATED, DELETED, UNCHANGED, UPDATED, REPLACED = "created", "deleted", "unchanged", "updated", "replaced"
# A remote step's name is "<node>-<step>"; cluster-level steps run on a node too.
STEP_NAME = re.compile(r"^(?P<host>(?:etcd|controller|worker|bastion)-\d+)-(?P<step>.+)$")
NODE_NAME = re.compile(r"\b(etcd|controller|worker)-\d+\b")


@dataclass
class Change:
    urn: str
    type: str
    name: str
    kind: str
    before: Resource | None
    after: Resource | None
    changed: list[str] = field(default_factory=list)     # input paths that differ (values or new upstream ids)
    forcing: list[str] = field(default_factory=list)     # those of them that force a replacement
    delete_first: bool = False

    @property
    def resource(self) -> Resource:
        return self.after or self.before

    @property
    def host(self) -> str | None:
        m = STEP_NAME.match(self.name)
        return m.group("host") if m and self.type == "command:remote:Command" else None

    @property
    def step(self) -> str | None:
        m = STEP_NAME.match(self.name)
        return m.group("step") if m and self.type == "command:remote:Command" else None

    @property
    def reruns(self) -> bool:
        """A step runs its script again: when created or replaced, and, having no `update` command, on update."""
        return self.type.startswith("command:") and self.kind in (CREATED, REPLACED, UPDATED)


@dataclass(frozen=True)
class Operation:
    action: str            # create | update | delete
    change: Change
    old_half: bool = False  # a delete of the old half of a replacement


@dataclass
class ChangePlan:
    before: ProgramRun
    after: ProgramRun
    changes: dict[str, Change]
    operations: list[Operation]
    key_material: dict = field(default_factory=dict, repr=False)

    def of_kind(self, kind: str, type_: str | None = None) -> list[Change]:
        return [c for c in self.changes.values() if c.kind == kind and (type_ is None or c.type == type_)]

    def named(self, name: str, type_: str | None = None) -> Change:
        found = [c for c in self.changes.values() if c.name == name and (type_ is None or c.type == type_)]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def steps(self, host: str | None = None) -> list[Change]:
        return [c for c in self.changes.values() if c.step and (host is None or c.host == host)]

    def replaced_nodes(self) -> list[str]:
        """Nodes whose instance is replaced (the node name is the instance's `Name` tag minus the cluster)."""
        return sorted(_node_name(c.resource) for c in self.of_kind(REPLACED, "aws:ec2/instance:Instance"))

    def created_nodes(self) -> list[str]:
        return sorted(_node_name(c.resource) for c in self.of_kind(CREATED, "aws:ec2/instance:Instance"))


def _node_name(instance: Resource) -> str:
    return re.search(r"^hostname: (\S+)$", instance.inputs.get("userData", ""), re.M).group(1)


def _edges(r: Resource) -> set[str]:
    return dependency_edges(r, with_parent=True)


def _leaf_paths(value: Any, path: str, wanted: set[str]) -> Iterable[str]:
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
    """The values a resource's replacement gives anew: its id and the outputs its provider generates (a name the
    provider generates, but not one the program set)."""
    rule = RULES.get(r.type)
    values = {r.id}
    for key in rule.new_on_create if rule else ():
        if rule.autoname and key == rule.autoname[0] and r.inputs.get(key):
            continue
        value = r.outputs.get(key)
        if isinstance(value, str) and value:
            values.add(value)
    return values


def _deletes_first(r: Resource) -> bool:
    rule = RULES.get(r.type)
    explicit_name = bool(rule and rule.autoname and r.inputs.get(rule.autoname[0]))
    return r.delete_before_replace or explicit_name


def classify(before: ProgramRun, after: ProgramRun, force_replace: Iterable[str] = ()) -> dict[str, Change]:
    forced = set(force_replace)
    old = {r.urn: r for r in before.resources}
    changes: dict[str, Change] = {}
    renewed: set[str] = set()       # values that replaced (or restarted) resources upstream will no longer have
    for r in dependency_order(after.resources, with_parent=True):
        if r.urn not in old:
            changes[r.urn] = Change(r.urn, r.type, r.name, CREATED, None, r)
            continue
        b = old[r.urn]
        if not r.custom:
            changes[r.urn] = Change(r.urn, r.type, r.name, UNCHANGED, b, r)
            continue
        paths = [p for p in changed_paths(b.inputs, r.inputs)
                 if p.split(".", 1)[0] not in r.ignore_changes and p not in r.ignore_changes]
        paths += [p for p in _leaf_paths(r.inputs, "", renewed) if p not in paths]
        forcing = replacing_paths(r.type, paths, b.inputs, r.inputs)
        # The engine also replaces on the paths of the resource's own `replaceOnChanges` option.
        forcing += [p for p in paths if p not in forcing and any(
            p.split(".", 1)[0] == option.split("[", 1)[0].split(".", 1)[0] for option in r.replace_on_changes)]
        if r.name in forced:
            forcing = forcing or ["(replaced by request)"]
        kind = REPLACED if forcing else UPDATED if paths else UNCHANGED
        changes[r.urn] = Change(r.urn, r.type, r.name, kind, b, r, paths, forcing,
                                delete_first=kind == REPLACED and _deletes_first(r))
        if kind == REPLACED:
            renewed |= _new_on_replace(b)
        elif kind == UPDATED:
            for path, outputs in UPDATE_CHANGES_OUTPUTS.get(r.type, {}).items():
                if path in paths:
                    renewed |= {b.outputs[o] for o in outputs if b.outputs.get(o)}
    for b in before.resources:
        if b.urn not in changes:
            changes[b.urn] = Change(b.urn, b.type, b.name, DELETED, b, None)
    return changes


def order_operations(before: ProgramRun, after: ProgramRun, changes: dict[str, Change]) -> list[Operation]:
    ops: list[Operation] = []
    deleted_early: set[str] = set()
    dependents: dict[str, set[str]] = {}
    for r in before.resources:
        for urn in _edges(r):
            dependents.setdefault(urn, set()).add(r.urn)

    def replaced_dependents(urn: str) -> set[str]:
        found, stack = set(), [urn]
        while stack:
            for d in dependents.get(stack.pop(), ()):
                if d not in found and changes[d].kind == REPLACED:
                    found.add(d)
                    stack.append(d)
        return found

    before_order = [r.urn for r in dependency_order(before.resources, with_parent=True)]
    for r in dependency_order(after.resources, with_parent=True):
        c = changes[r.urn]
        if c.kind == CREATED:
            ops.append(Operation("create", c))
        elif c.kind == UPDATED:
            ops.append(Operation("update", c))
        elif c.kind == REPLACED:
            if c.delete_first:
                # The engine deletes what depends on it and is replaced as well, dependents first.
                first = replaced_dependents(r.urn) - deleted_early
                for urn in reversed(before_order):
                    if urn in first:
                        ops.append(Operation("delete", changes[urn], old_half=True))
                        deleted_early.add(urn)
                if r.urn not in deleted_early:
                    ops.append(Operation("delete", c, old_half=True))
                    deleted_early.add(r.urn)
            ops.append(Operation("create", c))
    for urn in reversed(before_order):
        c = changes[urn]
        if c.kind == DELETED or (c.kind == REPLACED and urn not in deleted_early):
            ops.append(Operation("delete", c, old_half=c.kind == REPLACED))
    return ops


def replay_operations(plan: ChangePlan) -> AwsReplay:
    """Create the "before" stack in moto, then play the plan's AWS operations on it. Use inside `mock_aws()`."""
    aws = AwsReplay()
    aws.replay(plan.before)
    for op in plan.operations:
        c = op.change
        if not c.type.startswith("aws:"):
            continue
        if op.action == "create":
            aws.create(c.after)
        elif op.action == "update":
            aws.update(c.before, c.after, c.changed)
        else:
            aws.delete(c.before)
    return aws


def simulate(before: dict[str, Any] | ChangePlan, after: dict[str, Any], *, stack: str = "dev",
             force_replace: Iterable[str] = ()) -> ChangePlan:
    """Plan `pulumi up` of the `after` config on a stack deployed with the `before` config, or deployed by the
    plan `before` (a change after a change)."""
    if isinstance(before, ChangePlan):
        key_material, first = before.key_material, before.after
    else:
        key_material = {}
        first = run_program(before, stack=stack, mocks=ClusterMocks(key_material=key_material))
    second = run_program(after, stack=stack, mocks=ClusterMocks(key_material=key_material, existing=first))
    changes = classify(first, second, force_replace)
    return ChangePlan(first, second, changes, order_operations(first, second, changes), key_material)


# --- what a change does, for people -------------------------------------------------------------------------------
def _count(items: Iterable[str]) -> str:
    return ", ".join(f"{n} {name}" if n > 1 else name for name, n in sorted(Counter(items).items()))


def summarize(plan: ChangePlan) -> dict[str, str]:
    """One line per column of the README table: AWS and PKI resources by outcome, steps that run again, and
    services restarted (a `start-*` step replaced; an updated one restarts nothing when its service's files and
    binary are unchanged)."""
    def kinds(kind: str) -> str:
        return _count(short(c.type) for c in plan.of_kind(kind) if c.resource.custom
                      and not c.type.startswith("command:"))

    def short(type_: str) -> str:
        return type_.split(":")[-1]

    def step(c: Change) -> str:
        # A step one node runs for each other node (drain-worker-3 on controller-0) is counted as one kind.
        return "`" + NODE_NAME.sub(r"\1-N", c.step) + "`"

    aws = "; ".join(f"{kind}: {text}" for kind in (CREATED, REPLACED, UPDATED, DELETED) if (text := kinds(kind)))
    reruns = [c for c in plan.changes.values() if c.reruns and c.step]
    cluster = next(c.name for c in plan.changes.values() if c.type == "aws:ec2/vpc:Vpc").removesuffix("-vpc")
    local = [c.name.removeprefix(f"{cluster}-") for c in plan.changes.values()
             if c.reruns and c.type == "command:local:Command"]
    steps = _count(step(c) for c in reruns if c.kind != UPDATED)
    connection_only = _count(step(c) for c in reruns if c.kind == UPDATED)
    # Delete-time commands run when their step goes (removed, or the old half of a replacement).
    removals = _count(step(op.change) for op in plan.operations
                      if op.action == "delete" and op.change.step and "delete" in op.change.before.inputs)
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
    }


# --- the changes the tests play, and the README table made from them -------------------------------------------
ADMIN_CIDRS = ["100.64.7.0/24"]
BASE = {"adminCidrs": ADMIN_CIDRS, "etcd": {"count": 1}, "controllers": {"count": 1}, "workers": {"count": 3}}
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv9aVfnN0d0bw0FWxT2XjvE8x8VpN7B0zEXlQ0cB3vS you@host"
# A patch release with checksums of its own (made up: the simulator downloads nothing).
KUBERNETES_PATCH = {"kubernetes": {"version": "1.37.3",
                                    "kubernetes-server": {"sha512": {"amd64": "a1" * 64}},
                                    "kubernetes-node": {"sha512": {"amd64": "b2" * 64}}}}


def _with(**settings: Any) -> dict[str, Any]:
    return {**BASE, **settings}


@dataclass(frozen=True)
class ChangeCase:
    id: str
    label: str                   # the README's words for the change
    before: dict[str, Any]
    after: dict[str, Any]
    force_replace: tuple[str, ...] = ()
    after_case: str | None = None   # play on top of this case's result instead of `before`


CHANGE_CASES: tuple[ChangeCase, ...] = (
    ChangeCase("ssh-key", "`sshPublicKey` set after the first up", BASE,
               _with(sshPublicKey=SSH_PUBLIC_KEY)),
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
    ChangeCase("zones-moving-etcd", "`zones` 1 → 3 with 3 etcd members", _with(etcd={"count": 3}),
               _with(etcd={"count": 3}, zones=3)),
    ChangeCase("etcd-up", "`etcd.count` 3 → 5", _with(etcd={"count": 3}), _with(etcd={"count": 5})),
    ChangeCase("etcd-down", "`etcd.count` 5 → 3", {}, _with(etcd={"count": 3}), after_case="etcd-up"),
    ChangeCase("replace-etcd", "an etcd member replaced at the same address (of 3)", _with(etcd={"count": 3}),
               _with(etcd={"count": 3}), force_replace=("k8s-dev-etcd-1",)),
    ChangeCase("etcd-too-many", "`etcd.count` 3 → 7", _with(etcd={"count": 3}), _with(etcd={"count": 7})),
    ChangeCase("topology", "`topology` public → private", BASE, _with(topology="private")),
    ChangeCase("bastion-type", "`bastionInstanceType` t3.micro → t3.small (private topology)",
               _with(topology="private"), _with(topology="private", bastionInstanceType="t3.small")),
    ChangeCase("replace-worker", "a worker replaced at the same address (`pulumi up --target-replace`, or lost and "
               "recreated)", BASE, BASE, force_replace=("k8s-dev-worker-1",)),
    ChangeCase("architecture", "`architecture` amd64 → arm64", BASE,
               _with(architecture="arm64", etcd={"count": 1, "instanceType": "t4g.small"},
                     controllers={"count": 1, "instanceType": "t4g.medium"},
                     workers={"count": 3, "instanceType": "t4g.medium"})),
    ChangeCase("root-volume-down", "`workers.rootVolumeGb` 30 → 20", BASE,
               _with(workers={"count": 3, "rootVolumeGb": 20})),
)
CASES_BY_ID = {c.id: c for c in CHANGE_CASES}
_PLANS: dict[str, ChangePlan | Exception] = {}
_DEPLOYED: dict[str, ChangePlan] = {}
_KEY_MATERIAL: dict = {}    # shared by every case: equal inputs, equal keys and certificates


def deployed(config: dict[str, Any]) -> ChangePlan:
    """A stack deployed with this config and left alone since (a plan that changes nothing), made once."""
    import json

    key = json.dumps(config, sort_keys=True)
    if key not in _DEPLOYED:
        run = run_program(config, mocks=ClusterMocks(key_material=_KEY_MATERIAL))
        _DEPLOYED[key] = ChangePlan(run, run, {}, [], _KEY_MATERIAL)
    return _DEPLOYED[key]


def plan_case(case_id: str) -> ChangePlan:
    """The plan of a case, made once per process; raises what the program raised (a refused change)."""
    if case_id not in _PLANS:
        case = CASES_BY_ID[case_id]
        before = plan_case(case.after_case) if case.after_case else deployed(case.before)
        try:
            _PLANS[case_id] = simulate(before, case.after, force_replace=case.force_replace)
        except SettingsError as refused:   # the program refused the change: that is the case's outcome
            _PLANS[case_id] = refused
    outcome = _PLANS[case_id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


CHANGES_HEADER = ("| change | AWS and PKI resources | steps that run again | services restarted |\n"
                  "|---|---|---|---|\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_changes_table() -> str:
    """The README's table of setting changes: every case, as the simulator played it."""
    rows = []
    for case in CHANGE_CASES:
        try:
            s = summarize(plan_case(case.id))
            rows.append(f"| {case.label} | {_cell(s['aws'])} | {_cell(s['steps'])} | {_cell(s['restarted'])} |")
        except SettingsError as refused:
            message = str(refused).splitlines()[0]
            rows.append(f"| {case.label} | **refused** before anything is created: {_cell(message)} | none | none |")
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
    return sorted({sdk_name(r.type) for run in runs for r in run.resources if r.custom and _deletes_first(r)})


README_SECTION = "## Changing a running cluster"


def render_readme_section() -> str:
    return f"""{README_SECTION}

`pulumi up` after a setting change updates in place what it can, replaces what it must, and refuses before anything
is created what it cannot apply. Nodes keep fixed private addresses, so a node whose instance must be replaced is
deleted first and created again at the same address; every step on it runs again, because each step's triggers
hold its instance's id. A change of connection alone (a new public address after a stop and start) updates the
steps: they run again, and a `start-*` step restarts its service only when the service's files or binary changed.

What each change does, as the change simulator (`simulator/change_sim.py`) plays it on a running stack of
1 etcd member, 1 controller and 3 workers: the program is run before and after the change, every resource is
classified with the table further down, the operations are ordered as the engine orders them and replayed into
moto on top of the running stack, which refuses any address or name collision. Counts grow with the node counts.
`tests/unit/test_change_simulator.py` checks that this section is what the simulator prints
(`python -m simulator.change_sim --readme` rewrites it).

{render_changes_table()}
"Updated" steps run their script again over the new connection; "deleted (runs its delete command first)" are
steps whose delete command does the work before what they depend on goes (a worker drained and its Node deleted
before its instance, an etcd member removed before its machine); "services restarted" are the `start-*` steps
that are replaced. A step one node runs for each other node is counted by kind (`drain-worker-N`). Replaced delete-first: {", ".join(f"`{t}`" for t in delete_first_types())} (the others are
created before the old one is deleted).

What forces a replacement, per resource type (`infra/lifecycle.py`; every other input change is an update):

{render_replace_rules()}"""


def write_readme_section(readme_path: str) -> None:
    with open(readme_path) as f:
        text = f.read()
    head, rest = text.split(README_SECTION, 1)
    tail = rest.split("\n## ", 1)[1]
    section = render_readme_section()    # before the file is opened for writing: a failure leaves it whole
    with open(readme_path, "w") as f:
        f.write(head + section + "\n## " + tail)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--readme"]:
        write_readme_section(str(Path(__file__).resolve().parents[1] / "docs" / "operations.md"))
    else:
        print(render_readme_section())
