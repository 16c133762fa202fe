"""Rolling changes under mocks: on a running stack, controllers restart one at a time (API servers first, each after
the previous one's /readyz, then controller-managers and schedulers), workers in batches of
`workers.rolloutBatchSize` after the whole control plane, each drained before and uncordoned after; a first creation
chains nothing; a leaving worker's removal step is deleted before its instance."""

from __future__ import annotations

import re

import pytest

from cluster.render.common import digest
from infra.settings import SettingsError, parse_settings
from simulator.change_sim import KUBERNETES_PATCH, plan_case, simulate
from simulator.graph import dependency_depth
from simulator.program import ClusterMocks, ProgramRun, run_program, stack_config

REMOTE = "command:remote:Command"
INSTANCE = "aws:ec2/instance:Instance"


def config(controllers=3, workers=5, batch=2, **extra):
    c = stack_config(3, controllers, workers, **extra)
    c["workers"]["rolloutBatchSize"] = batch
    return c


@pytest.fixture(scope="module")
def first() -> ProgramRun:
    return run_program(config())


@pytest.fixture(scope="module")
def running(first) -> ProgramRun:
    """The same stack, run again while its nodes run (AWS shows every instance)."""
    return run_program(config(), mocks=ClusterMocks(existing=first))


def step(run: ProgramRun, name: str):
    return run.named(name, REMOTE)


def after(run: ProgramRun, later: str, earlier: str) -> bool:
    """Whether step `later` waits for step `earlier`, directly or through other resources."""
    by_urn = {r.urn: r for r in run.resources}
    target, seen, stack = step(run, earlier).urn, set(), [step(run, later).urn]
    while stack:
        r = by_urn[stack.pop()]
        for urn in r.edges():
            if urn == target:
                return True
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                stack.append(urn)
    return False


WORKER_STARTS = ("haproxy", "containerd", "k8s-cni-config", "kubelet", "kube-proxy")
CONTROLLER_STARTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


# --- a first creation --------------------------------------------------------------------------------------------
def test_a_first_creation_starts_no_node_after_another_of_its_role(first):
    for role, count, services in (("controller", 3, CONTROLLER_STARTS), ("worker", 5, WORKER_STARTS)):
        for i in range(count):
            for service in services:
                for j in range(count):
                    if j != i:
                        for other in services:
                            assert not after(first, f"{role}-{i}-start-{service}", f"{role}-{j}-start-{other}")


def test_a_first_creation_drains_nothing_before_a_start():
    run = run_program(config(workers=3))
    for i in range(3):
        drain = f"controller-0-drain-worker-{i}"
        # after the worker is in service (its uncordon step recorded what it runs), so it finds nothing to drain
        assert after(run, drain, f"controller-0-uncordon-worker-{i}")
        for service in WORKER_STARTS:
            assert not after(run, f"worker-{i}-start-{service}", drain)


def test_a_new_worker_counts_as_running_only_once_in_service(first):
    """Its bootstrapped tag waits for its uncordon step: a retry after an update stopped between its Ready check
    and its uncordon treats it as new, instead of draining it before a restart that does not come."""
    for i in range(5):
        tag = first.named(f"worker-{i}-bootstrapped", "aws:ec2/tag:Tag")
        assert step(first, f"controller-0-uncordon-worker-{i}").urn in tag.edges()


def test_a_first_creation_keeps_its_depth_whatever_the_controllers_workers_and_batch_size():
    depths = {(c, w, b): dependency_depth(run_program(config(controllers=c, workers=w, batch=b)))
              for c, w, b in ((1, 3, 1), (3, 3, 1), (3, 12, 1), (3, 12, 4))}
    assert len(set(depths.values())) == 1, depths


# --- controllers on a running stack ------------------------------------------------------------------------------
def test_running_api_servers_restart_one_at_a_time_each_after_the_previous_ones_readyz(running):
    for i in (1, 2):
        start = step(running, f"controller-{i}-start-kube-apiserver")
        assert start.depends_on_urn(step(running, f"controller-{i - 1}-apiserver-ready").urn)
    for i in range(3):
        ready = step(running, f"controller-{i}-apiserver-ready")
        assert ready.depends_on_urn(step(running, f"controller-{i}-start-kube-apiserver").urn)
        assert "/readyz" in ready.inputs["stdin"] and "deadline" in ready.inputs["stdin"]
    # no API server waits for a later one
    assert not after(running, "controller-0-start-kube-apiserver", "controller-1-apiserver-ready")


def test_controller_managers_and_schedulers_restart_after_every_api_server_one_controller_at_a_time(running):
    for service in ("kube-controller-manager", "kube-scheduler"):
        for i in range(3):
            for j in range(3):
                assert after(running, f"controller-{i}-start-{service}", f"controller-{j}-apiserver-ready")
        for i in (1, 2):
            assert step(running, f"controller-{i}-start-{service}").depends_on_urn(
                step(running, f"controller-{i - 1}-start-{service}").urn)


