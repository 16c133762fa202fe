"""The install and file-writing scripts, run for real in a private mount namespace (tmpfs over the directories they
write), so that what they do (verify, install, skip when unchanged, refuse a bad checksum) is observed, not read."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from cluster import versions
from cluster.render.common import NodeFile, write_files_script
from cluster.render.install import RELEASES_DIR, install_artifact_script, release_dir, service_switch_script
from cluster.render.services import Service

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
# The file-writing script gives each file to its owner (root by default), as on a node.
needs_root_to_chown = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the script chowns files to root")


def run_isolated(script: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    """Run `script` with tmpfs over /usr/local/bin, /var/cache and /opt, visible to this process only."""
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    setup = ("mount -t tmpfs tmpfs /usr/local/bin && mount -t tmpfs tmpfs /var/cache && mount -t tmpfs tmpfs /opt "
             f"&& bash {path} && echo '--- installed:' && ls -l /usr/local/bin")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup],
                          capture_output=True, text=True)


def fake_release(tmp_path: Path) -> tuple[Path, str]:
    """A tarball in etcd's release layout."""
    top = tmp_path / "etcd-v9.9.9-linux-amd64"
    top.mkdir()
    for tool in ("etcd", "etcdctl", "etcdutl"):
        (top / tool).write_text(f"#!/bin/sh\necho {tool}\n")
        (top / tool).chmod(0o755)
    archive = tmp_path / "etcd-v9.9.9-linux-amd64.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def etcd_artifact(archive: Path, digest: str) -> versions.Artifact:
    resolved = versions.resolve_versions({"etcd": {"version": "9.9.9", "sha256": {"amd64": digest}}})
    return versions.artifact("etcd", resolved, "amd64", base_url=f"file://{archive.parent}/mirror")


@needs_root
def test_install_verifies_installs_and_then_has_nothing_to_do(tmp_path):
    archive, digest = fake_release(tmp_path)
    artifact = etcd_artifact(archive, digest)
    mirror_file = Path(artifact.url.removeprefix("file://"))
    mirror_file.parent.mkdir(parents=True)
    mirror_file.write_bytes(archive.read_bytes())
    script = install_artifact_script(artifact) + install_artifact_script(artifact).replace("#!/bin/bash", "echo '--- again'")
    result = run_isolated(script, tmp_path, "install")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("--- again", 1)
    release = release_dir(artifact)
    assert f"installed etcd 9.9.9 into {release}" in first
    # no service of this (empty) role runs them: they are switched at once
    assert f"switched /usr/local/bin/etcd to {release}/etcd" in first and "/usr/local/bin/etcdctl" in first
    assert "installed etcd" not in second and "switched" not in second, "a second run must change nothing"
    assert f"etcdctl -> {release}/etcdctl" in second.split("--- installed:")[1]


def two_releases(tmp_path: Path) -> tuple[versions.Artifact, versions.Artifact]:
    """Two etcd-layout releases in a file:// mirror, whose binaries print their version."""
    made = []
    for version in ("9.9.8", "9.9.9"):
        top = tmp_path / version / f"etcd-v{version}-linux-amd64"
        top.mkdir(parents=True)
        for tool in ("etcd", "etcdctl", "etcdutl"):
            (top / tool).write_text(f"#!/bin/sh\necho {tool} {version}\n")
            (top / tool).chmod(0o755)
        archive = tmp_path / version / f"{top.name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(top, arcname=top.name)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        resolved = versions.resolve_versions({"etcd": {"version": version, "sha256": {"amd64": digest}}})
        artifact = versions.artifact("etcd", resolved, "amd64", base_url=f"file://{tmp_path}/mirror")
        Path(artifact.url.removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)
        Path(artifact.url.removeprefix("file://")).write_bytes(archive.read_bytes())
        made.append(artifact)
    return made[0], made[1]


@needs_root
def test_n6_a_new_release_installs_beside_the_running_one_and_only_the_start_step_switches_to_it(tmp_path):
    """Review r2 N6: installing a new release changes nothing that runs; a restart outside the rolling order (a
    crash, a reboot) would still start the old one. The service's start step switches, then the old release goes.
    Here a row that runs `etcd` only (etcdctl and etcdutl switch at install, as kubectl does on a worker)."""
    old, new = two_releases(tmp_path)
    row = Service("etcd", files=lambda i: [], artifacts=("etcd",), runs=("etcd",))
    switch = lambda artifact: (service_switch_script(row, {"etcd": artifact}) + "switch_releases\n")
    runs = "echo \"runs: $(/usr/local/bin/etcd) / $(/usr/local/bin/etcdctl)\"\n"
    script = "\n".join([
        install_artifact_script(old, [row]), switch(old), runs,
        install_artifact_script(new, [row]).replace("#!/bin/bash", "echo '--- new release installed'"), runs,
        "echo '--- start step'", switch(new), runs, f"ls {RELEASES_DIR}"])
    result = run_isolated(script, tmp_path, "switch")
    assert result.returncode == 0, result.stdout + result.stderr
    before, installed = result.stdout.split("--- new release installed", 1)
    installed, started = installed.split("--- start step", 1)
    assert "runs: etcd 9.9.8 / etcdctl 9.9.8" in before
    assert "runs: etcd 9.9.8 / etcdctl 9.9.9" in installed, "only what no service runs switches at install"
    assert "runs: etcd 9.9.9 / etcdctl 9.9.9" in started
    assert f"removed {release_dir(old)}, which no link uses" in started
    listed = started.split("--- installed:")[0].split()[-1]
    assert listed == Path(release_dir(new)).name


@needs_root
def test_a_checksum_mismatch_stops_the_step_naming_file_and_both_sums(tmp_path):
    archive, digest = fake_release(tmp_path)
    wrong = "0" * 64
    artifact = etcd_artifact(archive, wrong)
    mirror_file = Path(artifact.url.removeprefix("file://"))
    mirror_file.parent.mkdir(parents=True)
    mirror_file.write_bytes(archive.read_bytes())
    result = run_isolated(install_artifact_script(artifact), tmp_path, "mismatch")
    assert result.returncode != 0
    assert f"checksum mismatch for {artifact.filename}" in result.stderr
    assert f"expected sha256 {wrong}, got {digest}" in result.stderr
    assert "--- installed:" not in result.stdout
    # D18: the URL may carry a mirror's credentials, and a failed step's output reaches the error and the logs
    assert artifact.url not in result.stderr and str(mirror_file.parent) not in result.stderr


@needs_root_to_chown
def test_write_files_writes_modes_and_reports_only_what_changed(tmp_path):
    files = [NodeFile(str(tmp_path / "etc/a.conf"), "alpha\n"),
             NodeFile(str(tmp_path / "keys/b.key"), "-----BEGIN PRIVATE KEY-----\nxyz\n", "0600", secret=True)]
    script = tmp_path / "write.sh"

    def run(fs):
        script.write_text(write_files_script(fs))
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = run(files)
    assert first.count("changed:") == 2
    assert (tmp_path / "keys/b.key").read_text().endswith("xyz\n")
    assert oct((tmp_path / "keys/b.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "etc/a.conf").stat().st_mode & 0o777) == "0o644"
    assert run(files) == "", "an unchanged bundle must change nothing"
    changed = run([files[0], NodeFile(files[1].path, "-----BEGIN PRIVATE KEY-----\nnew\n", "0600", secret=True)])
    assert changed.strip() == f"changed: {files[1].path}"
    assert "PRIVATE KEY" not in script.read_text(), "contents travel base64-encoded"
