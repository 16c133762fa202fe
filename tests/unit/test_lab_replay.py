"""The lab's replay rules, its resolver and its machine cgroups, without booting anything."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from locallab import machines, resolver
from locallab.replay import Replayer, Step, not_replayed_reason
from locallab.session import _waiting_for


def _step(name: str, kind: str = "command:remote:Command", deps: set[str] = frozenset()) -> Step:
    return Step(name, f"urn:{name}", kind, "10.43.0.30", "ubuntu", "", f"run {name}", "", name, set(deps))


def test_every_worker_and_cluster_step_is_replayed_and_only_the_load_balancer_check_is_not():
    for name in ("worker-0-prepare-os", "worker-0-start-containerd", "worker-0-start-kubelet",
                 "worker-0-start-kube-proxy", "worker-0-node-ready", "worker-0-read-pod-cidr",
                 "controller-0-apply-coredns", "controller-0-dns-check", "controller-0-apply-nginx",
                 "controller-0-nginx-rollout"):
        assert not_replayed_reason(_step(name)) is None, name
    assert not_replayed_reason(_step("lab-smoke-test-fetch-from-every-worker", "command:local:Command")) is None
    reason = not_replayed_reason(_step("lab-api-through-load-balancer", "command:local:Command"))
    assert reason and "load balancer" in reason


def test_deployer_steps_run_through_the_local_runner_and_remote_ones_over_ssh():
    ran = []

    def ssh(host, user, key, command, stdin):
        ran.append(("ssh", command))
        return subprocess.CompletedProcess(command, 0, "", "")

    def local(command, stdin):
        ran.append(("local", command))
        return subprocess.CompletedProcess(command, 0, "", "")

    remote = _step("worker-0-start-kubelet")
    fetch = _step("lab-smoke-test-fetch-from-every-worker", "command:local:Command", {remote.urn})
    report = Replayer(ssh, local=local).replay([remote, fetch])
    assert ran == [("ssh", "run worker-0-start-kubelet"), ("local", "run lab-smoke-test-fetch-from-every-worker")]
    assert [r.status for r in report.rows] == ["replayed", "replayed"]


def test_a_replaced_step_gets_a_new_id_and_the_steps_whose_triggers_name_it_run_again():
    """pulumi-command: a change of `triggers` replaces a step (a new id), any other change updates it (same id);
    an API server's readiness check, whose triggers hold its start step's id, runs after every restart."""
    ran = []

    def ssh(host, user, key, command, stdin):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    def steps(start_triggers: str, start_stdin: str) -> list[Step]:
        start = Step("controller-0-start-kube-apiserver", "urn:start", "command:remote:Command", "10.43.0.20",
                     "ubuntu", "", "start", start_stdin, f"{start_triggers} {start_stdin}", set(),
                     triggers=start_triggers)
        ready = Step("controller-0-apiserver-ready", "urn:ready", "command:remote:Command", "10.43.0.20", "ubuntu",
                     "", "ready", "", "ready", {start.urn}, triggers="check", id_refs={start.urn})
        return [start, ready]

    replayer = Replayer(ssh)
    assert [r.status for r in replayer.replay(steps("unit v1", "files")).rows] == ["replayed", "replayed"]
    first_id = replayer.ids["urn:start"]["id"]
    assert [r.status for r in replayer.replay(steps("unit v1", "files")).rows] == ["unchanged", "unchanged"]
    # New connection or stdin only: an update, the same id, the readiness check stays.
    assert [r.status for r in replayer.replay(steps("unit v1", "new files")).rows] == ["replayed", "unchanged"]
    assert replayer.ids["urn:start"]["id"] == first_id
    # New triggers (a changed unit): replaced, a new id, and the check runs again.
    ran.clear()
    assert [r.status for r in replayer.replay(steps("unit v2", "new files")).rows] == ["replayed", "replayed"]
    assert ran == ["start", "ready"] and replayer.ids["urn:start"]["id"] != first_id
    # Forcing a step to run again (the idempotence check) replaces nothing.
    report = replayer.replay(steps("unit v2", "new files"), force=lambda step: step.urn == "urn:start")
    assert [r.status for r in report.rows] == ["replayed", "unchanged"]


def test_a_step_replaced_by_new_triggers_runs_its_old_delete_command_when_the_update_ends():
    """The old half of a create-first replacement goes last (step_generator.go GenerateDeletes): the removal step
    of a worker recreated on a new machine runs its old delete command after the new machine's steps."""
    ran, seen = [], []

    def ssh(host, user, key, command, stdin):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    def removal(machine: str) -> list[Step]:
        return [Step("controller-0-remove-worker-1", "urn:remove", "command:remote:Command", "10.43.0.20", "ubuntu",
                     "", "check", "", f"check {machine}", set(), delete=f"remove {machine}", triggers=machine)]

    replayer = Replayer(ssh, on_step=lambda row: seen.append((row.step, row.status)))
    replayer.replay(removal("i-old"))
    assert replayer.delete_absent(removal("i-old")).rows == [] and ran == ["check"]
    assert seen == [("controller-0-remove-worker-1", "running"), ("controller-0-remove-worker-1", "replayed")]
    replayer.replay(removal("i-new"))
    assert ran == ["check", "check"]
    deleted = replayer.delete_absent(removal("i-new"))
    assert ran[-1] == "remove i-old" and [r.step for r in deleted.rows] == ["controller-0-remove-worker-1"]
    assert replayer.deletes["urn:remove"]["delete"] == "remove i-new" and replayer.old_halves == []


