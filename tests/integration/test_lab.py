"""The local lab: the program's own remote steps, replayed over SSH on real systemd machines.

A 3/3/3 stack runs under mocks that mint real keys; nine Debian machines boot with systemd-nspawn at the stack's
private addresses; every remote step the program declared is replayed in dependency order, concurrently where
Pulumi would run it concurrently, or listed as not replayed with its reason.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from cluster.render import podnet
from tests.lab.machines import missing_tools
from tests.lab.replay import ReplayError, Step, collect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    missing = missing_tools()
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)}")
    from tests.lab.session import lab_session
    with lab_session() as session:
        print("\n" + session.first_report.table())
        print("lab timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in session.timings.items()))
        yield session


def etcdctl(session, node: str, *args: str) -> str:
    """etcdctl on a member, with that member's own certificate, as the program's health check uses it."""
    tls = "--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key"
    endpoints = ",".join(f"https://{session.nodes[f'etcd-{i}']}:2379" for i in range(3))
    result = session.on(node, f"/usr/local/bin/etcdctl --endpoints {endpoints} {tls} {' '.join(args)}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr     # etcdctl 3.4 reports endpoint health on stderr


def test_the_replay_report_accounts_for_every_remote_step(lab):
    report = lab.first_report
    declared = [r.name for r in lab.run.resources if r.type.startswith("command:")]
    assert sorted(r.step for r in report.rows) == sorted(declared)
    assert not report.by_status("failed")
    replayed = {r.step for r in report.by_status("replayed")}
    for i in range(3):
        assert {f"etcd-{i}-ready", f"etcd-{i}-etcd-user", f"etcd-{i}-etcd-files", f"etcd-{i}-install-etcd",
                f"etcd-{i}-start-etcd"} <= replayed
        assert {f"controller-{i}-ready", f"controller-{i}-control-plane-files"} <= replayed
        assert {f"worker-{i}-ready", f"worker-{i}-worker-files", f"worker-{i}-pod-network"} <= replayed
        assert f"controller-{i}-pod-network" in replayed
    assert "etcd-0-etcd-health" in replayed
    for row in report.by_status("not replayed"):
        assert row.reason, row.step
    assert {r.step for r in report.by_status("not replayed")} >= {"worker-0-install-containerd",
                                                                 "controller-0-start-kube-apiserver",
                                                                 "worker-0-prepare-os"}


def test_etcd_members_run_the_programs_units_and_form_a_healthy_cluster_over_mtls(lab):
    for i in range(3):
        state = lab.on(f"etcd-{i}", "systemctl is-active etcd; systemctl show etcd -p User --value; "
                                    "stat -c '%a %U' /var/lib/etcd /etc/etcd/pki/server.key")
        assert state.stdout.split() == ["active", "etcd", "700", "etcd", "600", "etcd"], state.stdout
        unit = lab.on(f"etcd-{i}", "cat /etc/systemd/system/etcd.service").stdout
        assert f"--name=etcd-{i}" in unit and "--client-cert-auth" in unit and "--peer-client-cert-auth" in unit
    health = etcdctl(lab, "etcd-0", "endpoint", "health")
    assert health.count("is healthy") == 3
    assert etcdctl(lab, "etcd-1", "member", "list").count("started") == 3


def test_the_cluster_serves_with_one_member_stopped_and_the_member_rejoins(lab):
    etcdctl(lab, "etcd-0", "put", "/lab/written-before", "yes")
    assert lab.on("etcd-2", "systemctl stop etcd").returncode == 0
    survivors = ",".join(f"https://{lab.nodes[f'etcd-{i}']}:2379" for i in range(2))
    tls = "--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key"
    put = lab.on("etcd-0", f"/usr/local/bin/etcdctl --endpoints {survivors} {tls} put /lab/written-during yes")
    assert put.returncode == 0, put.stderr
    get = lab.on("etcd-1", f"/usr/local/bin/etcdctl --endpoints {survivors} {tls} get /lab/written-before "
                           "--print-value-only")
    assert get.stdout.strip() == "yes"
    assert lab.on("etcd-2", "systemctl start etcd").returncode == 0
    deadline = time.monotonic() + 60
    while etcdctl(lab, "etcd-0", "endpoint", "health").count("is healthy") < 3 and time.monotonic() < deadline:
        time.sleep(1)
    own = lab.on("etcd-2", f"/usr/local/bin/etcdctl --endpoints https://{lab.nodes['etcd-2']}:2379 {tls} "
                           "get /lab/written-during --print-value-only")
    assert own.stdout.strip() == "yes", own.stderr


def pod_gateway(lab, worker: str) -> str:
    """Where the worker's pod bridge would have its address (containerd's CNI bridge is not replayable here):
    the first address of the range the program routed to this worker."""
    cidr = lab.run.outputs["podCidrs"][worker]
    return cidr.rsplit(".", 1)[0] + ".1"


def test_workers_reach_each_others_pod_ranges_through_the_programs_routes(lab):
    for i in range(3):
        worker = f"worker-{i}"
        setup = lab.on(worker, f"ip link add cni0 type bridge 2>/dev/null || true; "
                               f"ip addr replace {pod_gateway(lab, worker)}/24 dev cni0; ip link set cni0 up")
        assert setup.returncode == 0, setup.stderr
    for i in range(3):
        worker = f"worker-{i}"
        routes = lab.on(worker, f"ip -4 route show proto {podnet.ROUTE_PROTOCOL}").stdout
        assert len(routes.splitlines()) == 2, routes
        for j in range(3):
            if i != j:
                ping = lab.on(worker, f"ping -c 1 -W 2 {pod_gateway(lab, f'worker-{j}')}")
                assert ping.returncode == 0, f"{worker} cannot reach worker-{j}'s pod range: {ping.stdout}"
        assert lab.on(worker, "systemctl is-enabled k8s-pod-network.service").stdout.strip() == "enabled"
        rules = lab.on(worker, "iptables -w -t nat -S POSTROUTING").stdout
        assert rules.count(f"-j {podnet.MASQUERADE_CHAIN}") == 1
    # controllers reach pods too (replies to pods that called the API)
    assert lab.on("controller-0", f"ping -c 1 -W 2 {pod_gateway(lab, 'worker-2')}").returncode == 0


def unit_starts(lab) -> dict[str, str]:
    return {f"etcd-{i}": lab.on(f"etcd-{i}", "systemctl show etcd -p InvocationID --value").stdout.strip()
            for i in range(3)}


def route_and_rule_state(lab) -> dict[str, str]:
    return {f"worker-{i}": lab.on(f"worker-{i}", f"ip -4 route show proto {podnet.ROUTE_PROTOCOL}; "
                                                 "iptables -w -t nat -S").stdout for i in range(3)}


def test_replaying_a_second_time_changes_nothing(lab):
    before_units, before_net = unit_starts(lab), route_and_rule_state(lab)
    etcdctl(lab, "etcd-0", "put", "/lab/kept", "across-replays")
    steps = collect(lab.rerun_program())
    # As `pulumi up` would: the same inputs, so no step runs at all.
    second = lab.replayer.replay(steps)
    assert not second.by_status("replayed"), [r.step for r in second.by_status("replayed")]
    # Stronger: force every replayable step to run again except the ones whose job is to restart a service
    # (Pulumi runs those only when their triggers change). Each finds nothing to do.
    forced = lab.replayer.replay(steps, force=lambda s: not re.search(r"-start-", s.name))
    rerun = forced.by_status("replayed")
    assert len(rerun) > 20
    for row in rerun:
        assert "changed:" not in row.output and "installed /" not in row.output and "removed stale" not in row.output, \
            (row.step, row.output)
    assert unit_starts(lab) == before_units, "a second replay restarted etcd"
    assert route_and_rule_state(lab) == before_net
    assert lab.on("etcd-1", "/usr/local/bin/etcdctl --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt "
                            "--key /etc/etcd/pki/server.key get /lab/kept --print-value-only").stdout.strip() == \
        "across-replays"


def test_a_failing_step_names_its_host_its_step_and_its_output(lab):
    gate = next(s for s in collect(lab.run) if s.name == "worker-1-ready")
    broken = Step(name="worker-1-broken-step", urn="urn:lab:broken", type=gate.type, host=gate.host, user=gate.user,
                  private_key=gate.private_key, create=gate.create,
                  stdin="echo 'the disk is full' >&2\nexit 3\n", fingerprint="x", dependencies=set())
    with pytest.raises(ReplayError) as err:
        lab.replayer.replay([broken])
    message = str(err.value)
    assert "worker-1-broken-step" in message and gate.host in message and "the disk is full" in message
    assert "exit 3" in message
