"""Build the pinned Kubernetes, etcd and worker releases from their Go modules, once per version set, cached.

Kubernetes cannot be built with `go install k8s.io/kubernetes/cmd/X@vN`: its go.mod requires every staging module
(k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and points them at ./staging with `replace`, which only the main
module may do. So the build writes a small wrapper module that requires k8s.io/kubernetes at the pinned release and
replaces each staging module with the published v0.<minor>.<patch> of the same release (the list is read from the
release's own go.mod, so a new staging module is picked up). etcd's server, etcdctl and etcdutl modules pin each
other at the same release and build the same way through a wrapper of their own.

The worker components (containerd, runc, the CNI plugins, crictl) and the add-ons (CoreDNS, metrics-server) have no
replace directives in their go.mod, so a wrapper module that requires the release resolves exactly the dependencies
the release pins. One generic builder writes it (the commands as `tool`s) and builds each command with the tags, cgo
setting and link flags of that project's own release build (WORKER_RECIPES).

Binaries are stamped with `-X` as the release scripts do (hack/lib/version.sh for Kubernetes), so `kubectl version`,
`/version`, the Node objects and `containerd --version` report the pinned release instead of v0.0.0-master.

Output: CACHE/build/<group>-<version>-<key>/bin/<binary> per group (kubernetes, etcd, containerd, runc, cni-plugins,
crictl, coredns, metrics-server), where key is a hash of the group's version, its recipe below, the Go version and
the architecture.
A finished group leaves manifest.json (sha256 and build time per binary); a warm run reads it and returns in well
under a second. A group's build of the same version with another recipe is removed once the new one is done; builds
of other versions stay (an upgrade lab needs two Kubernetes releases at once, and labs of other branches share this
cache). GOMODCACHE and GOCACHE are Go's own (default locations), so a changed recipe rebuilds from the compiler cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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

from cluster.versions import DEFAULT_VERSIONS, IMAGES
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

# The worker components, each as its project's release build makes it (read from the release's Makefile or release
# workflow). A recipe's cgo, flags and ldflags replace COMMON_RECIPE's; `stamp` is -X symbol -> value, formatted with
# the version (without "v") and the release commit; a stamp that needs an unknown commit is left out.
WORKER_RECIPES = {
    # Makefile, STATIC=1 (static-release): cgo off; no_grpc for the shim as SHIM_GO_BUILDTAGS; the snapshotters that
    # need cgo or kernel headers (BUILDING.md) left out.
    "containerd": {
        "revision": 1, "module": "github.com/containerd/containerd/v2",
        "commands": {"containerd": "github.com/containerd/containerd/v2/cmd/containerd",
                     "containerd-shim-runc-v2": "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
                     "ctr": "github.com/containerd/containerd/v2/cmd/ctr"},
        "tags": ["urfave_cli_no_docs", "osusergo", "netgo", "static_build", "no_btrfs", "no_devmapper", "no_zfs",
                 "no_aufs"],
        "command_tags": {"containerd-shim-runc-v2": ["no_grpc"]},
        "stamp": {"github.com/containerd/containerd/v2/version.Version": "v{version}",
                  "github.com/containerd/containerd/v2/version.Revision": "{commit}",
                  "github.com/containerd/containerd/v2/version.Package": "github.com/containerd/containerd/v2"}},
    # Makefile `static` as script/release_build.sh runs it: cgo with libseccomp, a static PIE (amd64 and arm64, the
    # architectures the program pins), gitCommit as `git describe --long` prints it; the version is embedded. Since
    # 1.5 the release also links libpathrs (a Rust library, not packaged here): the lab builds without it, as the
    # Makefile allows (RUNC_BUILDTAGS=-libpathrs), and runc uses its Go path resolution instead.
    "runc": {
        "revision": 1, "module": "github.com/opencontainers/runc", "cgo": "1",
        "commands": {"runc": "github.com/opencontainers/runc"},
        "tags": ["seccomp", "urfave_cli_no_docs", "netgo", "osusergo"],
        "flags": ["-trimpath", "-buildmode=pie"],
        "ldflags": "-s -w -buildid= -linkmode external -extldflags -static-pie",
        "stamp": {"main.gitCommit": "v{version}-0-g{commit:.9}"}},
    # .github/workflows/release.yaml: build_linux.sh with CGO_ENABLED=0 and BuildVersion set to the tag.
    "cni-plugins": {
        "revision": 1, "module": "github.com/containernetworking/plugins",
        "commands": {"bridge": "github.com/containernetworking/plugins/plugins/main/bridge",
                     "host-local": "github.com/containernetworking/plugins/plugins/ipam/host-local",
                     "loopback": "github.com/containernetworking/plugins/plugins/main/loopback",
                     "portmap": "github.com/containernetworking/plugins/plugins/meta/portmap"},
        "stamp": {"github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion": "v{version}"}},
    # Makefile: CGO_ENABLED=0, pkg/version.Version from `git describe` without the "v".
    "crictl": {
        "revision": 1, "module": "sigs.k8s.io/cri-tools",
        "commands": {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
        "stamp": {"sigs.k8s.io/cri-tools/pkg/version.Version": "{version}"}},
    # Makefile: CGO_ENABLED=0, -trimpath, `-w` and client-go's version stamps from the tag and its commit (the build
    # date is left out: it would make every build another binary).
    "metrics-server": {
        "revision": 1, "module": "sigs.k8s.io/metrics-server",
        "commands": {"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        "ldflags": "-w",
        "stamp": {"k8s.io/client-go/pkg/version.gitVersion": "v{version}",
                  "k8s.io/client-go/pkg/version.gitCommit": "{commit}"}},
    # Makefile: CGO_ENABLED=0, coremain.GitCommit (the version itself is a constant in coremain).
    "coredns": {
        "revision": 1, "module": "github.com/coredns/coredns",
        "commands": {"coredns": "github.com/coredns/coredns"},
        "stamp": {"github.com/coredns/coredns/coremain.GitCommit": "{commit:.7}"}},
}
RECIPES.update(WORKER_RECIPES)

# The commit each release tag names (`git rev-parse v<version>^{commit}` in the upstream repository): the Go module
# proxy does not record it for these modules. A version missing here builds without its commit stamp.
RELEASE_COMMITS = {
    "containerd": {"2.3.4": "db8809540e1a7a9da5d518876894933ff55692ab"},
    "runc": {"1.4.3": "bb14dabeb7185bb72c8c86735d090dcb20f36587", "1.5.1": "8f2685a471d3347a686ad3909783d8aafc6bb208"},
    "coredns": {"1.14.6": "424d125775cd70fa90dfc80bf0e52cc9a9aeb574"},
    "metrics-server": {"0.9.0": "2a7c4b2c7d46552ff47f4aeaa3a735c582587ecd"},
}


class BuildError(RuntimeError):
    pass


# Group -> the version the program pins: cluster/versions.py DEFAULT_VERSIONS, CoreDNS and metrics-server from their
# images' tags.
PROGRAM_PINS = {**DEFAULT_VERSIONS, **{image: IMAGES[image].rsplit(":", 1)[1].removeprefix("v")
                                       for image in ("coredns", "metrics-server")}}


@dataclass(frozen=True)
class BuildVersions:
    """One version per build group, as in cluster/versions.py ("1.37.2", not "v1.37.2"). Every field defaults to the
    program's pin, so a lab state saved before a group existed still loads."""
    kubernetes: str = PROGRAM_PINS["kubernetes"]
    etcd: str = PROGRAM_PINS["etcd"]
    containerd: str = PROGRAM_PINS["containerd"]
    runc: str = PROGRAM_PINS["runc"]
    cni_plugins: str = PROGRAM_PINS["cni-plugins"]
    crictl: str = PROGRAM_PINS["crictl"]
    coredns: str = PROGRAM_PINS["coredns"]
    metrics_server: str = PROGRAM_PINS["metrics-server"]

    @classmethod
    def pinned(cls) -> "BuildVersions":
        """The versions the program pins, read at run time. K8S_FROM_SCRATCH_LAB_<GROUP> (KUBERNETES, ETCD,
        CONTAINERD, RUNC, CNI_PLUGINS, CRICTL, COREDNS, METRICS_SERVER) builds another release of that group
        instead."""
        return cls(**{_field(group): os.environ.get(f"K8S_FROM_SCRATCH_LAB_{_field(group).upper()}") or version
                      for group, version in PROGRAM_PINS.items()})

    def of(self, group: str) -> str:
        return getattr(self, _field(group))

    def program_versions(self) -> dict[str, str]:
        """Version key of cluster/versions.py -> the built version: what mirror.publish serves."""
        return {key: self.of(key) for key in DEFAULT_VERSIONS}


