"""Replay the remote steps a program run declared, over SSH, the way pulumi-command would run them.

A step runs once every step it depends on has finished, and independent steps run at the same time (etcd members
must start together: each waits for a quorum). Like Pulumi, the replayer keeps state: a step whose inputs
(command, stdin, triggers, connection) are the same as last time does not run again. Like pulumi-command, it gives
a step a new id whenever a change of its triggers replaces it (an update of its command, stdin or connection keeps
the id), and a step whose triggers hold another step's id runs again when that id changed: an API server's
readiness check after its restart, say. Steps whose binaries or services cannot exist on this machine are listed
as not replayed, each with its reason; a step no rule names is replayed, so nothing new is ever skipped silently.
Deployer-side steps (`command:local:Command`) run in the lab's deployer namespace.

Like the engine, the replayer records each step as it completes (a replay killed part way has kept what finished),
and a step with a delete command that a change of triggers replaced keeps its old delete command, run when the
update ends (the old half of a create-first replacement, step_generator.go GenerateDeletes 2390-2423).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from simulator.program import ProgramRun, Resource

NOT_BUILT = "the lab does not build {component}, so its mirror does not serve it"
# (step-name suffix pattern, reason); first match wins. Install steps are decided by what the mirror serves.
NOT_REPLAYED: tuple[tuple[str, str], ...] = (
    (r"-api-through-load-balancer$", "checks the API through the AWS network load balancer, which the lab does not "
                                     "have (on the deployer its name resolves to the first controller, so the "
                                     "check would prove nothing about a balancer)"),
)

@dataclass
class Step:
    name: str
    urn: str
    type: str
    host: str
    user: str
    private_key: str
    create: str
    stdin: str
    fingerprint: str
    dependencies: set[str]
    delete: str = ""     # what Pulumi runs when the step leaves the program (a worker's drain before its machine goes)
    triggers: str = ""   # digest of its triggers, whose change replaces it (a new id) rather than updating it
    id_refs: set[str] = field(default_factory=set)   # steps whose id its triggers hold (they are among its dependencies)


@dataclass
class Row:
    step: str
    host: str
    status: str          # replayed | unchanged | not replayed | failed | deleted
    reason: str = ""
    seconds: float = 0.0
    output: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def by_status(self, status: str) -> list[Row]:
        return [r for r in self.rows if r.status == status]

    def table(self) -> str:
        width = max(len(r.step) for r in self.rows)
        lines = [f"{'step':<{width}}  {'status':<12}  {'s':>5}  reason"]
        for r in self.rows:
            lines.append(f"{r.step:<{width}}  {r.status:<12}  {r.seconds:>5.1f}  {r.reason}")
        counts = {s: len(self.by_status(s)) for s in ("replayed", "unchanged", "not replayed", "failed", "deleted")}
        lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
        return "\n".join(lines)


class ReplayError(AssertionError):
    pass


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(r: Resource) -> str:
    inputs = {k: r.inputs.get(k) for k in ("create", "stdin", "triggers")}
    conn = r.inputs.get("connection", {})
    inputs["connection"] = {k: conn.get(k) for k in ("host", "user", "port")}
    return _digest(inputs)


def collect(run: ProgramRun) -> list[Step]:
    """Every command the program declared, in registration order, with the commands each one waits for."""
    commands = [r for r in run.resources if r.type in ("command:remote:Command", "command:local:Command")]
    urns = {r.urn for r in commands}
    steps = []
    for r in commands:
        direct = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        conn = r.inputs.get("connection", {})
        triggers = json.dumps(r.inputs.get("triggers") or [], sort_keys=True, default=str)
        # Under the mocks a step's id is the same on every run; which ids its triggers hold is what matters here.
        id_refs = {c.urn for c in commands if c.urn != r.urn and c.id and json.dumps(c.id) in triggers}
        steps.append(Step(name=r.name, urn=r.urn, type=r.type, host=conn.get("host", "deployer"),
                          user=conn.get("user", ""), private_key=conn.get("privateKey", ""),
                          create=r.inputs.get("create", ""), stdin=r.inputs.get("stdin", ""),
                          fingerprint=_fingerprint(r), dependencies=direct & urns,
                          delete=r.inputs.get("delete") or "", triggers=_digest(triggers), id_refs=id_refs))
    return steps


def not_replayed_reason(step: Step, served: set[str] | frozenset[str] = frozenset()) -> str | None:
    """None when the step is replayed; `served`: the components the lab's mirror serves."""
    install = re.search(r"-install-(.+)$", step.name)
    if install and install.group(1) not in served:
        return NOT_BUILT.format(component=install.group(1))
    for pattern, reason in NOT_REPLAYED:
        if re.search(pattern, step.name):
            return reason
    return None


# ssh(host, user, private_key, command, stdin) -> CompletedProcess
SshRunner = Callable[[str, str, str, str, str], subprocess.CompletedProcess]
# local(command, stdin) -> CompletedProcess: a command:local:Command, run where the deployer would run it
LocalRunner = Callable[[str, str], subprocess.CompletedProcess]


def _no_deployer(command: str, stdin: str) -> subprocess.CompletedProcess:
    raise ReplayError(f"a deployer-side step needs a local runner: {command}")


