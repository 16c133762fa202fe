"""Installing pinned artifacts beside the running ones, and switching a service to them.

Each release unpacks into a directory of its own (RELEASES_DIR/<component>-<version>-<digest>), and the paths every
unit and script names (/usr/local/bin/kubelet, /opt/cni/bin/bridge, ...) are symlinks into one of them. The install
step only unpacks: what runs keeps running the release it was started with, and a restart outside the program's
rolling order (a crash, a reboot, an update that failed half way) starts that same release again. A service's own
start step switches the links of the binaries it runs (the row's `runs`), right before it restarts, which is after
its node's drain and, on a running cluster, in Kubernetes' version skew order (review r2 N6). Binaries no service of
the node runs (kubectl, say) switch when they are installed. Release directories no link points into are removed.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Mapping, Sequence

from cluster.render import shell
from cluster.render.common import BIN_DIR, CACHE_DIR
from cluster.render.services import Service
from cluster.versions import Artifact

RELEASES_DIR = "/opt/k8s-from-scratch/releases"


def release_dir(artifact: Artifact) -> str:
    return f"{RELEASES_DIR}/{artifact.component}-{artifact.version}-{artifact.digest[:12]}"


def link_path(dest: str) -> str:
    """Where the binary installed as `dest` is found by its units and scripts."""
    return dest if dest.startswith("/") else f"{BIN_DIR}/{dest}"


def binaries(artifact: Artifact) -> dict[str, tuple[str, str]]:
    """name -> (link path, its target in the release directory), for every binary the artifact installs."""
    return {posixpath.basename(dest): (link_path(dest), f"{release_dir(artifact)}/{posixpath.basename(dest)}")
            for _, dest in artifact.installs}


def run_by(service: Service, artifacts: Mapping[str, Artifact]) -> dict[str, tuple[str, str]]:
    """The binaries a service runs (its row's `runs`; every binary of its artifacts when it names none)."""
    found = {name: pair for c in service.artifacts for name, pair in binaries(artifacts[c]).items()}
    return {name: pair for name, pair in found.items() if service.runs is None or name in service.runs}


def switch_script(artifacts: Sequence[Artifact], names: Sequence[str] | None = None) -> str:
    """A bash function `switch_releases`: point the links of these artifacts' binaries (only `names`, when given) at
    their releases, then remove every release directory of those components that no link points into. Idempotent;
    it returns non-zero when a release is not installed."""
    links = [pair for a in artifacts for name, pair in binaries(a).items() if names is None or name in names]
    every_link = {a.component: [link for link, _ in binaries(a).values()] for a in artifacts}
    return shell.render(
        "lib/switch-release.sh", RELEASES_DIR=RELEASES_DIR,
        SWITCHES="\n".join(f"switch {shlex.quote(link)} {shlex.quote(target)} || return 1" for link, target in links)
        or ":",
        PRUNES="\n".join(f"prune {shlex.quote(c)} {' '.join(shlex.quote(link) for link in every_link[c])}"
                         for c in dict.fromkeys(a.component for a in artifacts)))


def service_switch_script(service: Service, artifacts: Mapping[str, Artifact]) -> str:
    """The `switch_releases` function of a service's start step: the binaries it runs, to their new release."""
    return switch_script([artifacts[c] for c in service.artifacts], list(run_by(service, artifacts)))


def install_artifact_script(artifact: Artifact, services: Sequence[Service] = ()) -> str:
    """Idempotent: a verified copy in the cache is not fetched again; a release already unpacked is not unpacked
    again. A checksum mismatch stops the step naming the file, the expected and the actual sum, and installs nothing.
    The binaries none of `services` (the node's rows) runs are switched to this release at once."""
    now = [name for name in binaries(artifact)
           if not any(artifact.component in s.artifacts and (s.runs is None or name in s.runs) for s in services)]
    cached = f"{CACHE_DIR}/{artifact.filename}"
    archive = any(src for src, _ in artifact.installs)
    q = shlex.quote
    if archive:
        unpack = "tar -xzf \"$file\" -C \"$work\" " + " ".join(q(src) for src, _ in artifact.installs)
        places = [f'install -m 0755 "$work"/{q(src)} "$staging"/{q(posixpath.basename(dest))}'
                  for src, dest in artifact.installs]
    else:
        unpack = ":"
        places = [f'install -m 0755 "$file" "$staging"/{q(posixpath.basename(dest))}' for _, dest in artifact.installs]
    return shell.render(
        "lib/install-release.sh", COMPONENT=artifact.component, VERSION=artifact.version, URL=q(artifact.url),
        FILE=q(cached), WANT=q(artifact.digest), CACHE_DIR=q(CACHE_DIR), ALGORITHM=artifact.algorithm,
        FILENAME=artifact.filename, RELEASE=q(release_dir(artifact)), RELEASES_DIR=RELEASES_DIR, UNPACK=unpack,
        PLACE="\n".join(places), SWITCH_NOW=switch_script([artifact], now) + "switch_releases\n" if now else "")
