"""The arithmetic of bench/apply_model.py on graphs small enough to schedule by hand."""

from __future__ import annotations

import pytest

from bench.apply_model import (AWS, Op, TokenBucket, lab_step_times, simulate, step_latency,
                               with_certificate_edge)


def diamond() -> dict[str, Op]:
    """a (2 s) -> b (3 s) and c (5 s) -> d (1 s)."""
    return {
        "a": Op("a", 2, index=0),
        "b": Op("b", 3, {"a"}, index=1),
        "c": Op("c", 5, {"a"}, index=2),
        "d": Op("d", 1, {"b", "c"}, index=3),
    }


def test_unbounded_schedule_is_the_critical_path():
    schedule = simulate(diamond())
    assert schedule.finish == {"a": 2, "b": 5, "c": 7, "d": 8}
    assert schedule.chain("d") == ["a", "c", "d"]
    assert schedule.waited == {}


def test_one_slot_runs_ready_operations_in_registration_order():
    schedule = simulate(diamond(), slots=1)
    assert schedule.start == {"a": 0, "b": 2, "c": 5, "d": 10}
    assert schedule.end() == 11
    assert schedule.ready["c"] == 2 and "engine slot" in schedule.waited["c"]


def test_two_slots_are_enough_for_the_diamond():
    assert simulate(diamond(), slots=2).end() == 8


def test_a_quorum_member_finishes_only_once_a_majority_has_started():
    ops = {
        "slow": Op("slow", 4, index=0),
        "e0": Op("etcd-0-start-etcd", 1, index=1, quorum_group="etcd"),
        "e1": Op("etcd-1-start-etcd", 1, {"slow"}, index=2, quorum_group="etcd"),
        "e2": Op("etcd-2-start-etcd", 1, {"slow", "e0"}, index=3, quorum_group="etcd"),
    }
    schedule = simulate(ops)
    # e0 starts at 0 but returns only when e1 (the second of three) starts at 4.
    assert schedule.finish["e0"] == 5 and schedule.finish["e1"] == 5
    assert schedule.finish["e2"] == 6          # starts after e0 and slow, the quorum already there
    assert "quorum" in schedule.waited["e0"]


def test_a_quorum_that_cannot_gather_within_the_slots_is_reported():
    ops = {f"e{i}": Op(f"etcd-{i}-start-etcd", 1, index=i, quorum_group="etcd") for i in range(3)}
    with pytest.raises(RuntimeError, match="cannot progress"):
        simulate(ops, slots=1)


def test_run_instances_waits_for_tokens_once_the_bucket_is_empty():
    bucket = TokenBucket(2, 1.0)
    assert [bucket.take(0) for _ in range(4)] == [0, 0, 1, 2]
    assert bucket.take(10) == 10                # refilled meanwhile
    ops = {f"i{n}": Op(f"i{n}", 1, index=n, launches_instance=True) for n in range(3)}
    schedule = simulate(ops, bucket=TokenBucket(1, 0.5))
    assert sorted(schedule.finish.values()) == [1, 3, 5]


def test_an_operation_that_waits_for_an_outside_condition():
    ops = diamond()
    ops["d"].wait_until = lambda finish: finish["c"] + 10
    ops["d"].wait_reason = "NLB target health"
    schedule = simulate(ops)
    assert schedule.finish["d"] == 18 and schedule.waited["d"] == "NLB target health"


def test_the_certificate_edge_moves_the_control_plane_behind_the_load_balancer():
    nlb_latency = AWS["aws:lb/loadBalancer:LoadBalancer"]
    ops = {
        "vpc": Op("k8s-dev-vpc", 12, index=0),
        "nlb": Op("k8s-dev-api-nlb", nlb_latency.seconds, {"vpc"}, latency=nlb_latency, index=1),
        "csr": Op("k8s-dev-pki-kube-apiserver-csr", 0.1, index=2),
        "api": Op("controller-0-start-kube-apiserver", 3, {"csr"}, index=3),
    }
    before = simulate(with_certificate_edge(ops, True))
    after = simulate(with_certificate_edge(ops, False))
    assert before.finish["api"] == pytest.approx(12 + nlb_latency.seconds + 0.1 + 3)
    assert after.finish["api"] == pytest.approx(3.1)
    assert "nlb" not in ops["csr"].deps           # the original graph is left as it was


def test_step_times_come_from_the_lab_report_then_the_lab_readme_then_an_estimate():
    report = "every replayed step (real time, s):\n  worker-0-node-ready   12.0\n  worker-1-node-ready   14.0\n"
    lab = lab_step_times(report)
    assert lab == {"node-ready": 13.0}
    assert step_latency("worker-2-node-ready", lab).seconds == 13.0
    assert step_latency("etcd-1-install-etcd", {}).basis == "lab"
    assert step_latency("worker-2-node-ready", {}).basis == "estimate"
    assert step_latency("k8s-dev-smoke-test-fetch-from-every-worker", {}).basis == "estimate"
    with pytest.raises(KeyError):
        step_latency("worker-0-something-new", {})
