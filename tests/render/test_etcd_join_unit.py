"""The systemd drop-in a new etcd member starts with while it joins a running cluster (cluster/render/etcd.py).
systemd-analyze verify does not read drop-ins next to a unit given by path, so the unit as systemd merges it (the
drop-in's EnvironmentFile and its ExecStart in place of the unit's) is verified instead."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from cluster.render import etcd

MEMBERS = [etcd.Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(3)]


def merged(unit: str, drop_in: str) -> str:
    """The unit as systemd runs it with the drop-in: the last ExecStart wins, other [Service] lines are added."""
    lines = [line for line in drop_in.splitlines() if line and line != "[Service]" and line != "ExecStart="]
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    others = [line for line in lines if not line.startswith("ExecStart=")]
    unit = re.sub(r"^ExecStart=.*?(?<!\\)$\n", "\n".join([*others, exec_start]) + "\n", unit, flags=re.M | re.S)
    return unit


def test_the_join_drop_in_starts_the_same_member_with_the_existing_cluster_it_was_given():
    drop_in = etcd.etcd_join_drop_in(MEMBERS[1], "k8s-dev")
    command = re.search(r"^ExecStart=(/.+)$", drop_in, re.M)[1].split()
    flags = dict(a.removeprefix("--").split("=", 1) if "=" in a else (a.removeprefix("--"), None)
                 for a in command[1:])
    expected = dict(etcd.etcd_flags(MEMBERS[1], MEMBERS, "k8s-dev"))
    assert flags.pop("initial-cluster") == "${ETCD_JOIN_INITIAL_CLUSTER}"
    assert flags.pop("initial-cluster-state") == "existing"
    expected.pop("initial-cluster"), expected.pop("initial-cluster-state")
    assert flags == expected, "every other flag is the member's own"
    assert f"EnvironmentFile={etcd.JOIN_ENV}" in drop_in


def test_a_running_members_fingerprint_ignores_the_membership():
    tls = etcd.EtcdTls("ca", "server", "server-key", "peer", "peer-key")
    assert etcd.etcd_restart_files(MEMBERS[0], "k8s-dev", tls) == etcd.etcd_restart_files(MEMBERS[0], "k8s-dev", tls)
    three = etcd.etcd_files(MEMBERS[0], MEMBERS, "k8s-dev", tls)
    five = etcd.etcd_files(MEMBERS[0], [*MEMBERS, etcd.Member("etcd-3", "10.43.0.13")], "k8s-dev", tls)
    assert three != five                                   # the unit on disk follows the membership...
    restart_unit = etcd.etcd_restart_unit(MEMBERS[0], "k8s-dev")
    assert "--initial-cluster" not in restart_unit         # ...what a restart is decided on does not
    assert "--cert-file=/etc/etcd/pki/server.crt" in restart_unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_merged_with_the_join_drop_in_passes_systemd_analyze_verify(tmp_path):
    stub = tmp_path / "etcd"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    env = tmp_path / "join.env"
    env.write_text("ETCD_JOIN_INITIAL_CLUSTER=etcd-0=https://10.43.0.10:2380,etcd-1=https://10.43.0.11:2380\n")
    text = merged(etcd.etcd_unit(MEMBERS[1], MEMBERS, "k8s-dev"), etcd.etcd_join_drop_in(MEMBERS[1], "k8s-dev"))
    assert text.count("ExecStart=") == 1 and "--initial-cluster-state=existing" in text
    assert "--initial-cluster-state=new" not in text and "[Install]" in text
    text = text.replace("/usr/local/bin/etcd", str(stub)).replace(etcd.JOIN_ENV, str(env))
    unit = tmp_path / "etcd.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("printed", ["Member 8e9e05c52164694d added as learner to cluster cdf818194e3a8c32",
                                     "Member  aae89c4b8869ec4 added as learner to cluster  17bba4ef3df7a26"])
def test_the_start_script_reads_the_new_members_id_however_etcdctl_pads_it(printed):
    """etcdctl prints ids with %16x: an id with a leading zero nibble is padded with a space (seen in a test run)."""
    script = etcd.etcd_start_script(MEMBERS[2], MEMBERS, "k8s-dev", "0" * 32, new_machine=True)
    line = next(line.strip() for line in script.splitlines() if line.strip().startswith("id=$(sed"))
    out = subprocess.run(["bash", "-c", f'added="$1"\n{line}\necho "$id"', "-", printed + "\n\nETCD_NAME=x\n"],
                         capture_output=True, text=True).stdout.strip()
    assert out == printed.split()[1]