def _field(group: str) -> str:
    return group.replace("-", "_")


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


def build_key(group: str, version: str, go: str, arch: str, recipe: dict | None = None) -> str:
    material = {"group": group, "version": version, "recipe": [COMMON_RECIPE, recipe or RECIPES[group]], "go": go,
                "arch": arch}
    commit = RELEASE_COMMITS.get(group, {}).get(version)
    if commit:   # only where one is known, so the Kubernetes and etcd keys stay what they were
        material["commit"] = commit
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _env(cgo: str) -> dict:
    env = dict(os.environ)
    env.update({"CGO_ENABLED": cgo, "GOTOOLCHAIN": env.get("GOTOOLCHAIN", "local"), "GOFLAGS": "-mod=mod",
                "GOWORK": "off"})
    return env


def _go(args: list[str], cwd: Path, log_file: Path, cgo: str = COMMON_RECIPE["cgo"]) -> str:
    with open(log_file, "a") as log:
        log.write(f"$ go {' '.join(args)}\n")
        log.flush()
        result = subprocess.run(["go", *args], cwd=cwd, env=_env(cgo), stdout=subprocess.PIPE, stderr=log, text=True)
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
    _, minor, patch = version.split(".")
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
    ldflags = kubernetes_ldflags(version, json.loads(Path(info["Info"]).read_text()))
    return _build_each(dict(zip(KUBERNETES_COMMANDS, commands)), ldflags, module_dir, bin_dir, log_file, say)


