"""The engine's rules (simulator/engine.py) on small hand-made states, one rule per test: what a delete-first
replacement deletes first and why, what deletedWith skips, when old halves go, in which order deletes run, what a
targeted replace leaves alone, what a refresh drops, and what a destroy dials."""

from __future__ import annotations

from simulator import engine
from simulator.engine import (DELETES, FAILS, NO_COMMAND, PROGRAM, REPLACED, RUNS, SKIPPED, UNCHANGED, UPDATED,
                              Machines)
from simulator.program import Resource

INSTANCE, ROUTE, REMOTE = "aws:ec2/instance:Instance", "aws:ec2/route:Route", "command:remote:Command"


def urn(name: str, type_: str) -> str:
    return f"urn:pulumi:dev::p::{type_}::{name}"


def res(type_: str, name: str, inputs: dict | None = None, *, deps: dict[str, list[Resource]] | None = None,
        depends_on: list[Resource] = (), deleted_with: Resource | None = None, rid: str | None = None,
        outputs: dict | None = None, **options) -> Resource:
    inputs = dict(inputs or {})
    if type_ == REMOTE:
        options.setdefault("replace_on_changes", ["triggers[*]"])
    prop = {k: [d.urn for d in v] for k, v in (deps or {}).items()}
    return Resource(type=type_, name=name, urn=urn(name, type_), id=rid or f"{name}-id", inputs=inputs,
                    secret_inputs=set(), outputs={**inputs, **(outputs or {})}, parent="",
                    dependencies=sorted({u for us in prop.values() for u in us} | {d.urn for d in depends_on}),
                    property_dependencies=prop, deleted_with=deleted_with.urn if deleted_with else "",
                    additional_secret_outputs=[], custom_timeouts={}, ignore_changes=[], custom=True, **options)


def node(name: str, ip: str) -> Resource:
    return res(INSTANCE, f"k8s-{name}", {"privateIp": ip, "userData": f"hostname: {name}\n"}, rid=f"i-{ip[-2:]}0000000",
               outputs={"publicIp": "", "primaryNetworkInterfaceId": f"eni-{name}"}, delete_before_replace=True)


def step(host: Resource, host_name: str, name: str, *, triggers: list, trigger_deps: list[Resource] = (),
         delete: str | None = None, deleted_with: Resource | None = None, **kw) -> Resource:
    inputs = {"triggers": triggers, "connection": {"host": host.inputs["privateIp"]}, "stdin": name}
    if delete:
        inputs["delete"] = delete
    return res(REMOTE, f"{host_name}-{name}", inputs, deps={"triggers": list(trigger_deps), "connection": [host]},
               deleted_with=deleted_with or host, **kw)


def worker_state():
    """A controller and two workers; on the controller, a reader whose triggers hold both workers' ids and whose
    output gives the routes' destinations, and a removal step per worker (deletedWith the controller)."""
    controller, w0, w1 = node("controller-0", "10.0.0.20"), node("worker-0", "10.0.0.30"), node("worker-1", "10.0.0.31")
    reader = step(controller, "controller-0", "read", triggers=[w0.id, w1.id], trigger_deps=[w0, w1])
    routes = [res(ROUTE, f"route-{w.name}", {"destinationCidrBlock": f"10.200.{i}.0/24",
                                             "networkInterfaceId": w.outputs["primaryNetworkInterfaceId"]},
                  deps={"destinationCidrBlock": [reader], "networkInterfaceId": [w]}, delete_before_replace=True)
              for i, w in enumerate((w0, w1))]
    removals = [step(controller, "controller-0", f"remove-{w.name}", triggers=[w.id], trigger_deps=[w],
                     delete=f"drain {w.name.removeprefix('k8s-')}", depends_on=[w]) for w in (w0, w1)]
    own = step(w1, "worker-1", "install", triggers=["v1", w1.id], trigger_deps=[w1])
    watcher = res(REMOTE, "controller-0-watch", {"triggers": ["x"], "connection": {"host": "10.0.0.20"}},
                  depends_on=[w1], deleted_with=controller)
    return [controller, w0, w1, reader, *routes, *removals, own, watcher]


