"""Drills of what the engine does to a running cluster (issue 17), played on the lab the other lab tests share
(tests/integration/conftest.py), after them but before the restore (conftest.py runs that last): a node registered
again with another range (N2), a worker's machine made anew at its address (D1), a replay killed mid-step at several
points then run again. Each leaves the lab's shape as it found it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from cluster.render.podnet import MASQUERADE_CHAIN
from cluster.render.rollout import INSTANCE_ID
from locallab.replay import collect
from locallab.session import replay_program
from tests.integration.test_lab_workers_day2 import kubectl, ready_nodes, wait_for, workers

pytestmark = pytest.mark.integration


def node(lab, name: str) -> dict:
    return json.loads(kubectl(lab, "get", "node", name, "-o", "json"))


def pod_routes(lab, host: str) -> str:
    return lab.on(host, "ip -4 route show").stdout


def test_a_node_registered_again_with_another_range_is_routed_there_on_the_next_update(lab):
    """N2: its Node deleted and registered again, a worker gets another range from the controller-manager; the
    next `pulumi up` (the deployer's live read of the API) moves every other node's route to it, and only the
    pod-network steps run."""
    worker = workers(lab)[-1]
    before = node(lab, worker)["spec"]["podCIDR"]
    kubectl(lab, "delete", "node", worker, "--wait=true")
    assert lab.on(worker, "systemctl restart kubelet").returncode == 0
    after = wait_for(lambda: node(lab, worker)["spec"].get("podCIDR") if worker in ready_nodes(lab) else None,
                     180, f"{worker} registered again, Ready, with a range")
    # The range allocator hands out the next free range after the last it gave, not the one just released.
    assert after != before, f"{worker} got its range {before} back: the drill proves nothing"

    lab.new_update()
    report = replay_program(lab)
    assert not report.by_status("failed"), report.table()
    assert lab.run.outputs["podCidrs"][worker] == after
    replayed = {r.step for r in report.by_status("replayed")}
    assert {f"{host}-pod-network" for host in lab.nodes if host != worker and not host.startswith("etcd-")} \
        <= replayed, report.table()
    assert not any(s.endswith(("-read-pod-cidr", "-node-ready", "-start-kubelet")) for s in replayed), report.table()
    for host in lab.nodes:
        if host != worker and not host.startswith("etcd-"):
            routes = pod_routes(lab, host)
            assert f"{after} via {lab.nodes[worker]}" in routes, (host, routes)
            assert before not in routes, (host, routes)


def test_a_workers_machine_made_anew_at_its_address_comes_back_and_nothing_drains_it(lab):
    """D1: a worker's machine terminated, then `pulumi refresh` and `pulumi up`: a new machine (a new instance id)
    boots at the same address and its steps replay. The old half of its removal step runs when the update ends,
    after the new machine came into service: it names the old machine, so it leaves the new one's Node alone."""
    worker = workers(lab)[0]
    machine_before = node(lab, worker)["metadata"]["annotations"][INSTANCE_ID]

    report = lab.recreate(worker)
    assert not report.by_status("failed"), report.table()
    replayed = {r.step for r in report.by_status("replayed")}
    assert {f"{worker}-start-kubelet", f"{worker}-node-ready", f"{worker}-read-pod-cidr",
            f"controller-0-uncordon-{worker}"} <= replayed, report.table()
    removal = [r for r in report.by_status("deleted") if r.step == f"controller-0-remove-{worker}"]
    assert len(removal) == 1, report.table()
    assert f"not on {machine_before}" in removal[0].output and "nothing to remove" in removal[0].output, \
        removal[0].output

    now = node(lab, worker)
    assert now["metadata"]["annotations"][INSTANCE_ID] != machine_before
    assert not now["spec"].get("unschedulable"), now["spec"]
    assert worker in ready_nodes(lab)
    # Its Node, kept, keeps its range: every other node still routes it.
    for host in lab.nodes:
        if host != worker and not host.startswith("etcd-"):
            assert f"{now['spec']['podCIDR']} via {lab.nodes[worker]}" in pod_routes(lab, host), host


class Killed(BaseException):
    """The replayer's process died: nothing after it runs, and the step it was running is not recorded."""


@contextlib.contextmanager
def killed_during(lab, step_name: str, after_seconds: float):
    """The replayer dies `after_seconds` into `step_name`: that step's ssh client is killed (its remote script
    loses its session, as when the deployer running `pulumi up` dies) and the replay stops there."""
    run = lab.replayer._run

    def kill(step):
        if step.name != step_name:
            return run(step)
        try:
            result = lab.machines.ssh(step.host, step.user, step.private_key, step.create, step.stdin,
                                      timeout=after_seconds)
        except subprocess.TimeoutExpired:
            raise Killed(f"killed {after_seconds}s into {step_name}") from None
        raise AssertionError(f"{step_name} ended within {after_seconds}s (exit {result.returncode}): the kill "
                             "came too late to be mid-step")

    lab.replayer._run = kill
    try:
        with pytest.raises(Killed):
            yield
    finally:
        del lab.replayer._run


def duplicated_lines(lab, host: str) -> str:
    """Routes and the pod egress rules that appear twice on a host (a step that appends where it should
    converge)."""
    script = (f"{{ ip -4 route show; iptables-save -t nat | grep -e {MASQUERADE_CHAIN} -e k8s-from-scratch; }} "
              "| sort | uniq -d")
    result = lab.on(host, script)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_replay_killed_mid_step_at_several_points_then_run_again_converges_and_duplicates_nothing(lab):
    """A worker added (`pulumi up` with one more), the deployer killed in the middle of three of its steps in turn
    (installing containerd, waiting for its Node to be Ready, then another node's pod routes once the new node's
    range is known), each time followed by another `pulumi up`: the last one converges, and each killed step ran
    again."""
    shape = len(workers(lab))
    new = f"worker-{shape}"
    # Steps that last longer than the delay: a kubelet start can end within a second, its Ready check cannot.
    kills = [(f"{new}-install-containerd", 1.0), (f"{new}-node-ready", 2.0), (f"{workers(lab)[0]}-pod-network", 0.3)]
    for step_name, seconds in kills:
        with killed_during(lab, step_name, seconds):
            lab.resize(shape + 1)
        killed = next(s for s in collect(lab.run) if s.name == step_name)
        assert lab.replayer.state.get(killed.urn) != lab.replayer._inputs(killed), f"{step_name} was recorded"
    report = lab.resize(shape + 1)
    assert not report.by_status("failed"), report.table()
    assert kills[-1][0] in {r.step for r in report.by_status("replayed")}, report.table()
    # Converged: every step is recorded with the inputs it has now, so replaying again runs nothing.
    assert not lab.replay().by_status("replayed")
    assert workers(lab) == [f"worker-{i}" for i in range(shape + 1)]
    assert ready_nodes(lab) >= set(workers(lab))
    assert node(lab, new)["spec"]["podCIDR"] == lab.run.outputs["podCidrs"][new]
    for host in lab.nodes:
        if not host.startswith("etcd-"):
            assert duplicated_lines(lab, host) == "", host
            if host != new:
                assert f"{lab.run.outputs['podCidrs'][new]} via {lab.nodes[new]}" in pod_routes(lab, host), host
    for daemon in ("containerd", "kubelet"):
        assert lab.on(new, f"pgrep -xc {daemon}").stdout.strip() == "1", daemon

    report = lab.resize(shape)
    assert not report.by_status("failed"), report.table()
    assert workers(lab) == [f"worker-{i}" for i in range(shape)]