def kubernetes_ldflags(version: str, release_info: dict) -> str:
    """The -X version stamps hack/lib/version.sh gives a release; `release_info` is the proxy's .info of
    k8s.io/kubernetes at that release (its Origin names the commit)."""
    major, minor, _ = version.split(".")
    stamp = {"gitVersion": f"v{version}", "gitMajor": major, "gitMinor": minor,
             "gitCommit": (release_info.get("Origin") or {}).get("Hash", ""), "gitTreeState": "clean",
             "buildDate": release_info.get("Time", "1970-01-01T00:00:00Z")}
    return " ".join([COMMON_RECIPE["ldflags"]] + [f"-X '{pkg}.{k}={v}'"
                                                  for pkg in RECIPES["kubernetes"]["stamp_packages"]
                                                  for k, v in stamp.items()])


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
                say, recipe: dict | None = None) -> dict[str, float]:
    """Each command into bin_dir with COMMON_RECIPE, or with a worker recipe's cgo, flags and tags."""
    recipe = {**COMMON_RECIPE, **(recipe or {})}
    seconds = {}
    for name, package in commands.items():
        target = bin_dir / name
        if target.exists():   # an interrupted build keeps what it finished
            say(f"  {name}: already built")
            continue
        say(f"  {name}: building {package}")
        started = time.monotonic()
        tags = recipe.get("tags", []) + recipe.get("command_tags", {}).get(name, [])
        _go(["build", *recipe["flags"], *(["-tags", ",".join(tags)] if tags else []), "-ldflags", ldflags,
             "-o", str(target) + ".tmp", package], module_dir, log_file, recipe["cgo"])
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


