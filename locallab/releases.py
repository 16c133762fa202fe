"""The lab's binaries from the publishers' release archives, when they can be downloaded; the Go build otherwise.

Every archive cluster/versions.py pins is fetched from K8S_FROM_SCRATCH_LAB_RELEASES (the publishers by default,
`https://<path>`, or a mirror in the same layout), checked against the pinned checksum and kept in
CACHE/releases/<path>. The lab's mirror then serves those very files, so the lab stack needs no `versions`
override: its install steps verify the publishers' checksums, as on EC2. The deployer's kubectl is unpacked from
the same archives.

An archive that cannot be fetched (no network, a 404) makes the lab build every component from its Go module
instead, saying why; an archive whose checksum differs from the pin stops the lab: a file that is not what the
publisher released is never used, and never quietly replaced by a build. CoreDNS is built from its Go module
either way: the program pins its image, not a binary, so the lab has no publisher checksum to verify one with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cluster import versions
from locallab import build as go_build
from locallab.mirror import file_digest, forget, publish
from locallab.rootfs import CACHE

RELEASES_ROOT = CACHE / "releases"
# Where the archives come from: "https://" (the publishers), a mirror's base URL, or "off" for the Go build.
RELEASES_SETTING = "K8S_FROM_SCRATCH_LAB_RELEASES"
CONNECT_TIMEOUT_SECONDS = 15
# Binaries the lab unpacks beyond what a node installs: the etcd tests restore snapshots with etcdutl.
EXTRA_BINARIES = {"etcd": ("etcd-v{version}-linux-{arch}/etcdutl",)}


class ChecksumMismatch(RuntimeError):
    pass


class Unavailable(RuntimeError):
    """An archive could not be fetched; the message says which and why."""


@dataclass(frozen=True)
class LabBinaries:
    """What the lab runs: the binaries, the lab stack's `versions` setting, and the components its mirror serves."""
    build: go_build.Build
    versions_setting: dict
    served: frozenset[str]
    source: str               # one line for people: downloaded, or built and why


def release_url(base: str, path: str) -> str:
    return f"https://{path}" if base == "https://" else f"{base.rstrip('/')}/{path}"


def _verified(path: Path, artifact: versions.Artifact) -> bool:
    """Whether path is the pinned file. A verified file keeps a note of its size and time beside it, so a warm
    `./lab up` does not hash hundreds of megabytes again."""
    note = path.with_name(path.name + ".verified")
    if not path.exists():
        return False
    stamp = f"{artifact.algorithm} {artifact.digest} {path.stat().st_size} {path.stat().st_mtime_ns}"
    if note.exists() and note.read_text() == stamp:
        return True
    if file_digest(path, artifact.algorithm) != artifact.digest:
        return False
    note.write_text(stamp)
    return True


def fetch(artifact: versions.Artifact, path: str, root: Path, log=print) -> Path:
    """The archive at root/path, downloaded first unless a verified copy is there. Raises Unavailable when it
    cannot be fetched, ChecksumMismatch (and keeps nothing) when it is not the file the pin names."""
    target = root / path
    if _verified(target, artifact):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    started = time.monotonic()
    log(f"  {artifact.filename}: downloading {artifact.url}")
    try:
        with urllib.request.urlopen(artifact.url, timeout=CONNECT_TIMEOUT_SECONDS) as response, \
                open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        status = f"HTTP {error.code} " if isinstance(error, urllib.error.HTTPError) else ""
        raise Unavailable(f"{artifact.url}: {status}{getattr(error, 'reason', error)}") from error
    actual = file_digest(partial, artifact.algorithm)
    if actual != artifact.digest:
        partial.unlink()
        raise ChecksumMismatch(
            f"checksum mismatch for {artifact.filename} ({artifact.url}): cluster/versions.py pins "
            f"{artifact.algorithm} {artifact.digest}, the download has {actual}. Nothing was kept. Check the "
            f"mirror or proxy in between, or build from Go modules instead: K8S_FROM_SCRATCH_LAB_RELEASES=off")
    os.replace(partial, target)
    _verified(target, artifact)
    log(f"  {artifact.filename}: {target.stat().st_size / 1e6:.0f} MB in {time.monotonic() - started:.0f}s, "
        f"{artifact.algorithm} verified")
    return target