# --- workers on a running stack ----------------------------------------------------------------------------------
def test_running_workers_restart_in_batches_of_the_setting(running):
    batches = [[0, 1], [2, 3], [4]]
    for b, batch in enumerate(batches):
        for i in batch:
            drain = step(running, f"controller-0-drain-worker-{i}")
            if b:
                # after every worker of the previous batch is back in service, and no sooner
                for j in batches[b - 1]:
                    assert drain.depends_on_urn(step(running, f"controller-0-uncordon-worker-{j}").urn)
            for j in batch:
                assert not after(running, f"controller-0-drain-worker-{i}", f"controller-0-uncordon-worker-{j}")
                assert not after(running, f"worker-{i}-start-kubelet", f"worker-{j}-node-ready") or i == j
            for service in WORKER_STARTS:
                assert step(running, f"worker-{i}-start-{service}").depends_on_urn(drain.urn)
            uncordon = step(running, f"controller-0-uncordon-worker-{i}")
            assert uncordon.depends_on_urn(step(running, f"worker-{i}-node-ready").urn)
            assert uncordon.depends_on_urn(drain.urn)


def test_the_batch_size_is_the_setting():
    run = run_program(config(workers=4, batch=1), mocks=ClusterMocks(existing=run_program(config(workers=4, batch=1))))
    for i in (1, 2, 3):
        assert after(run, f"controller-0-drain-worker-{i}", f"controller-0-uncordon-worker-{i - 1}")


def test_a_drain_waits_only_for_what_restarts_the_pods_runtime(running):
    """The drain and uncordon steps run again when containerd's or the kubelet's inputs change, and only then: their
    fingerprint is made of those two services' triggers (files and binaries), not kube-proxy's or haproxy's."""
    for i in range(5):
        restart_inputs = [v for s in ("containerd", "kubelet")
                          for v in step(running, f"worker-{i}-start-{s}").inputs["triggers"][:-1]]
        runtime = digest(*restart_inputs)
        drain = step(running, f"controller-0-drain-worker-{i}")
        assert drain.inputs["triggers"][0] == runtime
        assert f"want={runtime}" in drain.inputs["stdin"]
        assert f"want={runtime}" in step(running, f"controller-0-uncordon-worker-{i}").inputs["stdin"]


def test_workers_restart_after_the_whole_control_plane(running):
    for i in range(5):
        for j in range(3):
            for service in CONTROLLER_STARTS:
                assert after(running, f"worker-{i}-start-kubelet", f"controller-{j}-start-{service}")
                assert after(running, f"worker-{i}-start-kube-proxy", f"controller-{j}-start-{service}")


def test_a_worker_added_to_a_running_cluster_starts_at_once_but_its_kubelet_after_the_control_plane(running):
    grown = run_program(config(workers=6), mocks=ClusterMocks(existing=running))
    for service in ("containerd", "haproxy", "kubelet", "kube-proxy"):
        for i in range(5):
            assert not after(grown, f"worker-5-start-{service}", f"controller-0-uncordon-worker-{i}")
    for service in ("kubelet", "kube-proxy"):
        for j in range(3):
            assert after(grown, f"worker-5-start-{service}", f"controller-{j}-start-kube-controller-manager")
    assert not after(grown, "worker-5-start-containerd", "controller-0-apiserver-ready")


# --- a version change: the skew order -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def upgrade():
    before = config(workers=3, batch=1)
    return simulate(before, {**before, "versions": KUBERNETES_PATCH})


def test_a_version_change_goes_etcd_api_servers_managers_kubelets(upgrade):
    replaced = {c.name for c in upgrade.steps() if c.kind == "replaced"}
    assert {f"controller-{i}-start-kube-apiserver" for i in range(3)} <= replaced
    assert {f"worker-{i}-start-kubelet" for i in range(3)} <= replaced
    assert {f"controller-0-drain-worker-{i}" for i in range(3)} <= replaced
    run = upgrade.after
    for i in range(3):
        assert after(run, f"controller-{i}-start-kube-apiserver", "etcd-0-etcd-health")
        for j in range(3):
            assert after(run, f"controller-{i}-start-kube-controller-manager", f"controller-{j}-apiserver-ready")
            for service in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                assert after(run, f"worker-{i}-start-kubelet", f"controller-{j}-start-{service}")
                assert after(run, f"controller-0-drain-worker-{i}", f"controller-{j}-start-{service}")


def test_a_rolling_change_is_deeper_than_a_first_creation_by_its_chains(upgrade):
    first = dependency_depth(upgrade.before)
    rolling = dependency_depth(upgrade.after)
    # three API servers, each with its readiness check, then three controller-managers; three workers in turn,
    # each drained, restarted (containerd, then the kubelet), checked and uncordoned
    assert rolling > first + 3 * 2 + 3 * 4
    smaller_batches = run_program(config(workers=3, batch=3), mocks=ClusterMocks(existing=upgrade.before))
    assert dependency_depth(smaller_batches) < rolling