def _worker(group: str, version: str, work: Path, bin_dir: Path, log_file: Path, say) -> dict[str, float]:
    """A WORKER_RECIPES group: a wrapper module requiring the release, its commands as tools, each built as the
    project's release build does."""
    recipe, release = RECIPES[group], f"v{version}"
    module_dir = work / group
    module_dir.mkdir(parents=True, exist_ok=True)
    info = _module_info(recipe["module"], release, module_dir, log_file)
    _write_module(module_dir, f"locallab/{group}-build", _go_directive(Path(info["GoMod"]).read_text()),
                  {recipe["module"]: release}, {}, list(recipe["commands"].values()))
    started = time.monotonic()
    _go(["mod", "tidy"], module_dir, log_file)
    say(f"{group} {release}: modules resolved in {time.monotonic() - started:.0f}s")
    return _build_each(recipe["commands"], worker_ldflags(group, version), module_dir, bin_dir, log_file, say, recipe)


def worker_ldflags(group: str, version: str) -> str:
    recipe, commit = RECIPES[group], RELEASE_COMMITS.get(group, {}).get(version, "")
    stamps = [f"-X '{symbol}={value.format(version=version, commit=commit)}'"
              for symbol, value in recipe.get("stamp", {}).items() if commit or "{commit" not in value]
    return " ".join([recipe.get("ldflags", COMMON_RECIPE["ldflags"]), *stamps])


BUILDERS = {"etcd": _etcd, "kubernetes": _kubernetes,
            **{group: functools.partial(_worker, group) for group in WORKER_RECIPES}}


def _ensure_group(group: str, version: str, go: str, arch: str, log, builder=None,
                  recipe: dict | None = None) -> tuple[Path, dict]:
    """A group of BUILDERS, or one built by `builder` with `recipe` (locallab/conformance.py's, which `./lab up`
    does not build)."""
    recipe = recipe or RECIPES[group]
    key = build_key(group, version, go, arch, recipe)
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
    seconds = (builder or BUILDERS[group])(version, work, bin_dir, log_file, say)
    total = round(time.monotonic() - started, 1)
    manifest = {"group": group, "version": version, "key": key, "go": go, "arch": arch,
                "recipe": [COMMON_RECIPE, recipe], "seconds": seconds, "total_seconds": total,
                "binaries": {p.name: {"sha256": _sha256(p), "size": p.stat().st_size}
                             for p in sorted(bin_dir.iterdir()) if not p.name.endswith(".tmp")}}
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    say(f"done in {total:.0f}s")
    for old in BUILD_ROOT.glob(f"{group}-{version}-*"):
        if old != directory and (old / "manifest.json").exists():
            log(f"removing the {group} {version} build of another recipe: {old}")
            shutil.rmtree(old, ignore_errors=True)
    return directory, manifest


def ensure_build(versions: BuildVersions | None = None, log=print, groups: tuple[str, ...] = tuple(BUILDERS)) -> Build:
    """The cached builds of these versions (default: the program's pins), each group built first if missing.
    Each group (kubernetes, etcd, containerd, runc, cni-plugins, crictl, coredns, metrics-server) is cached on its
    own: a new etcd patch release rebuilds nothing else. `groups`: only these (the lab builds only CoreDNS and
    metrics-server when it downloaded the rest)."""
    versions = versions or BuildVersions.pinned()
    if shutil.which("go") is None:
        raise BuildError(f"building {', '.join(groups)} from Go modules needs Go 1.26 on PATH (https://go.dev/dl/)")
    go, arch = go_version(), go_arch()
    built, manifests = {}, {}
    for group in groups:
        built[group], manifests[group] = _ensure_group(group, versions.of(group), go, arch, log)
    return Build(versions, built, manifests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for group in BUILDERS:
        parser.add_argument(f"--{group}", help="version to build (default: cluster/versions.py)")
    args = vars(parser.parse_args(argv))
    versions = dataclasses.replace(BuildVersions.pinned(),
                                   **{_field(group): args[_field(group)] for group in BUILDERS if args[_field(group)]})
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