def test_the_steps_after_the_pod_range_reader_are_all_that_wait_for_it():
    ready = _step("worker-0-node-ready")
    reader = _step("worker-0-read-pod-cidr", deps={ready.urn})
    routes = _step("worker-0-pod-network", deps={reader.urn})
    coredns = _step("controller-0-apply-coredns", deps={routes.urn})
    rbac = _step("controller-0-apply-rbac")
    assert _waiting_for(reader, [ready, reader, routes, coredns, rbac]) == {routes.urn, coredns.urn}


def _query(name: str, qtype: int = resolver.TYPE_A) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def test_the_resolver_answers_its_names_and_nxdomain_for_the_rest_over_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    threading.Thread(target=resolver.serve, args=("127.0.0.1", {"sts.amazonaws.com": "10.43.0.4"}, port),
                     daemon=True).start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)

        def ask(query: bytes) -> bytes:
            for _ in range(50):      # until the server thread has bound its socket
                client.sendto(query, ("127.0.0.1", port))
                try:
                    return client.recv(512)
                except (ConnectionRefusedError, socket.timeout):
                    continue
            raise AssertionError("no answer")

        known = ask(_query("STS.amazonaws.com"))
        ident, flags, _, answers = struct.unpack("!HHHH", known[:8])
        assert ident == 0x1234 and flags & 0x8000 and flags & 0x000F == 0 and answers == 1
        assert known[-4:] == bytes([10, 43, 0, 4])
        other_type = ask(_query("sts.amazonaws.com", qtype=28))
        assert struct.unpack("!HH", other_type[2:4] + other_type[6:8]) == (0x8580, 0)
        unknown = ask(_query("example.org"))
        assert struct.unpack("!H", unknown[2:4])[0] & 0x000F == resolver.NXDOMAIN


def test_machine_cgroups_sit_beside_the_lab_in_every_hierarchy_including_unified(monkeypatch, tmp_path):
    monkeypatch.setattr(machines, "_own_cgroups", lambda: {
        Path("/sys/fs/cgroup/memory"): "/agents/a1", Path("/sys/fs/cgroup/unified"): "/",
        Path("/sys/fs/cgroup/cpuset"): "/"})
    assert machines.machine_cgroups("k8sfs-t-worker-0") == [
        Path("/sys/fs/cgroup/cpuset/k8sfs-t-worker-0"), Path("/sys/fs/cgroup/memory/agents/a1/k8sfs-t-worker-0"),
        Path("/sys/fs/cgroup/unified/k8sfs-t-worker-0")]


def test_removing_a_machines_cgroups_goes_depth_first_and_reports_what_is_busy(tmp_path):
    top = tmp_path / "k8sfs-t-worker-0"
    (top / "payload" / "system.slice").mkdir(parents=True)
    (top / "supervisor").mkdir()
    assert machines.remove_machine_cgroups([top, tmp_path / "never-made"]) == []
    assert not top.exists()


def test_the_host_gets_the_kubelets_kernel_defaults_and_gives_back_exactly_what_it_had(monkeypatch, tmp_path):
    assert dict(machines.HOST_SYSCTLS) == {
        "vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10", "kernel.panic_on_oops": "1",
        "kernel.keys.root_maxkeys": "1000000", "kernel.keys.root_maxbytes": "25000000"}
    host = {"vm.overcommit_memory": "0", "vm.panic_on_oom": "0", "kernel.panic": "0", "kernel.panic_on_oops": "1",
            "kernel.keys.root_maxkeys": "1000000", "kernel.keys.root_maxbytes": "25000000",
            "fs.inotify.max_user_instances": "128", "fs.inotify.max_user_watches": "1048576"}
    for key, value in host.items():
        path = tmp_path / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    monkeypatch.setattr(machines, "_sysctl_path", lambda key: tmp_path / key.replace(".", "/"))
    previous = machines.prepare_host_sysctls()
    # Only what differed changed; a limit already above the lab's minimum is left alone.
    assert previous == {"vm.overcommit_memory": "0", "kernel.panic": "0", "fs.inotify.max_user_instances": "128"}
    assert machines.read_sysctl("kernel.panic") == "10"
    assert machines.read_sysctl("fs.inotify.max_user_instances") == "512"
    assert machines.read_sysctl("fs.inotify.max_user_watches") == "1048576"
    machines.restore_host_sysctls(previous)
    assert {key: machines.read_sysctl(key) for key in host} == host
