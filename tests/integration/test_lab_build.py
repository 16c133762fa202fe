"""The lab's worker components, built from their Go modules: each binary reports the release the program pins, runc
is static with libseccomp as the upstream release is, and the lab mirror serves them in the upstream release layout
with checksums that the program's own resolver accepts."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from cluster import versions
from locallab.build import RELEASE_COMMITS, BuildVersions
from locallab.mirror import publish
from tests.support.binaries import binaries_or_reason

pytestmark = pytest.mark.integration

WORKER_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "bridge", "host-local", "loopback",
                   "portmap", "crictl", "coredns")
SERVED = ("containerd", "runc", "cni-plugins", "crictl")
PT_INTERP = 3


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    binaries, reason = binaries_or_reason(WORKER_BINARIES)
    if reason:
        pytest.skip(reason)
    return binaries


@pytest.fixture(scope="module")
def pins() -> BuildVersions:
    return BuildVersions.pinned()


def _run(binary: Path, *args: str, env: dict | None = None) -> str:
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{binary.name} {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
    return result.stdout + result.stderr


def _interpreter(binary: Path) -> bool:
    """Whether the ELF file asks for a dynamic loader (a PT_INTERP program header): a static binary does not."""
    data = binary.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{binary} is not a 64-bit little-endian ELF"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == PT_INTERP for i in range(phnum))


def test_containerd_its_shim_and_ctr_report_the_pinned_release(built, pins):
    commit = RELEASE_COMMITS["containerd"][pins.containerd]
    assert _run(built["containerd"], "--version").split() == [
        "containerd", "github.com/containerd/containerd/v2", f"v{pins.containerd}", commit]
    assert _run(built["ctr"], "--version").split() == ["ctr", "github.com/containerd/containerd/v2",
                                                        f"v{pins.containerd}"]
    shim = _run(built["containerd-shim-runc-v2"], "-v")
    assert f"Version:  v{pins.containerd}" in shim and f"Revision: {commit}" in shim


def test_runc_reports_the_pinned_release_its_spec_and_libseccomp(built, pins):
    out = _run(built["runc"], "--version")
    assert out.startswith(f"runc version {pins.runc}\n"), out
    assert f"commit: v{pins.runc}-0-g{RELEASE_COMMITS['runc'][pins.runc][:9]}" in out
    assert re.search(r"^spec: \d+\.\d+\.\d+", out, re.M), out
    assert re.search(r"^libseccomp: 2\.5\.\d+$", out, re.M), out


def test_runc_is_static_like_the_upstream_release_and_so_is_every_other_worker_binary(built):
    ldd = subprocess.run(["ldd", str(built["runc"])], capture_output=True, text=True)
    assert "statically linked" in ldd.stdout + ldd.stderr or "not a dynamic executable" in ldd.stdout + ldd.stderr
    dynamic = [name for name, path in built.items() if _interpreter(path)]
    assert dynamic == []


def test_crictl_and_coredns_report_the_pinned_releases(built, pins):
    assert _run(built["crictl"], "--version").strip() == f"crictl version {pins.crictl}"
    coredns = _run(built["coredns"], "-version").splitlines()
    assert coredns[0] == f"CoreDNS-{pins.coredns}"
    assert coredns[1].endswith(f", {RELEASE_COMMITS['coredns'][pins.coredns][:7]}"), coredns


@pytest.mark.parametrize("plugin", ["bridge", "host-local", "loopback", "portmap"])
def test_each_cni_plugin_reports_the_pinned_release_and_answers_the_version_command(built, pins, plugin):
    assert _run(built[plugin]).splitlines()[0] == f"CNI {plugin} plugin v{pins.cni_plugins}"
    answer = json.loads(_run(built[plugin], env={"CNI_COMMAND": "VERSION"}))
    assert "1.0.0" in answer["supportedVersions"], answer


def test_the_mirror_serves_the_worker_components_in_the_upstream_layout_with_the_checksums_it_pins(built, pins,
                                                                                                     tmp_path):
    arch = "amd64" if os.uname().machine == "x86_64" else "arm64"
    setting = publish(tmp_path / "mirror", pins.program_versions(), built, arch)
    assert sorted(setting) == sorted(SERVED)
    resolved = versions.resolve_versions(setting)
    for name in SERVED:
        art = versions.artifact(name, resolved, arch, "http://mirror")
        assert art.version == pins.program_versions()[name]
        local = tmp_path / "mirror" / art.url.removeprefix("http://mirror/")
        assert art.url == f"http://mirror/{versions.COMPONENTS[name].path.format(version=art.version, arch=arch)}"
        assert hashlib.new(art.algorithm, local.read_bytes()).hexdigest() == art.digest
        if art.installs == (("", "runc"),):     # runc is released as a bare binary
            assert local.read_bytes() == built["runc"].read_bytes()
            continue
        # Unpacked the way the node's install script does (cluster/render/install.py): GNU tar, members by name.
        unpacked = tmp_path / "unpacked" / name
        unpacked.mkdir(parents=True)
        subprocess.run(["tar", "-xzf", str(local), "-C", str(unpacked), *(src for src, _ in art.installs)], check=True)
        for source, dest in art.installs:
            assert (unpacked / source).read_bytes() == built[dest.rsplit("/", 1)[-1]].read_bytes(), source


def test_a_changed_recipe_rebuilds_only_its_group_removes_the_old_build_and_a_warm_run_is_quick(built, pins,
                                                                                                 tmp_path, monkeypatch):
    """Against a build root of the test's own (the CNI plugins: the smallest group, from the warm Go caches)."""
    from locallab import build
    if shutil.which("go") is None:
        pytest.skip("the build needs Go (1.26) and the Go module proxy")
    monkeypatch.setattr(build, "BUILD_ROOT", tmp_path)
    go, arch, quiet = build.go_version(), build.go_arch(), lambda message: None
    other, _ = build._ensure_group("crictl", pins.crictl, go, arch, quiet)
    first, manifest = build._ensure_group("cni-plugins", pins.cni_plugins, go, arch, quiet)
    assert set(manifest["binaries"]) == {"bridge", "host-local", "loopback", "portmap"}
    started = time.monotonic()
    assert build._ensure_group("cni-plugins", pins.cni_plugins, go, arch, quiet) == (first, manifest)
    assert time.monotonic() - started < 1.0
    monkeypatch.setitem(build.RECIPES, "cni-plugins", {**build.RECIPES["cni-plugins"], "revision": 2})
    second, _ = build._ensure_group("cni-plugins", pins.cni_plugins, go, arch, quiet)
    assert second != first and not first.exists() and (second / "bin" / "bridge").exists()
    assert (other / "manifest.json").exists()
