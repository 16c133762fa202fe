"""Defects the engine's rules showed in `cluster/` (review-r2-engine-and-aws.md D1, D2, D3, D9, D11, D12, D15, D16;
review-r2-kubernetes.md N2), each a test of the right behaviour, played by the change simulator. Each failed before
its fix (they were strict xfails, one per row) and passes since."""

from __future__ import annotations

import pytest

from infra.settings import SettingsError
from simulator.change_sim import (BASE, CASES_BY_ID, THREE_ETCD, deployed, plan_case, retry_partial_first_up,
                                  simulate)
from simulator.engine import DELETES, RUNS, UNCHANGED
from simulator.graph import dependency_depth

ROUTE = "aws:ec2/route:Route"


def routes_deleted(plan) -> set[str]:
    return {op.name for op in plan.operations if op.action == "delete" and op.change.type == ROUTE}


def test_d1_a_worker_recreated_after_a_refresh_is_not_drained_by_its_old_removal_step():
    plan = plan_case("worker-lost")
    assert plan.created_nodes() == ["worker-1"]
    acts = [(op.name, node, machine) for op in plan.delete_commands(RUNS) for node, machine in op.command.acts_on]
    assert not [a for a in acts if a[2] == "new machine"], acts


@pytest.mark.parametrize("case_id, untouched", [
    ("replace-worker", ("worker-0", "worker-2")),
    ("replace-controller", ("worker-0", "worker-1", "worker-2")),
    ("zones", ("worker-0",)),                                # zones 1 -> 3 moves worker-1 and worker-2
])
def test_d2_replacing_nodes_never_deletes_the_pod_routes_of_the_workers_that_stay(case_id, untouched):
    plan = plan_case(case_id)
    assert not routes_deleted(plan) & {f"k8s-dev-pod-network-table0-{w}" for w in untouched}


def test_d3_the_retry_of_a_first_up_that_launched_one_etcd_member_bootstraps_all_three():
    plan = plan_case("partial-first-up")
    assert plan.created_nodes() == ["etcd-1", "etcd-2"]
    for i in range(3):
        assert "new_member_of_running_cluster=yes" not in plan.named(f"etcd-{i}-start-etcd").after.inputs["stdin"]


def test_d15_the_retry_of_a_failed_first_up_is_as_parallel_as_a_first_up():
    retry = retry_partial_first_up(THREE_ETCD, ["k8s-dev-etcd-2"])     # 2 of 3 launched: not refused
    assert dependency_depth(retry.after) == dependency_depth(deployed(THREE_ETCD).after)


def test_d9_destroy_after_controller_0_was_lost_and_refreshed_deletes_everything():
    plan = plan_case("destroy-controller-lost")
    assert plan.failure is None
    assert {op.status for op in plan.operations} == {"done"}


def test_d11_a_leaving_workers_routes_go_only_after_it_is_drained():
    plan = plan_case("workers-down")
    wave = {op.name: op.wave for op in plan.operations if op.phase == DELETES}
    for i in (2, 3, 4):
        assert wave[f"controller-0-remove-worker-{i}"] < wave[f"k8s-dev-pod-network-table0-worker-{i}"]


def test_d12_a_worker_leaving_while_controller_0_is_replaced_is_drained_first():
    plan = plan_case("replace-controller-scale-down")
    drains = [(i, node) for i, op in enumerate(plan.operations) if op.command and op.command.outcome == RUNS
              and op.action == "delete" for node, machine in op.command.acts_on if machine == "old machine"]
    assert any(node == "worker-2" and i < plan.position("k8s-dev-worker-2", "delete") for i, node in drains), drains


def test_d16_a_second_up_after_etcd_3_to_5_changes_nothing():
    again = simulate(plan_case("etcd-up"), CASES_BY_ID["etcd-up"].after)
    assert {c.name: c.kind for c in again.changes.values() if c.kind != UNCHANGED} == {}


def test_n2_a_worker_that_registered_again_with_another_range_gets_its_route_moved():
    ranges = {"worker-0": "10.200.0.0/24", "worker-1": "10.200.7.0/24", "worker-2": "10.200.2.0/24"}
    plan = simulate(deployed(BASE), BASE, pod_cidrs=ranges)
    route = plan.named("k8s-dev-pod-network-table0-worker-1", ROUTE)
    assert route.after.inputs["destinationCidrBlock"] == "10.200.7.0/24"
