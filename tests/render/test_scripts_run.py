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
from cluster.render.install import install_artifact_script

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")


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
    assert "installed /usr/local/bin/etcd" in first and "installed /usr/local/bin/etcdctl" in first
    assert "installed" not in second.split("--- installed:")[0], "a second run must change nothing"
    assert "etcdctl" in second.split("--- installed:")[1]


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
