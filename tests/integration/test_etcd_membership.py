"""etcd membership and rolling restarts on real etcd 3.6 processes, each member in a network namespace of its own at
its stack address, driven by the program's own rendered unit, start script, member-removal script and health check.

Each node's filesystem is the lab's: the script runs in a private mount namespace with the member's own directories
bound over /etc/etcd, /etc/systemd/system, /var/lib/etcd, /var/lib/k8s-from-scratch and /usr/local/bin (the etcd
release), and `systemctl`/`journalctl` are a small stand-in (SYSTEMCTL below) that runs the unit's ExecStart (or the
join drop-in's, with its EnvironmentFile) as a process, blocking on `restart` until the member answers its health
URL, as `Type=notify` does. Everything else (which path the script takes, member add/remove, the waits) is real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cluster.render import etcd as render
from cluster.render.common import digest, files_digest
from infra.certs import CA_SPECS, ETCD_CA, Host, etcd_peer_cert_name, etcd_server_cert_name
from locallab.netns import Lab, can_run
from tests.support.binaries import binaries_or_reason
from tests.support.pki import mint_cluster

pytestmark = pytest.mark.integration

TOKEN = "k8s-lab"
ALL = [render.Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(5)]
CLIENT_IP = "10.43.0.40"
BINARY = "etcd-3.6-lab-build"     # stands for the artifact digest in the start fingerprint

SYSTEMCTL = r'''#!/usr/bin/env python3
"""A stand-in for systemctl with one unit, etcd, run as a plain process (see the test module)."""
import os, re, signal, subprocess, sys, time, urllib.request
STATE = "/var/lib/k8s-from-scratch"
PID, LOG = f"{STATE}/etcd.pid", f"{STATE}/etcd.log"
DROP_IN = "/etc/systemd/system/etcd.service.d/join.conf"

def running():
    try:
        pid = int(open(PID).read())
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError):
        return None
    return None if state == "Z" else pid

def command():
    text = open("/etc/systemd/system/etcd.service").read().replace("\\\n", " ")
    env = {}
    if os.path.exists(DROP_IN):
        text = open(DROP_IN).read()
        for line in open(re.search(r"^EnvironmentFile=(.+)$", text, re.M)[1]):
            key, _, value = line.strip().partition("=")
            env[key] = value
    exec_start = re.findall(r"^ExecStart=(.+)$", text, re.M)[-1]
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], a) for a in exec_start.split()]

def stop():
    pid = running()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if not running():
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

def ready():
    try:
        return urllib.request.urlopen("http://127.0.0.1:2381/health", timeout=2).status == 200
    except OSError:
        return False

args = [a for a in sys.argv[1:] if not a.startswith("--quiet")]
verb = args[0]
if verb == "is-active":
    sys.exit(0 if running() else 3)
if verb in ("restart", "start"):
    if os.environ.get("ETM_REFUSE_START") == "1":      # a machine whose etcd cannot start (the test says when)
        sys.exit(1)
    stop()
    proc = subprocess.Popen(command(), stdout=open(LOG, "a"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    open(PID, "w").write(str(proc.pid))
    if "--no-block" not in args:
        while not ready():
            if proc.poll() is not None:
                sys.exit(1)
            time.sleep(0.2)
elif verb == "stop":
    stop()
elif verb == "status":
    print("etcd: " + ("active, pid %s" % running() if running() else "inactive"))
sys.exit(0)
'''
JOURNALCTL = "#!/bin/sh\ntail -n 30 /var/lib/k8s-from-scratch/etcd.log\n"


def _etcd_bin() -> str | None:
    """The etcd release the program pins, built from its Go module (tests/support/binaries.py); else Debian's etcd
    3.4 (etcd-server, etcd-client), linked into a folder of its own. K8S_FROM_SCRATCH_ETCD_BIN names another folder
    holding etcd and etcdctl."""
    chosen = os.environ.get("K8S_FROM_SCRATCH_ETCD_BIN")
    if chosen:
        return chosen
    built, why_not = binaries_or_reason(("etcd", "etcdctl"))
    if not why_not:
        return str(built["etcd"].parent)
    if shutil.which("etcd") and shutil.which("etcdctl"):
        linked = Path("/tmp/k8s-from-scratch-etm-debian-etcd")
        linked.mkdir(exist_ok=True)
        for tool in ("etcd", "etcdctl"):
            if not (linked / tool).exists():
                (linked / tool).symlink_to(shutil.which(tool))
        return str(linked)
    return None


def _older_than_3_6() -> bool:
    out = subprocess.run([f"{_etcd_bin()}/etcd", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"etcd Version: (\d+)\.(\d+)", out)
    return version is not None and (int(version[1]), int(version[2])) < (3, 6)


def _for_this_etcd(text: str) -> str:
    """The rendered text as is for etcd 3.6; for an older etcd without the flags 3.6 introduced (as
    test_etcd_cluster.py does), which it would refuse. Nothing else changes."""
    if not _older_than_3_6():
        return text
    return re.sub(r" ?\\?\n?\s*--(?:%s)=[^\s\\]+" % "|".join(render.SINCE_ETCD_3_6), "", text)


def _skip_reason() -> str | None:
    return can_run() or (None if _etcd_bin() else
                         "neither an etcd 3.6 build under /var/cache/k8s-from-scratch-lab/build/etcd-*/bin nor "
                         "Debian's etcd-server and etcd-client are installed")


class Nodes:
    """The lab's etcd machines: their directories, the rendered files and scripts run on them."""

    def __init__(self, lab: Lab, root: Path):
        self.lab, self.root = lab, root
        self.pki = mint_cluster(etcd=[Host(m.name, m.ip) for m in ALL], controllers=[], workers=[])
        self.shims = root / "shims"
        self.shims.mkdir()
        for name, text in (("systemctl", SYSTEMCTL), ("journalctl", JOURNALCTL)):
            (self.shims / name).write_text(text)
            (self.shims / name).chmod(0o755)
        self.client = root / "client"
        self.client.mkdir()
        for name, text in (("ca.crt", self.pki[ETCD_CA].cert_pem),
                           ("client.crt", self.pki["kube-apiserver-etcd-client"].cert_pem),
                           ("client.key", self.pki["kube-apiserver-etcd-client"].key_pem)):
            (self.client / name).write_text(text)

    def dirs(self, member: render.Member) -> dict[str, Path]:
        base = self.root / member.name
        return {"/etc/etcd": base / "etc-etcd", "/etc/systemd/system": base / "systemd",
                "/var/lib/etcd": base / "data", "/var/lib/k8s-from-scratch": base / "state"}

    def new_machine(self, member: render.Member) -> None:
        """A fresh machine at the member's address: empty directories (a replaced machine starts from nothing)."""
        for path in self.dirs(member).values():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, mode=0o700)
        if member.name not in self.lab.hosts:
            self.lab.add_host(member.name, member.ip)

    def tls(self, member: render.Member) -> render.EtcdTls:
        server, peer = self.pki[etcd_server_cert_name(member.name)], self.pki[etcd_peer_cert_name(member.name)]
        return render.EtcdTls(self.pki[ETCD_CA].cert_pem, server.cert_pem, server.key_pem, peer.cert_pem,
                              peer.key_pem)

    def write_files(self, member: render.Member, members: list[render.Member]) -> None:
        """What the etcd-files step writes: the rendered files, at the member's paths."""
        etc = self.dirs(member)
        for f in render.etcd_files(member, members, TOKEN, self.tls(member)):
            for node_dir, local in etc.items():
                if f.path.startswith(node_dir + "/"):
                    path = local / f.path.removeprefix(node_dir + "/")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(_for_this_etcd(f.content))
                    path.chmod(int(f.mode, 8))

    def run(self, member: render.Member, script: str, *, timeout: float = 400, env: str = ""
            ) -> subprocess.CompletedProcess:
        """Run a rendered script on the member's machine (`env`: assignments put before it)."""
        path = self.root / f"{member.name}-{time.monotonic_ns()}.sh"
        path.write_text(script)
        # /var/lib is a tmpfs of this mount namespace, so its mount points exist nowhere else; /etc/etcd is made
        # empty on the host if missing (as test_etcd_cluster.py does).
        binds = " && ".join(["mount -t tmpfs tmpfs /var/lib", "mkdir -p /var/lib/etcd /var/lib/k8s-from-scratch",
                             "mkdir -p /etc/etcd"]
                            + [f"mount --bind {local} {node}" for node, local in
                               [*self.dirs(member).items(), ("/usr/local/bin", _etcd_bin())]])
        return self.lab.exec(member.name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                             f"{binds} && PATH={self.shims}:$PATH {env} exec bash {path}", check=False,
                             timeout=timeout)

    def start(self, member: render.Member, members: list[render.Member], *, new_machine: bool = False,
              timeout_seconds: int = 120, env: str = "", check: bool = True) -> subprocess.CompletedProcess:
        """The member's etcd-files and start-etcd steps, as cluster/etcd.py renders them. `new_machine`: the program
        saw etcd machines running when the update began, not this member's (a raised count, a replacement)."""
        self.write_files(member, members)
        fingerprint = digest(files_digest(render.etcd_restart_files(member, TOKEN, self.tls(member))), BINARY)
        result = self.run(member, _for_this_etcd(render.etcd_start_script(
            member, members, TOKEN, fingerprint, new_machine=new_machine, timeout_seconds=timeout_seconds)),
            env=env)
        if check:
            assert result.returncode == 0, f"start-etcd on {member.name}:\n{result.stdout}\n{result.stderr}"
        return result

    def pid(self, member: render.Member) -> int | None:
        path = self.dirs(member)["/var/lib/k8s-from-scratch"] / "etcd.pid"
        if not path.exists():
            return None
        pid = int(path.read_text())
        return pid if Path(f"/proc/{pid}").exists() else None

    def machine_goes(self, member: render.Member) -> None:
        pid = self.pid(member)
        if pid:
            os.kill(pid, 9)

    def etcdctl(self, *args: str, members: list[render.Member], check: bool = True) -> subprocess.CompletedProcess:
        tls = ["--cacert", str(self.client / "ca.crt"), "--cert", str(self.client / "client.crt"),
               "--key", str(self.client / "client.key")]
        result = self.lab.exec("client", f"{_etcd_bin()}/etcdctl", "--endpoints", render.client_urls(members),
                               "--dial-timeout", "2s", "--command-timeout", "5s", *tls, *args, check=False)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def member_names(self, members: list[render.Member]) -> list[str]:
        out = self.etcdctl("member", "list", members=members).stdout
        return sorted(line.split(", ")[2] for line in out.splitlines() if ", started, " in line)

    def keys(self, members: list[render.Member]) -> set[str]:
        out = self.etcdctl("get", "/etm/", "--prefix", "--keys-only", members=members).stdout
        return {line for line in out.splitlines() if line}


