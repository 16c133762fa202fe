"""BusyBox built from its release source as the official image (docker-library/busybox, the `glibc` variant that
`busybox:1.37.0` names) builds it, for the conformance suite's busybox image.

Debian's busybox-static, which the lab's own busybox image carries, is patched: its shell drops environment
variables whose names are not shell identifiers (`revert-9c143ce…`, kept for the Debian installer), which upstream's
ash passes on, and the ConfigMap and Secret "consumable via the environment" specs read such a variable (`data-1`)
back with `sh -c env`. So the e2e image gets upstream's source and configuration instead:
- the source is the release tarball, from the Debian archive (Debian's orig tarball is busybox.net's file byte for
  byte: the sha256 below is the one the official image's build checks), unpatched;
- the configuration is `make defconfig` with the official build's changes, and static (the official image copies
  glibc's shared libraries in instead; a static binary needs none);
- SOURCE_DATE_EPOCH is the tarball's own time, as there, so the binary is the same on every build.
Cached like the lab's Go builds (locallab/build.py), under CACHE/build/busybox-<version>-<key>/bin/busybox.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

from locallab import build
from locallab.rootfs import RECIPE as ROOTFS_RECIPE

GROUP = "busybox"
VERSION = "1.37.0"
SOURCE = {"url": f"{ROOTFS_RECIPE['mirror']}/pool/main/b/busybox/busybox_{VERSION}.orig.tar.bz2",
          "sha256": "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4"}
# The official image's changes to defconfig (its Dockerfile.builder: setConfs, unsetConfs), and static linking.
SET = ["CONFIG_AR=y", "CONFIG_FEATURE_AR_CREATE=y", "CONFIG_FEATURE_AR_LONG_FILENAMES=y",
       "CONFIG_LAST_SUPPORTED_WCHAR=0", "CONFIG_INOTIFYD=y", "CONFIG_STATIC=y"]
UNSET = ["CONFIG_FEATURE_SYNC_FANCY"]
# busybox's own name for the architecture (its Makefile's ARCH), as the official build passes it.
BUSYBOX_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}
RECIPE = {"revision": 1, "source": SOURCE, "set": SET, "unset": UNSET}


class BusyboxError(RuntimeError):
    pass


def _configure(config: Path) -> None:
    """defconfig's .config with SET and UNSET applied, each line replaced where it is."""
    lines = config.read_text().splitlines()
    wanted = {c.split("=", 1)[0]: c for c in SET} | {c: f"# {c} is not set" for c in UNSET}
    out, seen = [], set()
    for line in lines:
        name = line.removeprefix("# ").split("=", 1)[0].split(" is not set", 1)[0]
        if name in wanted:
            out.append(wanted[name])
            seen.add(name)
        else:
            out.append(line)
    out += [line for name, line in wanted.items() if name not in seen]
    config.write_text("\n".join(out) + "\n")


def _fetch(target: Path) -> None:
    with urllib.request.urlopen(SOURCE["url"], timeout=120) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SOURCE["sha256"]:
        raise BusyboxError(f"{SOURCE['url']}: sha256 {digest}, expected {SOURCE['sha256']}")


def _build(version: str, work: Path, bin_dir: Path, log_file: Path, say) -> dict[str, float]:
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    tarball = work / "busybox.tar.bz2"
    _fetch(tarball)
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="data")
    source = work / f"busybox-{version}"
    epoch = str(int(source.stat().st_mtime))
    env = {**os.environ, "SOURCE_DATE_EPOCH": epoch, "ARCH": BUSYBOX_ARCH.get(platform.machine(), platform.machine())}
    with open(log_file, "a") as log:
        def make(*args: str) -> None:
            log.write(f"$ make {' '.join(args)}\n")
            log.flush()
            if subprocess.run(["make", *args], cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode != 0:
                raise BusyboxError(f"make {' '.join(args)} failed in {source}: see {log_file}")
        make("defconfig")
        _configure(source / ".config")
        make("oldconfig")
        missing = [c for c in SET if c not in (source / ".config").read_text().splitlines()]
        if missing:
            raise BusyboxError(f"busybox's oldconfig dropped {', '.join(missing)}")
        say(f"busybox {version}: configured; building")
        make(f"-j{os.cpu_count() or 1}", "busybox")
    shutil.copyfile(source / "busybox", bin_dir / "busybox")
    (bin_dir / "busybox").chmod(0o755)
    return {"busybox": round(time.monotonic() - started, 1)}


def ensure_busybox(log=print) -> Path:
    """The busybox binary, built first if the cache has none for this recipe."""
    compiler = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    # The compiler stands where a Go build's toolchain goes in the cache key.
    directory, _ = build._ensure_group(GROUP, VERSION, compiler, build.go_arch(), log, builder=_build, recipe=RECIPE)
    return directory / "bin" / "busybox"