def names(ops, **where) -> list[str]:
    return [op.name for op in ops if all(getattr(op, k) == v for k, v in where.items())]


def test_a_delete_first_replacement_first_deletes_what_its_unknown_outputs_would_replace():
    state = worker_state()
    changes, ops = engine.plan_up(state, state, replace=["k8s-worker-1"])
    early = names(ops, action="delete", phase=PROGRAM)
    # the reader's triggers and, through it, every route's destination become unknown: all replaced, before the
    # instance goes; the removal of worker-1 (triggers: its id) too; what only waits for it (dependsOn) is not
    assert set(early) == {"k8s-worker-1", "controller-0-read", "route-k8s-worker-0", "route-k8s-worker-1",
                          "controller-0-remove-k8s-worker-1", "worker-1-install"}
    assert early[-1] == "k8s-worker-1"
    assert early.index("route-k8s-worker-0") < early.index("controller-0-read")
    assert changes[urn("controller-0-watch", REMOTE)].kind == UNCHANGED
    assert changes[urn("route-k8s-worker-0", ROUTE)].kind == REPLACED
    assert "calculateDependentReplacements" in changes[urn("route-k8s-worker-0", ROUTE)].reason
    # each is created again when its turn comes, whatever its known inputs say
    created = names(ops, action="create")
    assert created.index("k8s-worker-1") < created.index("controller-0-read") < created.index("route-k8s-worker-0")
    assert changes[urn("route-k8s-worker-0", ROUTE)].forcing == ["(deleted early)"]


def test_without_delete_first_only_the_known_changes_count():
    state = worker_state()
    changes, ops = engine.plan_up(state, state, replace=["k8s-worker-1"], deletes_first=lambda r: False)
    assert changes[urn("route-k8s-worker-0", ROUTE)].kind == UNCHANGED
    assert changes[urn("route-k8s-worker-1", ROUTE)].kind == UPDATED       # a new interface id: ReplaceRoute
    assert names(ops, action="delete", phase=DELETES)[-1] == "k8s-worker-1"   # the old half goes last


def test_a_delete_command_runs_unless_what_it_is_deleted_with_goes_too():
    state = worker_state()
    machines = Machines(state, state)
    changes, ops = engine.plan_up(state, state, replace=["k8s-worker-1"])
    assert engine.execute(ops, machines) is None
    removal = next(op for op in ops if op.name == "controller-0-remove-k8s-worker-1" and op.action == "delete")
    assert removal.command.outcome == RUNS and removal.command.host == "controller-0"
    assert removal.command.acts_on == (("worker-1", "old machine"),)
    install = next(op for op in ops if op.name == "worker-1-install" and op.action == "delete")
    assert install.command.outcome == NO_COMMAND
    # replacing the controller takes its removal steps with it: their drains are skipped
    changes, ops = engine.plan_up(state, state, replace=["k8s-controller-0"])
    engine.execute(ops, Machines(state, state))
    skipped = [op for op in ops if op.action == "delete" and op.command and op.command.outcome == SKIPPED]
    assert {op.name for op in skipped} == {"controller-0-remove-k8s-worker-0", "controller-0-remove-k8s-worker-1"}


def test_a_command_naming_the_instance_id_does_nothing_to_a_new_machine():
    controller, w1 = node("controller-0", "10.0.0.20"), node("worker-1", "10.0.0.31")
    removal = step(controller, "controller-0", "remove-worker-1", triggers=[w1.id], trigger_deps=[w1],
                   delete=f"drain worker-1 if it is {w1.id}", depends_on=[w1])
    machines = Machines([controller, w1], [])
    assert machines.acts_on(removal.inputs["delete"], "controller-0") == (("worker-1", "old machine"),)
    machines.apply(engine.Operation("create", engine.Change(w1.urn, INSTANCE, w1.name, REPLACED, w1, w1)))
    assert machines.acts_on(removal.inputs["delete"], "controller-0")[0][1].startswith("none")
    assert machines.acts_on("drain worker-1", "controller-0") == (("worker-1", "new machine"),)