class Writer(threading.Thread):
    """A client writing one new key after another through every member's endpoint; records what etcd acknowledged
    and the longest time between two acknowledged writes."""

    def __init__(self, nodes: Nodes, members: list[render.Member], name: str):
        super().__init__(daemon=True)
        self.nodes, self.members, self.prefix = nodes, members, f"/etm/{name}/"
        self.acknowledged: list[str] = []
        self.failures = 0
        self.longest_stall = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        last = time.monotonic()
        n = 0
        while not self.stopped.is_set():
            key = f"{self.prefix}{n:06d}"
            if self.nodes.etcdctl("put", key, str(n), members=self.members, check=False).returncode == 0:
                self.acknowledged.append(key)
                now = time.monotonic()
                self.longest_stall = max(self.longest_stall, now - last)
                last = now
                n += 1
            else:
                self.failures += 1
        self.longest_stall = max(self.longest_stall, time.monotonic() - last)

    def __enter__(self) -> "Writer":
        self.start()
        while not self.acknowledged:
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join(30)


def health(nodes: Nodes, members: list[render.Member]) -> str:
    """The etcd-health step, as rendered, on the first member."""
    result = nodes.run(members[0], render.etcd_health_script(members, timeout_seconds=60))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("etm")
    with Lab("etm") as lab:
        lab.add_host("client", CLIENT_IP)
        nodes = Nodes(lab, root)
        three = ALL[:3]
        for m in three:
            nodes.new_machine(m)
        # first creation: each start returns at once (a member cannot be ready before its peers start)
        started = time.monotonic()
        for m in three:
            assert "first start of a new cluster, not waiting" in nodes.start(m, three).stdout
        print(f"\nfirst creation: 3 start steps took {time.monotonic() - started:.1f}s")
        health(nodes, three)
        yield nodes