def _unpack(archive: Path, members: list[tuple[str, str]], bin_dir: Path) -> None:
    """(path in the archive, or "" for a bare binary; binary name) into bin_dir, in one pass over the archive.
    Members are written under the given names, never extracted by their own paths."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    if [source for source, _ in members] == [""]:
        shutil.copyfile(archive, bin_dir / members[0][1])
        (bin_dir / members[0][1]).chmod(0o755)
        return
    wanted = {os.path.normpath(source): name for source, name in members}
    with tarfile.open(archive) as tar:
        for member in tar:
            name = wanted.pop(os.path.normpath(member.name), None)
            if name is None or not member.isfile():
                continue
            with tar.extractfile(member) as extracted, open(bin_dir / name, "wb") as out:
                shutil.copyfileobj(extracted, out)
            (bin_dir / name).chmod(0o755)
    if wanted:
        raise Unavailable(f"{archive.name} holds no {', '.join(sorted(wanted))}")


def download_releases(program_versions: dict[str, str], arch: str, base: str, root: Path,
                      log=print) -> tuple[dict[str, Path], dict[str, Path], dict]:
    """Fetch and verify every pinned archive of these versions (version key -> version, as DEFAULT_VERSIONS).
    Returns (component -> archive, version key -> a directory whose bin/ holds its binaries, manifests by key)."""
    resolved = versions.resolve_versions(program_versions)
    archives: dict[str, Path] = {}
    groups: dict[str, Path] = {}
    manifests: dict[str, dict] = {}
    for key, pinned in resolved.items():
        group_dir = root / "bin" / f"{key}-{pinned.version}-{arch}"
        started = time.monotonic()
        unpacked = group_dir / "unpacked-from.json"
        made_from = {}
        for component in [c for c in versions.COMPONENTS.values() if c.version_key == key]:
            path = component.path.format(version=pinned.version, arch=arch)
            artifact = versions.artifact(component.name, resolved, arch)
            artifact = versions.Artifact(**{**artifact.__dict__, "url": release_url(base, path)})
            archives[component.name] = fetch(artifact, path, root, log)
            made_from[component.name] = artifact.digest
        if not (unpacked.exists() and json.loads(unpacked.read_text()) == made_from):
            shutil.rmtree(group_dir, ignore_errors=True)
            for name in made_from:
                artifact = versions.artifact(name, resolved, arch)
                members = [(src, Path(dest).name) for src, dest in artifact.installs]
                members += [(src.format(version=pinned.version, arch=arch), Path(src).name)
                            for src in EXTRA_BINARIES.get(name, ())]
                _unpack(archives[name], members, group_dir / "bin")
            unpacked.write_text(json.dumps(made_from))
        manifests[key] = {"group": key, "version": pinned.version, "source": "release archives",
                          "total_seconds": round(time.monotonic() - started, 1), "seconds": {}, "go": "",
                          "arch": arch}
        groups[key] = group_dir
    return archives, groups, manifests


def serve_archives(mirror: Path, archives: dict[str, Path], program_versions: dict[str, str], arch: str) -> None:
    """The downloaded archives, unchanged, at their upstream paths below the lab's mirror."""
    paths = {name: versions.COMPONENTS[name].path.format(
        version=program_versions[versions.COMPONENTS[name].version_key], arch=arch) for name in archives}
    forget(mirror, list(paths.values()))
    for name, archive in archives.items():
        target = mirror / paths[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and os.path.samefile(target, archive)):
            target.unlink(missing_ok=True)
            try:
                os.link(archive, target)
            except OSError:         # another file system
                shutil.copyfile(archive, target)


def lab_binaries(arch: str, mirror: Path, base: str | None = None, log=print,
                 ensure_build: Callable[..., go_build.Build] | None = None,
                 kubernetes: str | None = None) -> LabBinaries:
    """The publishers' archives when they can be fetched (the mirror serves them; no `versions` override), else
    the Go build (the mirror serves archives packed from it, pinned by a `versions` override). `kubernetes`: another
    Kubernetes release than the program's pin, which is always built (only the pins' checksums are known)."""
    base = os.environ.get(RELEASES_SETTING, "https://") if base is None else base
    ensure_build = ensure_build or go_build.ensure_build
    pins = go_build.BuildVersions.pinned()
    if kubernetes and kubernetes != pins.kubernetes:
        pins = dataclasses.replace(pins, kubernetes=kubernetes)
    program_versions = pins.program_versions()
    if base != "off" and pins == go_build.BuildVersions.pinned():
        log(f"fetching the release archives cluster/versions.py pins from {release_url(base, '')}")
        try:
            archives, groups, manifests = download_releases(program_versions, arch, base, RELEASES_ROOT, log=log)
        except (Unavailable, versions.VersionError) as why:
            reason = f"release archives unavailable ({why})"
            log(f"{reason}: building every component from its Go module instead")
        else:
            # Images, not release archives: built from their Go modules either way.
            images = ensure_build(pins, log=log, groups=("coredns", "metrics-server"))
            serve_archives(mirror, archives, program_versions, arch)
            setting = {k: v for k, v in program_versions.items() if v != versions.DEFAULT_VERSIONS[k]}
            build = go_build.Build(pins, {**groups, **images.groups}, {**manifests, **images.manifests})
            return LabBinaries(build, setting, frozenset(archives), "the publishers' release archives, checksums "
                               "as cluster/versions.py pins them (CoreDNS and metrics-server built from their Go "
                               "modules)")
    else:
        reason = f"Kubernetes {kubernetes} is not the pin" if base != "off" else "K8S_FROM_SCRATCH_LAB_RELEASES=off"
    build = ensure_build(pins, log=log)
    setting = publish(mirror, program_versions, build.binaries, arch)
    served = frozenset(c.name for c in versions.COMPONENTS.values() if c.version_key in setting)
    return LabBinaries(build, setting, served, f"built from Go modules ({reason}); the lab stack pins the "
                       "archives packed from that build")