# --- workers leaving ------------------------------------------------------------------------------------------------
def test_a_leaving_worker_is_drained_and_its_node_deleted_before_its_instance_goes():
    plan = plan_case("workers-down")         # 5 -> 2 workers
    deleted = [op.change.name for op in plan.operations if op.action == "delete"]
    instances = {c.name: c for c in plan.of_kind("deleted", INSTANCE)}
    assert len(instances) == 3
    for i in (2, 3, 4):
        removal = plan.named(f"controller-0-remove-worker-{i}", REMOTE)
        assert removal.kind == "deleted"
        assert removal.before.depends_on_urn(instances[f"k8s-dev-worker-{i}"].urn)
        assert deleted.index(removal.name) < deleted.index(f"k8s-dev-worker-{i}")
        command = removal.before.inputs["delete"]
        assert re.search(rf"kubectl --kubeconfig /etc/kubernetes/deployer.kubeconfig\)? drain \"\$node\" "
                         r"--ignore-daemonsets --delete-emptydir-data \\\s+--timeout=300s", command), command
        assert "node=worker-%d" % i in command and 'delete node "$node"' in command
        # only while the Node runs on the machine the step was made for (review D1)
        assert f"machine={instances[f'k8s-dev-worker-{i}'].before.id}" in command
        # `pulumi destroy` drains nothing: the step goes with the VPC, which only a destroy deletes
        vpc = next(c for c in plan.changes.values() if c.type == "aws:ec2/vpc:Vpc")
        assert removal.before.deleted_with == vpc.before.urn


def test_a_replaced_worker_is_drained_before_its_old_machine_goes_and_checked_after_the_new_one():
    plan = plan_case("replace-worker")
    ops = [(op.action, op.change.name) for op in plan.operations]
    removal = "controller-0-remove-worker-1"
    assert plan.named(removal, REMOTE).kind == "replaced"
    assert ops.index(("delete", removal)) < ops.index(("delete", "k8s-dev-worker-1"))
    assert ops.index(("create", "k8s-dev-worker-1")) < ops.index(("create", removal))


def test_other_steps_leave_no_node_behind_a_removal():
    """The removal step is replaced by a new machine only: its one trigger is the instance id."""
    run = run_program(config(workers=2, batch=1))
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r for r in run.of_type(INSTANCE)}
    for i in range(2):
        removal = step(run, f"controller-0-remove-worker-{i}")
        assert removal.inputs["triggers"] == [instances[f"worker-{i}"].id]
        assert "worker-%d is a registered node" % i in removal.inputs["stdin"]


# --- the setting ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, says", [
    (0, "expected a whole number from 1 to 3"),
    (4, "expected a whole number from 1 to 3"),
    ("2", "expected a whole number from 1 to 3"),
])
def test_the_batch_size_is_validated(value, says):
    with pytest.raises(SettingsError, match=rf"setting 'workers.rolloutBatchSize' = .*{re.escape(says)}"):
        parse_settings({**stack_config(), "workers": {"count": 3, "rolloutBatchSize": value}})


def test_only_workers_take_a_batch_size():
    assert parse_settings(stack_config()).workers.rollout_batch_size == 1
    with pytest.raises(SettingsError, match="setting 'controllers.rolloutBatchSize'"):
        parse_settings({**stack_config(), "controllers": {"count": 3, "rolloutBatchSize": 1}})


def test_the_lab_replays_the_rollout_steps_now_that_kubelets_register_nodes(first):
    from locallab.replay import collect, not_replayed_reason

    steps = {s.name: s for s in collect(first)}
    for i in range(5):
        for kind in ("drain", "uncordon", "remove"):
            assert not_replayed_reason(steps[f"controller-0-{kind}-worker-{i}"]) is None
    assert not_replayed_reason(steps["controller-0-apiserver-ready"]) is None


def test_the_lab_knows_which_steps_run_again_when_another_is_replaced(first):
    """Readiness checks name the id of the start they check: the replay must run them after every restart, as the
    engine does (a replaced step has a new id), or a rolling restart in the lab would not wait for them."""
    from locallab.replay import collect

    steps = {s.name: s for s in collect(first)}
    names = {s.urn: n for n, s in steps.items()}

    def refs(name: str) -> set[str]:
        return {names[u] for u in steps[name].id_refs}

    assert refs("controller-1-apiserver-ready") == {"controller-1-start-kube-apiserver"}
    assert refs("worker-0-node-ready") == {"worker-0-start-kubelet"}
    assert refs("etcd-0-etcd-health") == {f"etcd-{i}-start-etcd" for i in range(3)}
    assert all(s.id_refs <= s.dependencies for s in steps.values())


def test_n13_every_workers_haproxy_reloads_its_config_and_the_other_services_restart():
    run = run_program(stack_config(1, 1, 2))
    for worker in ("worker-0", "worker-1"):
        assert "systemctl reload-or-restart" in run.named(f"{worker}-start-haproxy").inputs["stdin"]
        assert "systemctl reload-or-restart" not in run.named(f"{worker}-start-kubelet").inputs["stdin"]