def test_a_first_creation_forms_a_cluster_and_rerunning_the_steps_restarts_nothing(nodes):
    three = ALL[:3]
    assert nodes.member_names(three) == ["etcd-0", "etcd-1", "etcd-2"]
    pids = [nodes.pid(m) for m in three]
    for m in three:
        assert "inputs unchanged since it was started, not restarting" in nodes.start(m, three).stdout
    assert [nodes.pid(m) for m in three] == pids


def test_3_to_5_to_3_members_keeps_every_key_and_quorum(nodes):
    three, five = ALL[:3], ALL[:5]
    for i in range(200):
        nodes.etcdctl("put", f"/etm/scale/{i:04d}", str(i), members=three)
    running = {m.name: nodes.pid(m) for m in three}
    with Writer(nodes, three, "during-scale") as writer:
        # etcd.count 3 -> 5: the running members' steps run again with the 5-member rendering, then each new
        # member joins, one after the other
        for m in three:
            assert "not restarting" in nodes.start(m, five).stdout
        for m in five[3:]:
            nodes.new_machine(m)
            out = nodes.start(m, five, new_machine=True).stdout
            assert "joining the running cluster" in out
            assert f"added {m.name} (" in out and "as a learner" in out and f"promoted {m.name} (" in out
        health(nodes, five)
        assert nodes.member_names(five) == [m.name for m in five]
        assert {m.name: nodes.pid(m) for m in three} == running, "a running member restarted"
        # etcd.count 5 -> 3: the removal steps run on etcd-0, highest first, then the machines go
        for m in reversed(five[3:]):
            result = nodes.run(five[0], render.etcd_member_remove_script(m, via=five[0]))
            assert result.returncode == 0 and f"removed etcd member {m.name}" in result.stdout, result.stderr
            nodes.machine_goes(m)
        for m in three:
            assert "not restarting" in nodes.start(m, three).stdout
        health(nodes, three)
    assert nodes.member_names(three) == ["etcd-0", "etcd-1", "etcd-2"]
    print(f"\n3 -> 5 -> 3: {len(writer.acknowledged)} writes acknowledged, {writer.failures} failed attempts, "
          f"longest write stall {writer.longest_stall:.2f}s")
    keys = nodes.keys(three)
    assert {f"/etm/scale/{i:04d}" for i in range(200)} <= keys
    assert set(writer.acknowledged) <= keys
    assert writer.longest_stall < 10


