"""Build the pinned Kubernetes and etcd releases from their Go modules, once per version set, cached.

Kubernetes cannot be built with `go install k8s.io/kubernetes/cmd/X@vN`: its go.mod requires every staging module
(k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and points them at ./staging with `replace`, which only the main
module may do. So the build writes a small wrapper module that requires k8s.io/kubernetes at the pinned release and
replaces each staging module with the published v0.<minor>.<patch> of the same release (the list is read from the
release's own go.mod, so a new staging module is picked up). etcd's server, etcdctl and etcdutl modules pin each
other at the same release and build the same way through a wrapper of their own.

Binaries are stamped with `-X` as the release scripts do (hack/lib/version.sh), so `kubectl version`, `/version` and
the Node objects report the pinned release instead of v0.0.0-master.

Output: CACHE/build/<group>-<version>-<key>/bin/<binary> per group (kubernetes, etcd), where key is a hash of the
group's version, its recipe below, the Go version and the architecture. A finished group leaves manifest.json
(sha256 and build time per binary); a warm run reads it and returns in well under a second. GOMODCACHE and GOCACHE are Go's own (default locations), so a changed
recipe rebuilds from the compiler cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from locallab.rootfs import CACHE

BUILD_ROOT = CACHE / "build"

# What is built from which module. Each group is one wrapper module.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet",
                       "kube-proxy")
ETCD_COMMANDS = {"etcd": "go.etcd.io/etcd/server/v3", "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
                 "etcdutl": "go.etcd.io/etcd/etcdutl/v3"}

# How the binaries are made, apart from the versions; each group's part of it goes into that group's cache key.
COMMON_RECIPE = {"cgo": "0", "flags": ["-trimpath"], "ldflags": "-s -w"}
RECIPES = {
    "kubernetes": {"revision": 1, "stamp_packages": ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"],
                   "commands": list(KUBERNETES_COMMANDS)},
    "etcd": {"revision": 1, "commands": ETCD_COMMANDS, "stamp": "go.etcd.io/etcd/api/v3/version.GitSHA"},
}


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class BuildVersions:
    kubernetes: str   # "1.37.2", as in cluster/versions.py
    etcd: str         # "3.6.16"

    @classmethod
    def pinned(cls) -> "BuildVersions":
        """The versions the program pins (cluster/versions.py DEFAULT_VERSIONS), read at run time.
        K8S_FROM_SCRATCH_LAB_KUBERNETES / K8S_FROM_SCRATCH_LAB_ETCD build another release instead."""
        from cluster.versions import DEFAULT_VERSIONS
        return cls(kubernetes=os.environ.get("K8S_FROM_SCRATCH_LAB_KUBERNETES") or DEFAULT_VERSIONS["kubernetes"],
                   etcd=os.environ.get("K8S_FROM_SCRATCH_LAB_ETCD") or DEFAULT_VERSIONS["etcd"])

    def of(self, group: str) -> str:
        return getattr(self, group)


@dataclass(frozen=True)
class Build:
    versions: BuildVersions
    groups: dict[str, Path]        # group -> its cached directory
    manifests: dict[str, dict]

    @property
    def binaries(self) -> dict[str, Path]:
        return {p.name: p for d in self.groups.values() for p in sorted((d / "bin").iterdir())
                if not p.name.endswith(".tmp")}

    def binary(self, name: str) -> Path:
        return self.binaries[name]

    @property
    def seconds(self) -> dict[str, float]:
        return {k: v for m in self.manifests.values() for k, v in m["seconds"].items()}

    @property
    def cold_seconds(self) -> float:
        return sum(m["total_seconds"] for m in self.manifests.values())


def go_version() -> str:
    return subprocess.run(["go", "env", "GOVERSION"], check=True, capture_output=True, text=True).stdout.strip()


def go_arch() -> str:
    return subprocess.run(["go", "env", "GOARCH"], check=True, capture_output=True, text=True).stdout.strip()


def build_key(group: str, version: str, go: str, arch: str) -> str:
    material = {"group": group, "version": version, "recipe": [COMMON_RECIPE, RECIPES[group]], "go": go,
                "arch": arch}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _env() -> dict:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": COMMON_RECIPE["cgo"], "GOTOOLCHAIN": env.get("GOTOOLCHAIN", "local"), "GOFLAGS": "-mod=mod",
                "GOWORK": "off"})
    return env


def _go(args: list[str], cwd: Path, log_file: Path) -> str:
    with open(log_file, "a") as log:
        log.write(f"$ go {' '.join(args)}\n")
        log.flush()
        result = subprocess.run(["go", *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=log, text=True)
    if result.returncode != 0:
        tail = log_file.read_text().splitlines()[-30:]
        raise BuildError(f"go {' '.join(args[:3])} ... failed in {cwd} (exit {result.returncode}):\n"
                         + "\n".join(tail))
    return result.stdout


def _module_info(module: str, version: str, cwd: Path, log_file: Path) -> dict:
    return json.loads(_go(["mod", "download", "-json", f"{module}@{version}"], cwd, log_file))


def staging_modules(kubernetes_gomod: str) -> list[str]:
    """The staging modules a Kubernetes release replaces with ./staging/src/<module> in its go.mod."""
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/", kubernetes_gomod, re.M)))


def _write_module(directory: Path, name: str, go_directive: str, requires: dict[str, str],
                  replaces: dict[str, str], tools: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"module {name}", "", f"go {go_directive}", "", "require ("]
    lines += [f"\t{m} {v}" for m, v in sorted(requires.items())]
    lines += [")", ""]
    if replaces:
        lines += ["replace ("] + [f"\t{m} => {m} {v}" for m, v in sorted(replaces.items())] + [")", ""]
    lines += ["tool ("] + [f"\t{t}" for t in tools] + [")", ""]
    (directory / "go.mod").write_text("\n".join(lines))


def _go_directive(gomod: str) -> str:
    match = re.search(r"^go (\S+)", gomod, re.M)
    return match.group(1) if match else "1.26"


def _kubernetes(version: str, work: Path, bin_dir: Path, log_file: Path, say) -> dict[str, float]:
    release = f"v{version}"
    major, minor, patch = version.split(".")
    module_dir = work / "kubernetes"
    module_dir.mkdir(parents=True, exist_ok=True)
    info = _module_info("k8s.io/kubernetes", release, module_dir, log_file)
    gomod = Path(info["GoMod"]).read_text()
    staging = staging_modules(gomod)
    if not staging:
        raise BuildError(f"k8s.io/kubernetes {release}: no staging modules found in its go.mod")
    published = f"v0.{minor}.{patch}"
    commands = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBERNETES_COMMANDS]
    _write_module(module_dir, "locallab/kubernetes-build", _go_directive(gomod), {"k8s.io/kubernetes": release},
                  {m: published for m in staging}, commands)
    say(f"kubernetes {release}: wrapper module with {len(staging)} staging modules replaced by {published}")
    started = time.monotonic()
    _go(["mod", "tidy"], module_dir, log_file)
    say(f"kubernetes {release}: modules resolved in {time.monotonic() - started:.0f}s")
    release_info = json.loads(Path(info["Info"]).read_text())
    commit = (release_info.get("Origin") or {}).get("Hash", "")
    stamp = {"gitVersion": release, "gitMajor": major, "gitMinor": minor, "gitCommit": commit,
             "gitTreeState": "clean", "buildDate": release_info.get("Time", "1970-01-01T00:00:00Z")}
    ldflags = " ".join([COMMON_RECIPE["ldflags"]] + [f"-X '{pkg}.{k}={v}'"
                                                     for pkg in RECIPES["kubernetes"]["stamp_packages"]
                                                     for k, v in stamp.items()])
    return _build_each(dict(zip(KUBERNETES_COMMANDS, commands)), ldflags, module_dir, bin_dir, log_file, say)


def _etcd(version: str, work: Path, bin_dir: Path, log_file: Path, say) -> dict[str, float]:
    release = f"v{version}"
    module_dir = work / "etcd"
    module_dir.mkdir(parents=True, exist_ok=True)
    info = _module_info(ETCD_COMMANDS["etcd"], release, module_dir, log_file)
    gomod = Path(info["GoMod"]).read_text()
    _write_module(module_dir, "locallab/etcd-build", _go_directive(gomod),
                  {m: release for m in ETCD_COMMANDS.values()}, {}, list(ETCD_COMMANDS.values()))
    started = time.monotonic()
    _go(["mod", "tidy"], module_dir, log_file)
    say(f"etcd {release}: modules resolved in {time.monotonic() - started:.0f}s")
    commit = (json.loads(Path(info["Info"]).read_text()).get("Origin") or {}).get("Hash", "")[:9]
    ldflags = COMMON_RECIPE["ldflags"] + (f" -X '{RECIPES['etcd']['stamp']}={commit}'" if commit else "")
    return _build_each(ETCD_COMMANDS, ldflags, module_dir, bin_dir, log_file, say)


def _build_each(commands: dict[str, str], ldflags: str, module_dir: Path, bin_dir: Path, log_file: Path,
                say) -> dict[str, float]:
    seconds = {}
    for name, package in commands.items():
        target = bin_dir / name
        if target.exists():   # an interrupted build keeps what it finished
            say(f"  {name}: already built")
            continue
        say(f"  {name}: building {package}")
        started = time.monotonic()
        _go(["build", *COMMON_RECIPE["flags"], "-ldflags", ldflags, "-o", str(target) + ".tmp", package], module_dir,
            log_file)
        os.replace(str(target) + ".tmp", target)
        seconds[name] = round(time.monotonic() - started, 1)
        say(f"  {name}: {seconds[name]:.0f}s, {target.stat().st_size / 1e6:.0f} MB")
    return seconds


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


BUILDERS = {"etcd": _etcd, "kubernetes": _kubernetes}


def _ensure_group(group: str, version: str, go: str, arch: str, log) -> tuple[Path, dict]:
    key = build_key(group, version, go, arch)
    directory = BUILD_ROOT / f"{group}-{version}-{key}"
    manifest_file = directory / "manifest.json"
    if manifest_file.exists():
        return directory, json.loads(manifest_file.read_text())
    started = time.monotonic()

    def say(message: str) -> None:
        log(f"[build {group} {time.monotonic() - started:6.0f}s] {message}")

    bin_dir, work = directory / "bin", directory / "work"
    bin_dir.mkdir(parents=True, exist_ok=True)
    log_file = directory / "build.log"
    say(f"building {group} {version} with {go} for {arch} into {directory} (go output: {log_file})")
    seconds = BUILDERS[group](version, work, bin_dir, log_file, say)
    total = round(time.monotonic() - started, 1)
    manifest = {"group": group, "version": version, "key": key, "go": go, "arch": arch,
                "recipe": [COMMON_RECIPE, RECIPES[group]], "seconds": seconds, "total_seconds": total,
                "binaries": {p.name: {"sha256": _sha256(p), "size": p.stat().st_size}
                             for p in sorted(bin_dir.iterdir()) if not p.name.endswith(".tmp")}}
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    say(f"done in {total:.0f}s")
    for old in BUILD_ROOT.glob(f"{group}-*"):
        if old != directory and (old / "manifest.json").exists():
            log(f"removing the {group} build of another version or recipe: {old}")
            shutil.rmtree(old, ignore_errors=True)
    return directory, manifest


def ensure_build(versions: BuildVersions | None = None, log=print) -> Build:
    """The cached builds of these versions (default: the program's pins), each group built first if missing.
    Each group (Kubernetes, etcd) is cached on its own: a new etcd patch release does not rebuild Kubernetes."""
    versions = versions or BuildVersions.pinned()
    go, arch = go_version(), go_arch()
    groups, manifests = {}, {}
    for group in BUILDERS:
        groups[group], manifests[group] = _ensure_group(group, versions.of(group), go, arch, log)
    return Build(versions, groups, manifests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes", help="version to build (default: cluster/versions.py)")
    parser.add_argument("--etcd", help="version to build (default: cluster/versions.py)")
    args = parser.parse_args(argv)
    pinned = BuildVersions.pinned()
    versions = BuildVersions(args.kubernetes or pinned.kubernetes, args.etcd or pinned.etcd)
    started = time.monotonic()
    build = ensure_build(versions, log=lambda m: print(m, flush=True))
    print(f"build ready in {time.monotonic() - started:.1f}s: " + ", ".join(str(d) for d in build.groups.values()),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# kube-bench: the Go module proxy refuses github.com/aquasecurity/kube-bench (403, "not available"), so it cannot be
# built like the rest. It is built from a git checkout of the release tag when one is at hand (KUBE_BENCH_SOURCE, a
# git directory), its dependencies from the module proxy, and its benchmark definitions (cfg/) taken from the same
# tag. Without a checkout there is no kube-bench (bench/kube_bench.py says so).
KUBE_BENCH_TAG = "v0.15.6"
KUBE_BENCH_SOURCE = Path(os.environ.get("KUBE_BENCH_SOURCE", "/work/.mirror/aquasecurity+kube-bench/repo"))


def ensure_kube_bench(log=print) -> Path | None:
    """CACHE/build/kube-bench-<tag>/ with bin/kube-bench and cfg/, built first if missing; None without source."""
    directory = BUILD_ROOT / f"kube-bench-{KUBE_BENCH_TAG}-{go_version()}"
    if (directory / "bin" / "kube-bench").exists():
        return directory
    if not (KUBE_BENCH_SOURCE / "HEAD").exists() and not (KUBE_BENCH_SOURCE / ".git").exists():
        return None
    started = time.monotonic()
    source = directory / "src"
    shutil.rmtree(directory, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", str(KUBE_BENCH_SOURCE), "archive", KUBE_BENCH_TAG],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    log_file = directory / "build.log"
    _go(["build", *COMMON_RECIPE["flags"], "-ldflags",
         f"{COMMON_RECIPE['ldflags']} -X github.com/aquasecurity/kube-bench/cmd.KubeBenchVersion={KUBE_BENCH_TAG}",
         "-o", str(directory / "bin" / "kube-bench"), "."], source, log_file)
    shutil.copytree(source / "cfg", directory / "cfg")
    shutil.rmtree(source, ignore_errors=True)
    log(f"[build] kube-bench {KUBE_BENCH_TAG} built in {time.monotonic() - started:.0f}s")
    return directory