class Replayer:
    def __init__(self, ssh: SshRunner, *, local: LocalRunner = _no_deployer, served: set[str] = frozenset(),
                 workers: int = 16, gate_wait_seconds: float = 90, on_step: Callable[[Row], None] | None = None):
        self.ssh = ssh
        self.local = local
        self.served = set(served)
        self.state: dict[str, str] = {}     # urn -> fingerprint of the inputs it last ran with (Pulumi's state)
        # urn -> {"triggers": what its triggers were, with the ids they named, "id": its id}: a step gets a new id
        # when it is created or replaced (pulumi-command: `triggers` is replaceOnChanges; ids are new random hex).
        self.ids: dict[str, dict[str, str]] = {}
        # urn -> how to run the delete command of a step that has one (name, host, user, private key, command), as
        # Pulumi keeps a resource's last inputs in its state to delete it after the program stopped declaring it.
        self.deletes: dict[str, dict[str, str]] = {}
        # The delete commands of steps replaced since (their triggers changed): run when the update ends.
        self.old_halves: list[dict[str, str]] = []
        # Called with each step's row as it starts ("running") and once it is recorded: the lab saves its state
        # then, as the engine writes its snapshot after each step.
        self.on_step = on_step or (lambda row: None)
        self.workers = workers
        self.gate_wait_seconds = gate_wait_seconds

    def _run(self, step: Step) -> Row:
        started = time.monotonic()
        # pulumi-command retries the dial of a host that is not up yet (dialErrorLimit); so does the gate here.
        deadline = started + (self.gate_wait_seconds if step.name.endswith("-ready") else 0)
        while True:
            if step.type == "command:local:Command":
                result = self.local(step.create, step.stdin)
                break
            result = self.ssh(step.host, step.user, step.private_key, step.create, step.stdin)
            if result.returncode != 255 or time.monotonic() >= deadline:    # 255: ssh could not connect
                break
            time.sleep(1)
        output = result.stdout + result.stderr
        row = Row(step.name, step.host, "replayed", seconds=time.monotonic() - started, output=output)
        if result.returncode != 0:
            row.status = "failed"
            row.reason = f"exit {result.returncode}"
        return row

    def replay(self, steps: list[Step], *, force: Callable[[Step], bool] = lambda s: False) -> Report:
        """Run what changed since the last replay (everything, the first time), honouring dependencies.
        `force` re-runs matching steps even when unchanged (to prove a script itself is idempotent).
        Raises ReplayError naming the host, the step and its output when a step fails."""
        rows: dict[str, Row] = {}
        done: set[str] = set()
        pending = {s.urn: s for s in steps}
        failure: Row | None = None
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            running: dict[concurrent.futures.Future, Step] = {}
            while pending or running:
                for urn, step in list(pending.items()):
                    if failure or not step.dependencies <= done:
                        continue
                    del pending[urn]
                    reason = not_replayed_reason(step, self.served)
                    if reason:
                        rows[urn] = Row(step.name, step.host, "not replayed", reason)
                        done.add(urn)
                    elif self.state.get(urn) == self._inputs(step) and not force(step):
                        rows[urn] = Row(step.name, step.host, "unchanged")
                        done.add(urn)
                    else:
                        self.on_step(Row(step.name, step.host, "running"))
                        running[pool.submit(self._run, step)] = step
                if not running:
                    if pending and not failure:
                        raise ReplayError(f"steps wait for steps that never run: {sorted(s.name for s in pending.values())}")
                    break
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    row = future.result()
                    rows[step.urn] = row
                    if row.status == "failed":
                        failure = failure or row
                    else:
                        triggers = self._triggers(step)
                        if self.ids.get(step.urn, {}).get("triggers") != triggers:    # created or replaced
                            if step.urn in self.deletes:        # replaced: its old self goes at the end
                                self.old_halves.append(self.deletes.pop(step.urn))
                            self.ids[step.urn] = {"triggers": triggers, "id": uuid.uuid4().hex[:16]}
                        self.state[step.urn] = self._inputs(step)
                        if step.delete:
                            self.deletes[step.urn] = {"name": step.name, "host": step.host, "user": step.user,
                                                      "private_key": step.private_key, "delete": step.delete}
                        done.add(step.urn)
                    self.on_step(row)
        report = Report([rows[s.urn] for s in steps if s.urn in rows])
        if failure:
            raise ReplayError(f"step {failure.step} failed on {failure.host} ({failure.reason}):\n{failure.output}")
        return report

    def _triggers(self, step: Step) -> str:
        """Its triggers as the engine compares them: with the current id of every step they name."""
        return _digest([step.triggers, sorted(self.ids.get(u, {}).get("id", "") for u in step.id_refs)])

    def _inputs(self, step: Step) -> str:
        return _digest([step.fingerprint, self._triggers(step)])

    def delete_absent(self, steps: list[Step]) -> Report:
        """What Pulumi does at the end of an update: run the delete commands of the old halves of replaced steps,
        then of the steps the program no longer declares (the whole program, `steps`), the latest created first,
        and forget them. A removed worker's removal step drains it here, before its machine is powered off. Raises
        ReplayError when one fails."""
        declared = {s.urn for s in steps}
        rows = []
        while self.old_halves:
            rows.append(self._delete(self.old_halves[0]))
            self.old_halves.pop(0)
            self.on_step(rows[-1])
        for urn in reversed([u for u in self.state if u not in declared]):
            recorded = self.deletes.get(urn)
            if recorded:
                rows.append(self._delete(recorded))
            self.state.pop(urn)
            self.deletes.pop(urn, None)
            self.ids.pop(urn, None)
            self.on_step(rows[-1] if recorded else Row("", "", "deleted"))
        return Report(rows)

    def _delete(self, recorded: dict[str, str]) -> Row:
        started = time.monotonic()
        result = self.ssh(recorded["host"], recorded["user"], recorded["private_key"], recorded["delete"], "")
        row = Row(recorded["name"], recorded["host"], "deleted", seconds=time.monotonic() - started,
                  output=result.stdout + result.stderr)
        if result.returncode != 0:    # kept in the state, as Pulumi keeps a resource it could not delete
            raise ReplayError(f"the delete command of step {row.step} failed on {row.host} "
                              f"(exit {result.returncode}):\n{row.output}")
        return row