def test_a_replaced_member_rejoins_and_every_key_is_kept(nodes):
    three = ALL[:3]
    for i in range(100):
        nodes.etcdctl("put", f"/etm/replace/{i:04d}", str(i), members=three)
    nodes.machine_goes(three[1])
    nodes.new_machine(three[1])            # the new machine: no data, no fingerprint, same address
    out = nodes.start(three[1], three, new_machine=True).stdout
    assert "joining the running cluster" in out and "removing member" in out
    health(nodes, three)
    assert nodes.member_names(three) == ["etcd-0", "etcd-1", "etcd-2"]
    only_new = nodes.etcdctl("get", "/etm/replace/", "--prefix", "--keys-only", "--consistency=s",
                             members=[three[1]]).stdout.split()
    assert len(only_new) == 100, "the new member holds every key"


def test_a_rolling_restart_for_renewed_certificates_loses_no_acknowledged_write(nodes):
    three = ALL[:3]
    cas = {ca.name: nodes.pki[ca.name] for ca in CA_SPECS}
    renewed = mint_cluster(etcd=[Host(m.name, m.ip) for m in ALL], controllers=[], workers=[], cas=cas)
    before = {m.name: nodes.pid(m) for m in three}
    restarts = []
    with Writer(nodes, three, "during-restart") as writer:
        time.sleep(2)
        nodes.pki = {**nodes.pki, **{k: v for k, v in renewed.items() if k.startswith("etcd-")}}
        for m in three:                          # the start steps run one after the other
            started = time.monotonic()
            out = nodes.start(m, three).stdout
            restarts.append(time.monotonic() - started)
            assert f"etcd member {m.name} is healthy" in out
        time.sleep(2)
    after = {m.name: nodes.pid(m) for m in three}
    assert all(after[n] != before[n] for n in after), "every member restarted"
    health(nodes, three)
    keys = nodes.keys(three)
    lost = [k for k in writer.acknowledged if k not in keys]
    print(f"\nrolling restart of 3 members: steps took {', '.join(f'{s:.1f}s' for s in restarts)}; "
          f"{len(writer.acknowledged)} writes acknowledged, {writer.failures} failed attempts, "
          f"longest write stall {writer.longest_stall:.2f}s")
    assert not lost, f"{len(lost)} acknowledged writes lost"
    assert writer.longest_stall < 10


