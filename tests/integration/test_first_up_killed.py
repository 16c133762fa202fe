"""Drill (issue 17, review D3): a first `pulumi up` killed after some etcd members came up, the next one killed after
some workers came up, then `pulumi up` again converges. A lab of its own (3 etcd, 1 controller, 2 workers), made and
removed before the lab the other lab tests share (this file sorts before test_lab*.py): one lab at a time.
"""

from __future__ import annotations

import json
import os

import pytest

from infra.aws_facts import BOOTSTRAPPED, BOOTSTRAPPED_TAG
from locallab.machines import missing_tools
from tests.integration.test_lab_workers_day2 import kubectl, ready_nodes

pytestmark = pytest.mark.integration

# etcd-1 started, etcd-0's health check not yet recorded: no member counts as running. Then worker-0 came up and
# was tagged, worker-1 not yet.
KILLED_AFTER = ["etcd-1-start-etcd", "worker-0-node-ready"]


def test_a_first_up_killed_twice_part_way_then_run_again_converges():
    if os.geteuid() != 0 or missing_tools():
        pytest.skip("the lab needs root and its tools")
    if os.environ.get("K8S_FROM_SCRATCH_LAB_ATTACH"):
        pytest.skip("another lab is up: one lab at a time")
    from locallab.session import lab_session
    tag = os.environ.get("K8S_FROM_SCRATCH_LAB_TEST_TAG", "test") + "-d3"
    with lab_session(tag=tag, etcd=3, controllers=1, workers=2, kill_first_up_after=KILLED_AFTER) as lab:
        assert lab.killed_after == KILLED_AFTER
        report = lab.first_report
        assert not report.by_status("failed"), report.table()
        replayed = {r.step for r in report.by_status("replayed")}
        # The last update ran what the killed ones left, and took worker-0 (Ready, never uncordoned) for a new
        # worker: its drain step, after its uncordon step, finds nothing to drain.
        assert {"controller-0-uncordon-worker-0", "lab-smoke-test-fetch-from-every-worker"} <= replayed, \
            report.table()
        drain = next(r for r in report.rows if r.step == "controller-0-drain-worker-0")
        assert "nothing to drain" in drain.output, drain.output
        fetched = next(r for r in report.rows if r.step == "lab-smoke-test-fetch-from-every-worker")
        assert all(f"{w}: Welcome to nginx!" in fetched.output for w in ("worker-0", "worker-1")), fetched.output
        assert ready_nodes(lab) >= {"worker-0", "worker-1"}
        # One etcd cluster of three members, all of which formed it (none told to join a running cluster).
        members = lab.on("etcd-0", f"/usr/local/bin/etcdctl --endpoints https://{lab.nodes['etcd-0']}:2379 "
                                   "--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt "
                                   "--key /etc/etcd/pki/server.key member list -w json")
        assert members.returncode == 0, members.stdout + members.stderr
        assert sorted(m["name"] for m in json.loads(members.stdout)["members"]) == ["etcd-0", "etcd-1", "etcd-2"]
        marks = {r.name: r.inputs["value"] for r in lab.run.of_type("aws:ec2/tag:Tag")
                 if r.inputs.get("key") == BOOTSTRAPPED_TAG and "etcd" in r.name}
        assert len(marks) == 3 and set(marks.values()) == {BOOTSTRAPPED}, marks
        # Converged: replaying again runs nothing.
        assert not lab.replay().by_status("replayed")
        assert kubectl(lab, "get", "nodes", "-o", "name").split() == ["node/worker-0", "node/worker-1"]
