"""The lab's binaries from release archives (locallab/releases.py), against an HTTP server of the test's own that
serves archives in the publishers' layout, pinned by the test's version table: downloaded, verified and served
unchanged; refused on a checksum mismatch; and, when the server cannot be reached, built from Go modules instead
with the reason said."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from functools import partial
from pathlib import Path

import pytest

from cluster import versions
from locallab import build as go_build
from locallab import releases

VERSION = "9.9.9"
ARCH = "amd64"


def _archive(component: versions.Component) -> bytes:
    """An archive holding what the component installs (and the extra binaries the lab unpacks), in its layout."""
    sources = [src.format(version=VERSION, arch=ARCH) for src, _ in component.installs]
    sources += [src.format(version=VERSION, arch=ARCH) for src in releases.EXTRA_BINARIES.get(component.name, ())]
    if sources == [""]:
        return f"#!{component.name} {VERSION}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for source in sources:
            data = f"#!{Path(source).name} from {component.name} {VERSION}\n".encode()
            info = tarfile.TarInfo(source)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def publishers(tmp_path, monkeypatch):
    """The test's version table (every component at VERSION, pinned to the archives below), those archives in
    the upstream layout under a local HTTP server, and the requests it answered."""
    served = tmp_path / "publishers"
    table = {}
    for name, component in versions.COMPONENTS.items():
        data = _archive(component)
        path = served / component.path.format(version=VERSION, arch=ARCH)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = hashlib.new(component.algorithm, data).hexdigest()
        table[name] = dataclasses.replace(component, checksums={VERSION: {ARCH: digest}})
    monkeypatch.setattr(versions, "COMPONENTS", table)
    monkeypatch.setattr(versions, "DEFAULT_VERSIONS", {key: VERSION for key in versions.DEFAULT_VERSIONS})
    pins = go_build.BuildVersions(**{f.name: VERSION for f in dataclasses.fields(go_build.BuildVersions)})
    monkeypatch.setattr(go_build.BuildVersions, "pinned", classmethod(lambda cls: pins))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"base": f"http://127.0.0.1:{server.server_port}", "dir": served, "requests": requests}
    server.shutdown()
    server.server_close()


class FakeGoBuild:
    """Stands in for locallab.build.ensure_build: records what it was asked to build and returns a binary per
    command of those groups."""

    def __init__(self, root: Path):
        self.root, self.asked = root, []

    def __call__(self, pins, log=print, groups=tuple(go_build.BUILDERS)):
        self.asked.append(tuple(groups))
        names = {"kubernetes": go_build.KUBERNETES_COMMANDS, "etcd": tuple(go_build.ETCD_COMMANDS),
                 **{g: tuple(r["commands"]) for g, r in go_build.WORKER_RECIPES.items()}}
        directories = {}
        for group in groups:
            directories[group] = self.root / group
            (self.root / group / "bin").mkdir(parents=True, exist_ok=True)
            for name in names[group]:
                (self.root / group / "bin" / name).write_text(f"#!{name} built\n")
        return go_build.Build(pins, directories, {g: {"seconds": {}, "total_seconds": 0} for g in groups})


def test_downloaded_archives_are_verified_unpacked_and_served_unchanged_with_no_override(publishers, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setattr(releases, "RELEASES_ROOT", tmp_path / "cache")
    go = FakeGoBuild(tmp_path / "go")
    log: list[str] = []
    got = releases.lab_binaries(ARCH, tmp_path / "mirror", base=publishers["base"], log=log.append, ensure_build=go)

    assert go.asked == [("coredns", "metrics-server")], "only the images, which have no pinned binary, are built"
    assert got.versions_setting == {}, "the lab stack installs with the publishers' checksums, no override"
    assert got.served == frozenset(versions.COMPONENTS)
    resolved = versions.resolve_versions(got.versions_setting)
    for name, component in versions.COMPONENTS.items():
        art = versions.artifact(name, resolved, ARCH, "http://mirror")
        served = tmp_path / "mirror" / art.url.removeprefix("http://mirror/")
        assert served.read_bytes() == (publishers["dir"] / art.url.removeprefix("http://mirror/")).read_bytes()
        assert hashlib.new(art.algorithm, served.read_bytes()).hexdigest() == art.digest
    binaries = got.build.binaries
    assert binaries["kube-apiserver"].read_text() == f"#!kube-apiserver from kubernetes-server {VERSION}\n"
    assert binaries["etcdutl"].read_text() == f"#!etcdutl from etcd {VERSION}\n"
    assert binaries["runc"].read_text() == f"#!runc {VERSION}\n"
    assert "coredns" in binaries and "kubectl" in binaries
    assert any("sha512 verified" in line for line in log)

    publishers["requests"].clear()
    again = releases.lab_binaries(ARCH, tmp_path / "mirror", base=publishers["base"], log=log.append, ensure_build=go)
    assert publishers["requests"] == [], "a second lab finds every archive in the cache"
    assert again.build.binaries.keys() == binaries.keys()


def test_an_archive_that_is_not_the_pinned_one_is_refused_and_nothing_is_built_instead(publishers, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(releases, "RELEASES_ROOT", tmp_path / "cache")
    component = versions.COMPONENTS["etcd"]
    tampered = publishers["dir"] / component.path.format(version=VERSION, arch=ARCH)
    tampered.write_bytes(tampered.read_bytes() + b"tampered")
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    go = FakeGoBuild(tmp_path / "go")
    with pytest.raises(releases.ChecksumMismatch) as refused:
        releases.lab_binaries(ARCH, tmp_path / "mirror", base=publishers["base"], log=lambda m: None,
                              ensure_build=go)
    message = str(refused.value)
    assert f"etcd-v{VERSION}-linux-{ARCH}.tar.gz" in message
    assert component.checksums[VERSION][ARCH] in message and actual in message
    assert "K8S_FROM_SCRATCH_LAB_RELEASES=off" in message
    assert go.asked == []
    assert not list((tmp_path / "cache").rglob("etcd-v*")), "nothing of the refused download is kept"


@pytest.mark.parametrize("why", ["unreachable", "missing"])
def test_when_the_archives_cannot_be_fetched_the_lab_builds_from_go_modules_and_says_why(publishers, tmp_path,
                                                                                         monkeypatch, why):
    monkeypatch.setattr(releases, "RELEASES_ROOT", tmp_path / "cache")
    if why == "unreachable":
        with socket.socket() as probe:        # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{probe.getsockname()[1]}"
    else:
        base = publishers["base"]
        (publishers["dir"] / versions.COMPONENTS["crictl"].path.format(version=VERSION, arch=ARCH)).unlink()
    go = FakeGoBuild(tmp_path / "go")
    log: list[str] = []
    got = releases.lab_binaries(ARCH, tmp_path / "mirror", base=base, log=log.append, ensure_build=go)

    assert go.asked == [tuple(go_build.BUILDERS)]
    reason = next(line for line in log if "building every component from its Go module instead" in line)
    assert "release archives unavailable" in reason
    assert ("Connection refused" if why == "unreachable" else "HTTP 404") in reason
    assert got.source.startswith("built from Go modules (release archives unavailable")
    # The mirror serves archives packed from the build, pinned by the override the lab stack then carries.
    assert set(got.versions_setting) == set(versions.DEFAULT_VERSIONS)
    assert got.served == frozenset(versions.COMPONENTS)


def test_off_builds_from_go_modules_without_asking_any_server(publishers, tmp_path, monkeypatch):
    monkeypatch.setattr(releases, "RELEASES_ROOT", tmp_path / "cache")
    go = FakeGoBuild(tmp_path / "go")
    got = releases.lab_binaries(ARCH, tmp_path / "mirror", base="off", log=lambda m: None, ensure_build=go)
    assert go.asked == [tuple(go_build.BUILDERS)] and publishers["requests"] == []
    assert "K8S_FROM_SCRATCH_LAB_RELEASES=off" in got.source
