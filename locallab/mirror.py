"""The lab's artifact mirror: the binaries the lab built, in the layout and under the file names of the upstream
releases that cluster/versions.py describes, so the program's own install steps fetch and verify them unchanged.

Everything is derived from versions.COMPONENTS: the path (formatted with version and architecture), an archive
holding each `installs` source path, or the bare file where the source path is "". A component is served when the
build holds every binary it installs; the lab stack then gives the served files' checksums in its `versions`
setting, as a mirror's own build would.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

from cluster import versions


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pack(target: Path, members: list[tuple[str, Path]]) -> None:
    """A gzip'd tar with fixed times and owners: the same binaries always give the same checksum, so a second lab
    session offers the install steps the same file (and they have nothing to do)."""
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = sorted({str(parent) for name, _ in members for parent in Path(name).parents} - {".", ""})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, source in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = source.stat().st_size, 0o755, 0
            with open(source, "rb") as f:
                tar.addfile(info, f)
    os.replace(tmp, target)


def servable(component: versions.Component, binaries: dict[str, Path]) -> bool:
    return all(Path(dest).name in binaries for _, dest in component.installs)


def publish(mirror: Path, built: dict[str, dict], binaries: dict[str, Path], arch: str) -> dict:
    """Write every component the build can serve below `mirror`, for the version the build made of its version
    key (`built`: version key -> version). Returns the `versions` setting that pins what was written:
    version key -> {"version", <component>: {algorithm: {arch: digest}}} (the component level is dropped where a
    key covers one component, as resolve_versions expects). Archives already written for these binaries are
    reused (an index beside them records what they were made from)."""
    index_file = mirror / ".lab-index.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else {}
    setting: dict[str, dict] = {}
    for component in versions.COMPONENTS.values():
        version = built.get(component.version_key)
        if version is None or not servable(component, binaries):
            continue
        path = component.path.format(version=version, arch=arch)
        target = mirror / path
        sources = {Path(dest).name: binaries[Path(dest).name] for _, dest in component.installs}
        made_from = {name: [str(p), p.stat().st_size, p.stat().st_mtime] for name, p in sources.items()}
        entry = index.get(path)
        if not (target.exists() and entry and entry["made_from"] == made_from):
            target.parent.mkdir(parents=True, exist_ok=True)
            members = [(src.format(version=version, arch=arch), sources[Path(dest).name])
                       for src, dest in component.installs]
            if members[0][0] == "":
                shutil.copyfile(members[0][1], target)
            else:
                _pack(target, members)
            entry = {"made_from": made_from, "digest": file_digest(target, component.algorithm)}
            index[path] = entry
            index_file.write_text(json.dumps(index, indent=2))
        pinned = setting.setdefault(component.version_key, {"version": version})
        pinned[component.name] = {component.algorithm: {arch: entry["digest"]}}
    for key, pinned in list(setting.items()):
        components = [c for c in versions.COMPONENTS.values() if c.version_key == key]
        if any(c.name not in pinned for c in components):
            del setting[key]      # a version key pins all its components or none (resolve_versions)
        elif len(components) == 1:
            (only,) = [v for k, v in pinned.items() if k != "version"]
            setting[key] = {"version": pinned["version"], **only}
    return setting



def forget(mirror: Path, paths: list[str]) -> None:
    """Drop what the index records for these paths (another file was put there), so publish() writes them again."""
    index_file = mirror / ".lab-index.json"
    if index_file.exists():
        index = json.loads(index_file.read_text())
        index_file.write_text(json.dumps({k: v for k, v in index.items() if k not in paths}, indent=2))