def test_deletes_after_the_program_go_in_groups_dependents_first():
    state = worker_state()
    goal = [r for r in state if "worker-1" not in r.name and r.name != "controller-0-watch"]
    changes, ops = engine.plan_up(state, goal)
    wave = {op.name: op.wave for op in ops if op.phase == DELETES}
    assert wave["controller-0-remove-k8s-worker-1"] < wave["k8s-worker-1"]
    assert wave["worker-1-install"] < wave["k8s-worker-1"]
    assert wave["route-k8s-worker-1"] < wave["k8s-worker-1"]
    assert "controller-0-read" not in wave and "controller-0-watch" in wave


def test_a_targeted_replace_leaves_the_rest_alone_but_recreates_what_it_deleted_early():
    state = worker_state()
    goal = [res(REMOTE, r.name, {**r.inputs, "triggers": ["v2", *r.inputs["triggers"][1:]]},
                deps={"triggers": [state[2]], "connection": [state[2]]}, deleted_with=state[2])
            if r.name == "worker-1-install" else r for r in state]
    goal = [r if r.name != "controller-0-watch" else res(REMOTE, r.name, {**r.inputs, "triggers": ["y"]},
                                                            depends_on=[state[2]], deleted_with=state[0])
            for r in goal]
    changes, ops = engine.plan_up(state, goal, replace=["k8s-worker-0"], targets=["k8s-worker-0"])
    assert changes[urn("controller-0-watch", REMOTE)].kind == UNCHANGED       # changed, but not targeted
    assert changes[urn("controller-0-read", REMOTE)].kind == REPLACED         # deleted early: recreated anyway
    assert changes[urn("worker-1-install", REMOTE)].kind == UNCHANGED
    assert changes[urn("k8s-worker-0", INSTANCE)].reason.startswith("`--replace`")


def test_a_resource_deleted_with_one_replaced_create_first_is_replaced():
    a = res(REMOTE, "a", {"triggers": ["1"]})
    b = res(REMOTE, "b", {"triggers": ["x"]}, deleted_with=a)
    changes, _ = engine.plan_up([a, b], [res(REMOTE, "a", {"triggers": ["2"]}), b])
    assert changes[b.urn].kind == REPLACED and changes[b.urn].forcing == ["deletedWith"]


def test_a_refresh_drops_a_lost_instance_and_what_named_it():
    state = worker_state()
    kept, dropped = engine.refresh(state, ["k8s-worker-1"])
    assert [r.name for r in dropped] == ["k8s-worker-1"]
    install = next(r for r in kept if r.name == "worker-1-install")
    assert install.deleted_with == "" and urn("k8s-worker-1", INSTANCE) not in install.dependencies
    assert install.property_dependencies["triggers"] == []
    # created again, the instance is new: what holds its old id is replaced, create-first, old halves last
    changes, ops = engine.plan_up(kept, state, dropped=dropped)
    assert changes[urn("k8s-worker-1", INSTANCE)].kind == "created"
    removal = changes[urn("controller-0-remove-k8s-worker-1", REMOTE)]
    assert removal.kind == REPLACED and not removal.delete_first
    engine.execute(ops, Machines(kept, state))
    (old_half,) = [op for op in ops if op.name == removal.name and op.action == "delete"]
    assert old_half.phase == DELETES and old_half.command.acts_on == (("worker-1", "new machine"),)


def test_destroy_skips_delete_commands_unless_a_refresh_cut_them_loose():
    state = worker_state()
    changes, ops = engine.plan_destroy(state)
    assert engine.execute(ops, Machines(state, [])) is None
    assert {op.command.outcome for op in ops if op.command and op.name.startswith("controller-0-remove")} == {SKIPPED}
    kept, _ = engine.refresh(state, ["k8s-controller-0"])
    changes, ops = engine.plan_destroy(kept)
    failed = engine.execute(ops, Machines(state, [], gone=["k8s-controller-0"]))
    assert failed is not None and failed.command.outcome == FAILS
    # what the failed removal depends on stays; the rest goes
    status = {op.name: op.status for op in ops}
    assert status["k8s-worker-0"] == "not reached" and status["route-k8s-worker-0"] == "done"
