"""A real 3-member etcd cluster, started from the program's own rendered flags with certificates minted from the
program's own PKI table, each member in a network namespace of its own at its stack address."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cluster.render import etcd as render
from infra.certs import ETCD_CA, KUBERNETES_CA, Host, etcd_peer_cert_name, etcd_server_cert_name
from locallab.netns import Lab, can_run
from tests.support.pki import mint_cluster

pytestmark = pytest.mark.integration

MEMBERS = [render.Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(3)]
ENDPOINTS = render.client_urls(MEMBERS)


def _skip_reason() -> str | None:
    reason = can_run()
    if reason:
        return reason
    for tool in ("etcd", "etcdctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: etcd-server, etcd-client)"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("etcd")
    pki = mint_cluster(etcd=[Host(m.name, m.ip) for m in MEMBERS], controllers=[Host("controller-0", "10.43.0.20")],
                       workers=[Host("worker-0", "10.43.0.30")])
    with Lab("etcd") as lab:
        procs = {}
        for m in MEMBERS:
            lab.add_host(m.name, m.ip)
            pki_dir = root / m.name / "pki"
            pki_dir.mkdir(parents=True)
            server, peer = pki[etcd_server_cert_name(m.name)], pki[etcd_peer_cert_name(m.name)]
            for name, text in (("ca.crt", pki[ETCD_CA].cert_pem), ("server.crt", server.cert_pem),
                               ("server.key", server.key_pem), ("peer.crt", peer.cert_pem),
                               ("peer.key", peer.key_pem)):
                (pki_dir / name).write_text(text)
                (pki_dir / name).chmod(0o600)
            data = root / m.name / "data"
            data.mkdir(mode=0o700)
            procs[m.name] = start_member(lab, m, pki_dir, data, root)
        client = root / "client"
        client.mkdir()
        for name, text in (("ca.crt", pki[ETCD_CA].cert_pem),
                           ("apiserver.crt", pki["kube-apiserver-etcd-client"].cert_pem),
                           ("apiserver.key", pki["kube-apiserver-etcd-client"].key_pem),
                           ("admin.crt", pki["admin"].cert_pem), ("admin.key", pki["admin"].key_pem),
                           ("kubernetes-ca.crt", pki[KUBERNETES_CA].cert_pem)):
            (client / name).write_text(text)
        yield lab, procs, root, client
        for p in procs.values():
            p.kill()


def local_etcd_is_older_than_3_6() -> bool:
    out = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"etcd Version: (\d+)\.(\d+)", out)
    return version is not None and (int(version[1]), int(version[2])) < (3, 6)


def start_member(lab: Lab, member: render.Member, pki_dir: Path, data: Path, root: Path) -> subprocess.Popen:
    # Debian's etcd (3.4) refuses the flags 3.6 introduced; the rest of the command line is exactly the program's.
    skipped = render.SINCE_ETCD_3_6 if local_etcd_is_older_than_3_6() else ()
    args = [f"--{k}" if v is None else f"--{k}={v}" for k, v in
            render.etcd_flags(member, MEMBERS, "k8s-lab", pki_dir=str(pki_dir), data_dir=str(data)) if k not in skipped]
    log = open(root / f"{member.name}.log", "a")
    return lab.popen(member.name, "etcd", *args, stdout=log, stderr=subprocess.STDOUT)


def etcdctl(lab: Lab, host: str, client: Path, *args: str, endpoints: str = ENDPOINTS, cert: str = "apiserver",
            check: bool = True) -> subprocess.CompletedProcess:
    tls = ["--cacert", str(client / "ca.crt")]
    if cert:
        tls += ["--cert", str(client / f"{cert}.crt"), "--key", str(client / f"{cert}.key")]
    return lab.exec(host, "env", "ETCDCTL_API=3", "etcdctl", "--endpoints", endpoints, "--dial-timeout", "3s",
                    "--command-timeout", "5s", *tls, *args, check=check)


def wait_healthy(lab: Lab, client: Path, endpoints: str = ENDPOINTS, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = etcdctl(lab, "etcd-0", client, "endpoint", "health", endpoints=endpoints, check=False)
        if result.returncode == 0:
            return result.stdout + result.stderr
        if time.monotonic() > deadline:
            raise AssertionError(f"etcd not healthy: {result.stdout}{result.stderr}")
        time.sleep(1)


def test_members_form_a_healthy_cluster_over_mutual_tls(cluster):
    lab, _, _, client = cluster
    out = wait_healthy(lab, client)
    assert out.count("is healthy") == 3
    members = etcdctl(lab, "etcd-0", client, "member", "list").stdout
    for m in MEMBERS:
        assert f"{m.name}, https://{m.ip}:2380, https://{m.ip}:2379" in members


def test_the_rendered_health_check_passes_on_a_member(cluster):
    """The very script the program runs on etcd-0, with its paths bound to this lab's files."""
    lab, _, root, _ = cluster
    wait_healthy(lab, cluster[3])
    script = root / "health.sh"
    script.write_text(render.etcd_health_script(MEMBERS, timeout_seconds=30))
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    etcdctl_wrapper = bin_dir / "etcdctl"
    # etcd 3.4's etcdctl (Debian's) still needs ETCDCTL_API=3; the real path avoids calling this wrapper again.
    etcdctl_wrapper.write_text(f'#!/bin/sh\nexec env ETCDCTL_API=3 {shutil.which("etcdctl")} "$@"\n')
    etcdctl_wrapper.chmod(0o755)
    mounts = (f"mkdir -p /etc/etcd/pki && mount --bind {root}/etcd-0/pki /etc/etcd/pki && "
              f"mount --bind {bin_dir} /usr/local/bin && bash {script}")
    result = lab.exec("etcd-0", "unshare", "--mount", "--propagation", "private", "sh", "-c", mounts, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "etcd-2" in result.stdout


def test_reads_and_writes_survive_one_member_stopped_and_it_rejoins(cluster):
    lab, procs, root, client = cluster
    wait_healthy(lab, client)
    etcdctl(lab, "etcd-0", client, "put", "/lab/before", "1")
    procs["etcd-2"].kill()
    procs["etcd-2"].wait()
    survivors = render.client_urls(MEMBERS[:2])
    wait_healthy(lab, client, endpoints=survivors)
    etcdctl(lab, "etcd-0", client, "put", "/lab/during", "2", endpoints=survivors)
    assert etcdctl(lab, "etcd-1", client, "get", "/lab/before", "--print-value-only",
                   endpoints=survivors).stdout.strip() == "1"
    down = etcdctl(lab, "etcd-0", client, "endpoint", "health", endpoints=f"https://{MEMBERS[2].ip}:2379",
                   check=False)
    assert down.returncode != 0
    procs["etcd-2"] = start_member(lab, MEMBERS[2], root / "etcd-2" / "pki", root / "etcd-2" / "data", root)
    wait_healthy(lab, client)
    # the member that was away catches up with what was written without it
    assert etcdctl(lab, "etcd-2", client, "get", "/lab/during", "--print-value-only",
                   endpoints=f"https://{MEMBERS[2].ip}:2379").stdout.strip() == "2"


def test_a_client_without_an_etcd_ca_certificate_is_refused(cluster):
    lab, _, _, client = cluster
    wait_healthy(lab, client)
    no_cert = etcdctl(lab, "etcd-0", client, "get", "/lab/before", cert="", check=False)
    assert no_cert.returncode != 0
    # a perfectly valid certificate of the Kubernetes CA (the cluster admin's) opens no etcd door
    other_ca = etcdctl(lab, "etcd-0", client, "get", "/lab/before", cert="admin", check=False)
    assert other_ca.returncode != 0
    assert "certificate" in (other_ca.stderr + no_cert.stderr).lower() or "deadline" in other_ca.stderr.lower()
