"""Snapshots and restore on a real 3-member etcd 3.6 cluster: the program's snapshot script saves, verifies and
prunes; then every member's data is destroyed and the program's restore script, run on every member with one
snapshot, brings every key back. Members run from the program's rendered flags, with certificates minted from its
PKI table, each in a network namespace of its own (tag "bkp", so this never collides with test_etcd_cluster)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from cluster.render import etcd as render
from cluster.render import etcd_backup
from infra.certs import ETCD_CA, Host, etcd_peer_cert_name, etcd_server_cert_name
from locallab.netns import Lab, can_run
from tests.support.binaries import binaries_or_reason
from tests.support.pki import mint_cluster

pytestmark = pytest.mark.integration

MEMBERS = [render.Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(3)]
ENDPOINTS = render.client_urls(MEMBERS)
CLUSTER = "k8s-lab"
KEEP = 2
KEYS = {f"/registry/lab/key-{i:03d}": f"value-{i}" for i in range(100)}
ETCD_TOOLS = ("etcd", "etcdctl", "etcdutl")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = can_run()
    if reason:
        pytest.skip(reason)
    tools, why = binaries_or_reason(ETCD_TOOLS)
    if why:
        pytest.skip(why)
    bin_dir = tools["etcd"].parent
    root = tmp_path_factory.mktemp("etcd-backup")
    pki = mint_cluster(etcd=[Host(m.name, m.ip) for m in MEMBERS], controllers=[Host("controller-0", "10.43.0.20")],
                       workers=[Host("worker-0", "10.43.0.30")])
    for m in MEMBERS:
        pki_dir = root / m.name / "pki"
        pki_dir.mkdir(parents=True)
        server, peer = pki[etcd_server_cert_name(m.name)], pki[etcd_peer_cert_name(m.name)]
        for name, text in (("ca.crt", pki[ETCD_CA].cert_pem), ("server.crt", server.cert_pem),
                           ("server.key", server.key_pem), ("peer.crt", peer.cert_pem), ("peer.key", peer.key_pem)):
            (pki_dir / name).write_text(text)
            (pki_dir / name).chmod(0o600)
        (root / m.name / "data").mkdir(mode=0o700)
    client = root / "client"
    client.mkdir()
    for name, text in (("ca.crt", pki[ETCD_CA].cert_pem),
                       ("client.crt", pki["kube-apiserver-etcd-client"].cert_pem),
                       ("client.key", pki["kube-apiserver-etcd-client"].key_pem)):
        (client / name).write_text(text)
    # The restore script stops and starts etcd with systemctl; here the test runs the members, so systemctl only
    # records what it was asked.
    stubs = root / "stubs"
    stubs.mkdir()
    (stubs / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {root}/systemctl.log\n')
    (stubs / "systemctl").chmod(0o755)
    with Lab("bkp") as netns:
        for m in MEMBERS:
            netns.add_host(m.name, m.ip)
        procs = {m.name: start_member(netns, m, root, bin_dir) for m in MEMBERS}
        yield netns, procs, root, client, bin_dir
        for p in procs.values():
            p.kill()


def paths(root: Path, member: render.Member, bin_dir: Path) -> etcd_backup.BackupPaths:
    return etcd_backup.BackupPaths(pki_dir=str(root / member.name / "pki"), data_dir=str(root / member.name / "data"),
                                   snapshot_dir=str(root / member.name / "snapshots"), bin_dir=str(bin_dir),
                                   owner="root")


def start_member(netns: Lab, member: render.Member, root: Path, bin_dir: Path) -> subprocess.Popen:
    flags = render.etcd_flags(member, MEMBERS, CLUSTER, pki_dir=str(root / member.name / "pki"),
                              data_dir=str(root / member.name / "data"))
    args = [f"--{k}" if v is None else f"--{k}={v}" for k, v in flags]
    log = open(root / f"{member.name}.log", "a")
    return netns.popen(member.name, str(bin_dir / "etcd"), *args, stdout=log, stderr=subprocess.STDOUT)


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def etcdctl(netns: Lab, client: Path, bin_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return netns.exec("etcd-0", str(bin_dir / "etcdctl"), "--endpoints", ENDPOINTS, "--dial-timeout", "3s",
                      "--command-timeout", "10s", "--cacert", str(client / "ca.crt"), "--cert",
                      str(client / "client.crt"), "--key", str(client / "client.key"), *args, check=check)


def wait_healthy(netns: Lab, client: Path, bin_dir: Path, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = etcdctl(netns, client, bin_dir, "endpoint", "health", check=False)
        if result.returncode == 0:
            return result.stdout + result.stderr
        if time.monotonic() > deadline:
            raise AssertionError(f"etcd not healthy: {result.stdout}{result.stderr}")
        time.sleep(1)


def read_all(netns: Lab, client: Path, bin_dir: Path) -> dict[str, str]:
    out = etcdctl(netns, client, bin_dir, "get", "/registry/lab/", "--prefix", "-w", "json").stdout
    import base64
    kvs = json.loads(out).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in kvs}


def run_snapshot(netns: Lab, root: Path, member: render.Member, bin_dir: Path, *, keep: int = KEEP,
                 keep_bytes: int = 4 * 1024 ** 3, snapshot_dir: Path | None = None) -> subprocess.CompletedProcess:
    script = root / f"snapshot-{member.name}.sh"
    where = paths(root, member, bin_dir)
    if snapshot_dir:
        where = etcd_backup.BackupPaths(**{**where.__dict__, "snapshot_dir": str(snapshot_dir)})
    script.write_text(etcd_backup.snapshot_script(member, keep, None, where, keep_bytes=keep_bytes))
    return netns.exec(member.name, "bash", str(script), check=False)


def test_snapshots_verify_are_private_and_only_the_newest_are_kept(lab):
    netns, _, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    for key, value in KEYS.items():
        etcdctl(netns, client, bin_dir, "put", key, value)
    for member in MEMBERS:
        for _ in range(KEEP + 1):
            result = run_snapshot(netns, root, member, bin_dir)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "saved " in result.stdout
            time.sleep(1.1)     # snapshot names carry the second they were taken
        folder = root / member.name / "snapshots"
        kept = sorted(folder.iterdir())
        assert len(kept) == KEEP, kept
        assert all(p.name.startswith(f"{member.name}-") and p.suffix == ".db" for p in kept)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
        assert "removed " in result.stdout
        status = json.loads(subprocess.run([str(bin_dir / "etcdutl"), "snapshot", "status", str(kept[-1]), "-w",
                                            "json"], check=True, capture_output=True, text=True).stdout)
        assert status["totalKey"] >= len(KEYS)


def test_a_snapshot_that_cannot_be_taken_fails_and_leaves_nothing(lab):
    netns, _, root, _, bin_dir = lab
    member = MEMBERS[0]
    before = sorted((root / member.name / "snapshots").iterdir())
    broken = etcd_backup.BackupPaths(**{**paths(root, member, bin_dir).__dict__, "pki_dir": str(root / "nowhere")})
    script = root / "snapshot-broken.sh"
    script.write_text(etcd_backup.snapshot_script(member, KEEP, None, broken))
    result = netns.exec(member.name, "bash", str(script), check=False)
    assert result.returncode != 0
    assert sorted((root / member.name / "snapshots").iterdir()) == before


def test_every_key_is_back_after_every_members_data_is_destroyed_and_restored(lab):
    netns, procs, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    assert read_all(netns, client, bin_dir) == KEYS
    snapshot = sorted((root / "etcd-0" / "snapshots").iterdir())[-1]
    old_cluster = json.loads(etcdctl(netns, client, bin_dir, "endpoint", "status", "-w", "json").stdout)
    # Written after the snapshot: a restore takes the cluster back to the snapshot, so this key must be gone.
    etcdctl(netns, client, bin_dir, "put", "/registry/lab/after-snapshot", "x")

    stop_all(procs)
    for m in MEMBERS:
        shutil.rmtree(root / m.name / "data")
    for m in MEMBERS:
        # The operator copies the one snapshot to every member; each runs its own rendered restore script.
        copy = root / m.name / "restore-from.db"
        shutil.copy(snapshot, copy)
        script = root / f"restore-{m.name}.sh"
        script.write_text(etcd_backup.restore_script(m, MEMBERS, CLUSTER, paths(root, m, bin_dir)))
        result = netns.exec(m.name, "env", f"PATH={root}/stubs:/usr/bin:/bin", "bash", str(script), str(copy),
                            check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        data = root / m.name / "data"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert (data / "member" / "snap" / "db").is_file()
    timers = " ".join(etcd_backup.TIMERS)
    assert (root / "systemctl.log").read_text().splitlines() == [f"stop {timers}", "stop etcd",
                                                                 "start --no-block etcd"] * 3
    for m in MEMBERS:
        procs[m.name] = start_member(netns, m, root, bin_dir)

    assert wait_healthy(netns, client, bin_dir).count("is healthy") == 3
    assert read_all(netns, client, bin_dir) == KEYS
    members = etcdctl(netns, client, bin_dir, "member", "list").stdout
    for m in MEMBERS:
        assert f"{m.name}, https://{m.ip}:2380, https://{m.ip}:2379" in members
    new_cluster = json.loads(etcdctl(netns, client, bin_dir, "endpoint", "status", "-w", "json").stdout)
    # A new cluster (new token): members of the old one could never rejoin it by mistake.
    assert {s["Status"]["header"]["cluster_id"] for s in new_cluster} != \
        {s["Status"]["header"]["cluster_id"] for s in old_cluster}
    assert len({s["Status"]["header"]["cluster_id"] for s in new_cluster}) == 1
    # Review r2 N4: revisions move a long way ahead and what lies before is compacted, so a client's watch or cache
    # from after the snapshot can never meet a resource version handed out again for another object.
    old_revision = max(s["Status"]["header"]["revision"] for s in old_cluster)
    new_revision = min(s["Status"]["header"]["revision"] for s in new_cluster)
    assert new_revision >= old_revision + etcd_backup.BUMP_REVISION
    stale = etcdctl(netns, client, bin_dir, "get", "/registry/lab/key-000", f"--rev={old_revision}", check=False)
    assert stale.returncode != 0 and "compacted" in stale.stderr, stale.stdout + stale.stderr
    etcdctl(netns, client, bin_dir, "put", "/registry/lab/after-restore", "y")
    assert etcdctl(netns, client, bin_dir, "get", "/registry/lab/after-restore", "--print-value-only").stdout.strip() == "y"


BUCKET = "k8s-lab-etcd-0123456789abcdef"


def mint_s3_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for the bucket's virtual-hosted S3 name, for the stand-in S3 to serve."""
    from simulator.realistic_tls import (cert_request_outputs, locally_signed_cert_outputs,
                                             private_key_outputs, self_signed_cert_outputs)
    ca_key = private_key_outputs({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    ca = self_signed_cert_outputs({"privateKeyPem": ca_key, "subject": {"commonName": "lab S3 CA"},
                                   "validityPeriodHours": 24, "isCaCertificate": True,
                                   "allowedUses": ["cert_signing", "crl_signing", "digital_signature"]})["certPem"]
    key = private_key_outputs({"algorithm": "ECDSA", "ecdsaCurve": "P256"})["privateKeyPem"]
    csr = cert_request_outputs({"privateKeyPem": key, "subject": {"commonName": "s3"},
                                "dnsNames": [f"{BUCKET}.s3.eu-west-1.amazonaws.com"]})["certRequestPem"]
    cert = locally_signed_cert_outputs({"certRequestPem": csr, "caCertPem": ca, "caPrivateKeyPem": ca_key,
                                        "validityPeriodHours": 24,
                                        "allowedUses": ["digital_signature", "server_auth"]})["certPem"]
    paths = folder / "ca.crt", folder / "s3.crt", folder / "s3.key"
    for path, text in zip(paths, (ca, cert, key)):
        path.write_text(text)
    return paths


def test_a_snapshot_reaches_s3_signed_with_the_instance_role_credentials_from_imdsv2(lab):
    """The program's upload, for real against stand-ins in the member's namespace: IMDSv2 at 169.254.169.254 and
    an S3 endpoint that checks the SigV4 signature, the payload digest and the session token (s3_standin.py)."""
    import sys
    netns, _, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    member = MEMBERS[1]
    state = root / "s3"
    state.mkdir()
    ca, cert, key = mint_s3_certificate(state)
    netns.exec(member.name, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
    server = netns.popen(member.name, sys.executable, str(Path(__file__).with_name("s3_standin.py")), str(state),
                         str(cert), str(key), stdout=open(state / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (state / "ready").exists():
            assert server.poll() is None and time.monotonic() < deadline, (state / "server.log").read_text()
            time.sleep(0.2)
        hosts = state / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {BUCKET}.s3.eu-west-1.amazonaws.com\n")
        script = root / "snapshot-to-s3.sh"
        script.write_text(etcd_backup.snapshot_script(member, KEEP, BUCKET, paths(root, member, bin_dir)))
        # A private mount namespace: the bucket's name resolves to the stand-in, whose CA curl trusts.
        run = (f"mount --bind {hosts} /etc/hosts && CURL_CA_BUNDLE={ca} bash {script}")
        result = netns.exec(member.name, "unshare", "--mount", "--propagation", "private", "sh", "-c", run,
                            check=False)
        log = (state / "requests.log").read_text() if (state / "requests.log").exists() else ""
        assert result.returncode == 0, result.stdout + result.stderr + log
        newest = sorted((root / member.name / "snapshots").iterdir())[-1]
        uploaded = state / "objects" / etcd_backup.S3_PREFIX / member.name / newest.name
        assert uploaded.read_bytes() == newest.read_bytes()
        assert f"s3 200 {BUCKET}.s3.eu-west-1.amazonaws.com/{etcd_backup.S3_PREFIX}/{member.name}/" in log
        assert f"uploaded {newest} to s3://{BUCKET}/" in result.stdout
        # The role's keys never reach a command line: they travel to curl on its stdin.
        assert "lab/secret/key" not in script.read_text()
    finally:
        server.kill()
        server.wait()


def test_the_s3_stand_in_refuses_a_wrong_signature(tmp_path):
    """The stand-in's check can fail: one changed character of the secret key gives another signature."""
    from tests.integration import s3_standin
    headers = {"host": f"{BUCKET}.s3.eu-west-1.amazonaws.com", "x-amz-date": "20260101T000000Z",
               "x-amz-content-sha256": "0" * 64, "x-amz-security-token": "t"}
    signed = sorted(headers)
    right = s3_standin.expected_signature("PUT", "/a", headers, signed, "0" * 64, "20260101T000000Z")
    original = s3_standin.CREDENTIALS["SecretAccessKey"]
    try:
        s3_standin.CREDENTIALS["SecretAccessKey"] = original[:-1] + "4"
        assert s3_standin.expected_signature("PUT", "/a", headers, signed, "0" * 64, "20260101T000000Z") != right
    finally:
        s3_standin.CREDENTIALS["SecretAccessKey"] = original


def db_size(netns: Lab, client: Path, bin_dir: Path, member: render.Member) -> tuple[int, int]:
    status = json.loads(etcdctl(netns, client, bin_dir, "endpoint", "status", "-w", "json").stdout)
    mine = next(e for e in status if e["Endpoint"].startswith(f"https://{member.ip}:"))["Status"]
    return mine["dbSize"], mine.get("dbSizeInUse", mine["dbSize"])


def test_n9_snapshots_are_pruned_to_fit_their_byte_budget(lab):
    netns, _, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    member = MEMBERS[1]
    folder = root / "budget"
    size, _ = db_size(netns, client, bin_dir, member)
    for _ in range(3):
        result = run_snapshot(netns, root, member, bin_dir, keep=10, keep_bytes=int(size * 2.5),
                              snapshot_dir=folder)
        assert result.returncode == 0, result.stdout + result.stderr
        time.sleep(1.1)
    kept = sorted(folder.iterdir())
    assert len(kept) == 2, (kept, size)            # 10 allowed by count, 2 by bytes
    assert sum(p.stat().st_size for p in kept) <= size * 2.5


def test_n9_a_snapshot_needs_room_for_twice_the_database_and_older_ones_make_way(lab):
    """Review r2 N9: snapshots share the disk etcd writes to; one must never fill it."""
    netns, _, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    member = MEMBERS[2]
    size, _ = db_size(netns, client, bin_dir, member)
    small = root / "small-disk"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size * 3.5)}", "tmpfs", str(small)], check=True)
    try:
        for _ in range(2):
            result = run_snapshot(netns, root, member, bin_dir, keep=10, snapshot_dir=small)
            assert result.returncode == 0, result.stdout + result.stderr
            time.sleep(1.1)
        # two snapshots leave 1.5 databases free: the oldest makes way for the third
        result = run_snapshot(netns, root, member, bin_dir, keep=10, snapshot_dir=small)
        assert result.returncode == 0 and "to make room" in result.stdout, result.stdout + result.stderr
        assert len(list(small.iterdir())) == 2
        # a disk that cannot hold twice the database even when emptied: nothing is saved, the newest stays
        (small / "filler").write_bytes(b"x" * size)
        result = run_snapshot(netns, root, member, bin_dir, keep=10, snapshot_dir=small)
        assert result.returncode != 0 and "no snapshot of" in result.stderr, result.stdout + result.stderr
        assert len([p for p in small.iterdir() if p.suffix == ".db"]) == 1
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_n9_a_member_whose_database_is_mostly_free_pages_is_defragmented(lab):
    netns, _, root, client, bin_dir = lab
    wait_healthy(netns, client, bin_dir)
    member = MEMBERS[0]
    blob = "x" * 100_000
    for i in range(60):
        etcdctl(netns, client, bin_dir, "put", f"/registry/frag/{i:03d}", blob)
    etcdctl(netns, client, bin_dir, "del", "/registry/frag/", "--prefix")
    revision = json.loads(etcdctl(netns, client, bin_dir, "endpoint", "status", "-w", "json").stdout)[0]
    etcdctl(netns, client, bin_dir, "compaction", "--physical", str(revision["Status"]["header"]["revision"]))
    # The pages the compaction freed count as free once the backend commits its next batch (bbolt's statistics
    # are taken at a commit): wait for it rather than read it at once.
    deadline = time.monotonic() + 30
    size, in_use = db_size(netns, client, bin_dir, member)
    while size - in_use <= 4_000_000 and time.monotonic() < deadline:
        etcdctl(netns, client, bin_dir, "put", "/registry/frag-commit", "x")
        time.sleep(1)
        size, in_use = db_size(netns, client, bin_dir, member)
    assert size - in_use > 4_000_000, (size, in_use)
    script = root / "defrag.sh"
    script.write_text(etcd_backup.defrag_script(member, paths(root, member, bin_dir), min_bytes=128 * 1024 ** 2))
    result = netns.exec(member.name, "bash", str(script), check=False)
    assert result.returncode == 0 and "not worth a defragmentation" in result.stdout, result.stdout + result.stderr
    script.write_text(etcd_backup.defrag_script(member, paths(root, member, bin_dir), min_bytes=1024 ** 2))
    result = netns.exec(member.name, "bash", str(script), check=False)
    assert result.returncode == 0 and f"{member.name} defragmented" in result.stdout, result.stdout + result.stderr
    after, _ = db_size(netns, client, bin_dir, member)
    assert after < size - 4_000_000, (size, after)
