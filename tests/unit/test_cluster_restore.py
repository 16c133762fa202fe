"""The whole-cluster restore (review r2 N4): its phases in the order the Kubernetes procedure asks for, and the
runner that plays them, with a node that fails. The lab runs it for real under a running cluster
(tests/integration/test_lab_day2_nodes.py)."""

from __future__ import annotations

import pytest

from cluster.render.etcd_backup import BUMP_REVISION, restore_script
from cluster.render.etcd import Member
from cluster.restore import RestoreFailed, nodes_by_role, restore_cluster, run_plan, ssh_hosts
from cluster.render.restore import cluster_restore_plan
from cluster.render.ssh_config import render_ssh_config

NODES = ["etcd-0", "etcd-1", "etcd-2", "controller-0", "controller-1", "worker-0", "worker-1", "worker-10"]


def test_phases_stop_the_writers_restore_then_restart_everything_that_watches():
    roles = nodes_by_role(NODES)
    assert roles["workers"] == ["worker-0", "worker-1", "worker-10"]
    plan = cluster_restore_plan(snapshot="/root/restore.db", etcd=roles["etcd"], controllers=roles["controllers"],
                                workers=roles["workers"])
    steps = [(p.nodes, p.script) for p in plan]
    assert "systemctl stop kube-apiserver.service" in steps[0][1] and steps[0][0] == ("controller-0", "controller-1")
    assert "/usr/local/sbin/k8s-etcd-restore /root/restore.db" in steps[1][1] and steps[1][0] == tuple(roles["etcd"])
    assert "endpoint health" in steps[2][1]
    assert 'systemctl start "$unit"' in steps[3][1] and "kube-apiserver.service" in steps[3][1]
    assert "/readyz" in steps[4][1]
    assert "kube-controller-manager.service kube-scheduler.service" in steps[5][1]
    assert "kubelet.service kube-proxy.service" in steps[6][1] and steps[6][0] == tuple(roles["workers"])
    assert "rollout restart deployment/coredns" in steps[7][1] and steps[7][0] == ("controller-0",)
    assert "k8s-etcd-snapshot.timer k8s-etcd-defrag.timer" in steps[8][1]


def test_each_member_restores_with_a_bumped_and_compacted_revision_and_its_timers_stopped():
    members = [Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(3)]
    script = restore_script(members[1], members, "k8s-dev")
    assert f"--bump-revision {BUMP_REVISION} --mark-compacted" in script
    assert "systemctl stop k8s-etcd-snapshot.timer k8s-etcd-defrag.timer" in script
    assert script.index("systemctl stop k8s-etcd-snapshot") < script.index("systemctl stop etcd")


def test_the_runner_runs_each_phase_on_its_nodes_and_stops_at_the_first_failure():
    ran: list[tuple[str, str]] = []
    copied = []

    def run_on(node, script):
        ran.append((node, script))
        return (1, "no quorum") if "endpoint health" in script and node == "etcd-1" else (0, "ok")

    with pytest.raises(RestoreFailed, match=r"phase 3 \(wait until every etcd member is healthy\) failed on etcd-1"):
        restore_cluster(snapshot="/root/s.db", nodes=NODES, run_on=run_on, copy_from="etcd-0",
                        copy=lambda *a: copied.append(a), log=lambda m: None)
    assert copied == [("etcd-0", "etcd-1", "/root/s.db"), ("etcd-0", "etcd-2", "/root/s.db")]
    assert not any("kube-apiserver.service" in s and "start" in s.split("\n")[1] for _, s in ran)
    assert {n for n, s in ran if "k8s-etcd-restore" in s} == {"etcd-0", "etcd-1", "etcd-2"}


def test_the_runner_reads_the_nodes_from_the_ssh_config_output(tmp_path):
    config = tmp_path / "ssh.cfg"
    config.write_text(render_ssh_config(user="ubuntu", bastion="203.0.113.1",
                                        hosts={n: "10.43.0.1" for n in NODES}))
    assert ssh_hosts(config) == NODES
    results = run_plan(cluster_restore_plan(snapshot="/s", etcd=["etcd-0"], controllers=["controller-0"],
                                            workers=["worker-0"]), lambda n, s: (0, n), log=lambda m: None)
    assert len(results) == 9 and results[-1].outputs == {"etcd-0": "etcd-0"}