def test_a_member_whose_machine_outlived_a_failed_up_joins_instead_of_starting_a_cluster_of_its_own(nodes):
    """etcd.count raised, but the first `pulumi up` failed after etcd-3's machine was made and before it was added:
    the next one sees the machine running (so the program does not tell the step it joins). The node finds the
    running cluster does not list it, and joins."""
    three, five = ALL[:3], ALL[:5]
    nodes.new_machine(five[3])
    out = nodes.start(five[3], five[:4], new_machine=False).stdout
    assert "joining the running cluster" in out and "first start of a new cluster" not in out
    health(nodes, five[:4])
    assert nodes.member_names(five[:4]) == [m.name for m in five[:4]]
    result = nodes.run(five[0], render.etcd_member_remove_script(five[3], via=five[0]))
    assert result.returncode == 0, result.stderr
    nodes.machine_goes(five[3])
    health(nodes, three)


def test_n5_a_replaced_member_without_a_quorum_to_join_waits_and_fails_and_never_starts_a_cluster_of_its_own(nodes):
    """Review r2 N5: the machine of etcd-1 is replaced while etcd-0 and etcd-2 are down (an incident). Its start step
    must not start etcd (a new cluster in etcd-1's place, with an empty log, crash-loops the member and writes the
    stamp that makes the next update skip it). It waits for a quorum within its bound, fails, and joins once the
    others are back."""
    three = ALL[:3]
    for m in (three[0], three[2]):
        nodes.machine_goes(m)
    nodes.machine_goes(three[1])
    nodes.new_machine(three[1])
    started = time.monotonic()
    result = nodes.start(three[1], three, new_machine=True, timeout_seconds=15, check=False)
    waited = time.monotonic() - started
    assert result.returncode != 0, result.stdout
    assert "no etcd cluster answers" in result.stderr and "first start of a new cluster" not in result.stdout
    assert waited >= 15, f"gave up after {waited:.0f}s"
    assert nodes.pid(three[1]) is None, "etcd was started without a cluster to join"
    assert not (nodes.dirs(three[1])["/var/lib/k8s-from-scratch"] / "started" / "etcd").exists()
    # the others come back (their machines restart etcd from their data): the next update's step joins
    for m in (three[0], three[2]):
        assert nodes.run(m, "systemctl start --no-block etcd").returncode == 0
    out = nodes.start(three[1], three, new_machine=True).stdout
    assert "joining the running cluster" in out and "removing member" in out
    health(nodes, three)
    assert nodes.member_names(three) == ["etcd-0", "etcd-1", "etcd-2"]


def test_n15_a_member_added_but_not_started_does_not_count_towards_the_quorum(nodes):
    """Review r2 N15: while a new member is added and not yet started, the cluster must survive one more member
    down. Added as a voter it would need 3 of 4; as a learner, 2 of 3."""
    three, four = ALL[:3], ALL[:4]
    nodes.new_machine(four[3])
    result = nodes.start(four[3], four, new_machine=True, env="ETM_REFUSE_START=1", check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    listed = json.loads(nodes.etcdctl("member", "list", "-w", "json", members=three).stdout)["members"]
    added = [m for m in listed if m.get("peerURLs") == [render.peer_url(four[3])]]
    assert len(added) == 1, listed
    nodes.machine_goes(three[2])
    try:
        # If the member that went was the leader, the two left elect another first (an election timeout or more on
        # a loaded host): a write may time out meanwhile. With the new member a voter, no write would ever pass.
        deadline = time.monotonic() + 30
        while (put := nodes.etcdctl("put", "/etm/n15", "kept", members=three[:2], check=False)).returncode != 0 \
                and time.monotonic() < deadline:
            time.sleep(1)
        assert put.returncode == 0, f"the cluster lost its quorum with one member down: {put.stderr}"
        assert added[0].get("isLearner") is True and "as a learner" in result.stdout, listed
    finally:
        assert nodes.run(three[2], "systemctl start --no-block etcd").returncode == 0
        removed = nodes.run(three[0], render.etcd_member_remove_script(four[3], via=three[0]))
        assert removed.returncode == 0, removed.stdout + removed.stderr
    health(nodes, three)
