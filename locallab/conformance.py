"""The Kubernetes conformance suite against the lab: `e2e.test`, `ginkgo` and the test images' programs built from
the pinned release's Go modules (a build group of its own, cached like the lab's others), the images pushed to the
lab registry under their upstream names (locallab/conformance_images.py), and the suite run from the deployer
namespace with a line per finished spec, the suite's own JUnit report and a summary.

The build is one wrapper module, as for the lab's Kubernetes (locallab/build.py): k8s.io/kubernetes at the release,
its staging modules replaced by their published v0.<minor>.<patch>, ginkgo at the version the release pins (the CLI
must match the library inside e2e.test). `e2e.test` is a test binary, so it is made by `go test -c` (vet off: it only
costs time); a blank import of its package makes `go mod tidy` resolve what it needs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from locallab import build, conformance_images, images, registry
from locallab.machines import REGISTRY_URL
from locallab.netns import Lab

GROUP = "conformance"
KUBERNETES_MODULE = "k8s.io/kubernetes"
GINKGO_MODULE = "github.com/onsi/ginkgo/v2"
E2E_PACKAGE = "k8s.io/kubernetes/test/e2e"
# What is built besides e2e.test: binary name -> package. nnp is the nonewprivs image's program.
COMMANDS = {"ginkgo": f"{GINKGO_MODULE}/ginkgo", "agnhost": "k8s.io/kubernetes/test/images/agnhost",
            "nnp": "k8s.io/kubernetes/test/images/nonewprivs", "sample-apiserver": "k8s.io/sample-apiserver"}
# Files of the release that the images carry (copied out of the module, so the build group holds all they need).
RELEASE_FILES = ["test/images/agnhost/VERSION", "test/images/agnhost/porter/localhost.crt",
                 "test/images/agnhost/porter/localhost.key", "test/images/kitten/html/kitten.jpg",
                 "test/images/kitten/html/data.json", "test/images/nautilus/html/nautilus.jpg",
                 "test/images/nautilus/html/data.json"]
RECIPE = {"revision": 1, "commands": COMMANDS, "e2e": {"package": E2E_PACKAGE, "flags": ["-vet=off"]},
          "files": RELEASE_FILES}


def ginkgo_version(kubernetes_gomod: str) -> str:
    """The ginkgo a Kubernetes release requires in its go.mod."""
    match = re.search(rf"^\s*{re.escape(GINKGO_MODULE)}\s+(v\S+)", kubernetes_gomod, re.M)
    if not match:
        raise build.BuildError(f"{KUBERNETES_MODULE}: no {GINKGO_MODULE} requirement in its go.mod")
    return match.group(1)


def _build_conformance(version: str, work: Path, bin_dir: Path, log_file: Path, say) -> dict[str, float]:
    release = f"v{version}"
    _, minor, patch = version.split(".")
    module_dir = work / GROUP
    module_dir.mkdir(parents=True, exist_ok=True)
    info = build._module_info(KUBERNETES_MODULE, release, module_dir, log_file)
    gomod = Path(info["GoMod"]).read_text()
    staging = build.staging_modules(gomod)
    if not staging:
        raise build.BuildError(f"{KUBERNETES_MODULE} {release}: no staging modules found in its go.mod")
    ginkgo = ginkgo_version(gomod)
    build._write_module(module_dir, "locallab/conformance-build", build._go_directive(gomod),
                        {KUBERNETES_MODULE: release, GINKGO_MODULE: ginkgo},
                        {m: f"v0.{minor}.{patch}" for m in staging}, list(COMMANDS.values()))
    (module_dir / "e2e_imports.go").write_text(f'package conformancebuild\n\nimport _ "{E2E_PACKAGE}"\n')
    say(f"conformance {release}: wrapper module with {len(staging)} staging modules replaced, ginkgo {ginkgo}")
    started = time.monotonic()
    build._go(["mod", "tidy"], module_dir, log_file)
    say(f"conformance {release}: modules resolved in {time.monotonic() - started:.0f}s")
    files = bin_dir.parent / "files"
    for relative in RELEASE_FILES:
        (files / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(info["Dir"]) / relative, files / relative)
    ldflags = build.kubernetes_ldflags(version, json.loads(Path(info["Info"]).read_text()))
    seconds = build._build_each(COMMANDS, ldflags, module_dir, bin_dir, log_file, say)
    target = bin_dir / "e2e.test"
    if not target.exists():
        say(f"  e2e.test: go test -c {E2E_PACKAGE}")
        started = time.monotonic()
        build._go(["test", "-c", *build.COMMON_RECIPE["flags"], *RECIPE["e2e"]["flags"], "-ldflags", ldflags,
                   "-o", f"{target}.tmp", E2E_PACKAGE], module_dir, log_file)
        os.replace(f"{target}.tmp", target)
        seconds["e2e.test"] = round(time.monotonic() - started, 1)
        say(f"  e2e.test: {seconds['e2e.test']:.0f}s, {target.stat().st_size / 1e6:.0f} MB")
    return seconds


def ensure_conformance_build(kubernetes_version: str | None = None, log=print) -> tuple[Path, dict]:
    """CACHE/build/conformance-<version>-<key>/ (bin/: e2e.test, ginkgo, agnhost, nnp, sample-apiserver; files/: what
    the images take from the release) and its manifest, built first if missing. The version defaults to the
    Kubernetes the lab builds."""
    version = kubernetes_version or build.BuildVersions.pinned().kubernetes
    return build._ensure_group(GROUP, version, build.go_version(), build.go_arch(), log,
                               builder=_build_conformance, recipe=RECIPE)


# --- the run -----------------------------------------------------------------------------------------------------

DEFAULT_FOCUS = r"\[Conformance\]"
DEFAULT_PROCS = 2          # the lab's machines share the host's cores with the suite
# Ginkgo's own suite timeout is 1 h, which a full serial run exceeds; the conformance image and hydrophone set 24 h.
SUITE_TIMEOUT = "24h"
HEARTBEAT_SECONDS = 60


@dataclass(frozen=True)
class Target:
    """What a run needs of a running lab, read from its saved state (locallab/session.py)."""
    lab: Lab
    kubeconfig: Path
    kubectl: Path
    build_groups: dict[str, Path]

    @classmethod
    def of(cls, state_dir: Path) -> "Target":
        state = json.loads((state_dir / "state.json").read_text())
        return cls(Lab(state["tag"], hosts=dict(state["namespaces"]), addresses=dict(state["addresses"])),
                   state_dir / "admin.kubeconfig", Path(state["kubectl"]),
                   {group: Path(d) for group, d in state["build"]["groups"].items()})

    def lab_binary(self, group: str, name: str) -> Path:
        return self.build_groups[group] / "bin" / name


@dataclass
class Failure:
    name: str
    first_line: str


@dataclass
class Summary:
    passed: int
    failed: int
    skipped: int                  # selected, then skipped by the suite itself (e.g. a provider it does not have)
    selected: int                 # specs that the focus and skip selected
    total: int                    # specs in the suite
    seconds: float                # the suite's own time
    failures: list[Failure] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)     # selected spec -> passed, failed, skipped, ...

    def text(self) -> str:
        lines = [f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                 f"({self.selected} of {self.total} specs selected; {self.seconds:.0f}s)"]
        lines += [f"FAILED {f.name}\n    {f.first_line}" for f in self.failures]
        return "\n".join(lines)


def _first_line(text: str) -> str:
    """The failure's first line; gomega's "Expected" alone says nothing, so short lines take the next ones along."""
    line = ""
    for part in text.splitlines():
        part = part.strip().removeprefix("[FAILED] ").removeprefix("[PANICKED] ")
        if line and part.startswith("In ["):       # where it failed: ginkgo's location line ends the message
            break
        if part:
            line = f"{line} {part}".strip()
        if len(line) >= 40:
            break
    return line[:300] or "(no message)"


def read_junit(path: Path) -> Summary:
    """The suite's own JUnit report (junit_01.xml): every spec of the suite is a testcase ("[It] <spec>"); those the
    focus and skip left out are skipped with the message "skipped" alone. Suite-level nodes
    ([SynchronizedBeforeSuite], ...) count only when they failed."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    total, results, failures = 0, {}, []
    for case in suite.iter("testcase"):
        name, status = case.get("name", ""), case.get("status", "")
        spec = name.startswith("[It] ")
        total += spec
        name = name.removeprefix("[It] ")
        skipped = case.find("skipped")
        if skipped is not None or status in ("skipped", "pending"):
            if spec and skipped is not None and skipped.get("message", "") not in ("skipped", "pending"):
                results[name] = "skipped"       # selected, then skipped by the suite itself
            continue
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if status == "passed" and problem is None:
            if spec:
                results[name] = "passed"
            continue
        if spec:
            results[name] = status or "failed"
        text = (problem.get("message") or problem.text or "") if problem is not None else status
        failures.append(Failure(name, _first_line(text)))
    count = collections.Counter(results.values())
    return Summary(count["passed"], len(failures), count["skipped"], len(results), total,
                   float(suite.get("time", 0)), failures, results)


def push_images(target: Target, directory: Path, log=print) -> dict[str, images.Image]:
    """The conformance images (built first if missing) in the lab registry under their e2e references; directory
    is the conformance build group."""
    missing = conformance_images.check_references(directory / "bin" / "e2e.test")
    if missing:
        raise conformance_images.ImageError(
            f"e2e.test does not ask for {', '.join(missing)}: its release uses other images than "
            "locallab/conformance_images.py REFERENCES names (compare with `e2e.test --list-images`)")
    lab_images = images.ensure_images({name: target.lab_binary(name, name) for name in images.GO_BUILT}, log=log)
    built = conformance_images.ensure_images(directory, lab_images, target.lab_binary("etcd", "etcd"), log=log)
    started = time.monotonic()
    registry.run_client(target.lab, "deployer", "push", REGISTRY_URL, *conformance_images.push_targets(built))
    log(f"conformance: {len(built)} images in the lab registry ({time.monotonic() - started:.0f}s)")
    return built


def ginkgo_command(directory: Path, target: Target, report_dir: Path, *, focus: str, skip: str | None,
                   procs: int) -> list[str]:
    """ginkgo running the prebuilt e2e.test as hydrophone and the conformance image do: provider skeleton, the
    lab's kubeconfig and kubectl, the reports in report_dir."""
    bin_dir = directory / "bin"
    return [str(bin_dir / "ginkgo"), f"--procs={procs}", f"--timeout={SUITE_TIMEOUT}", "--no-color", "-v",
            f"--focus={focus}", *([f"--skip={skip}"] if skip else []), str(bin_dir / "e2e.test"), "--",
            "--provider=skeleton", f"--kubeconfig={target.kubeconfig}", f"--kubectl-path={target.kubectl}",
            f"--report-dir={report_dir}", f"--e2e-output-dir={report_dir}", "--disable-log-dump"]


def run_suite(state_dir: Path, report_dir: Path, *, focus: str = DEFAULT_FOCUS, skip: str | None = None,
              procs: int = DEFAULT_PROCS, log=print) -> Summary:
    """The suite against the running lab whose state is in state_dir, from its deployer namespace: images pushed,
    a line per finished spec, then the summary (also in report_dir: junit_01.xml, e2e.log, summary.txt/.json)."""
    target = Target.of(state_dir)
    directory, _ = ensure_conformance_build(log=log)
    push_images(target, directory, log)
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("junit_01.xml", "summary.txt", "summary.json"):
        (report_dir / stale).unlink(missing_ok=True)
    command = ginkgo_command(directory, target, report_dir, focus=focus, skip=skip, procs=procs)
    log(f"conformance: running '{focus}'" + (f" skipping '{skip}'" if skip else "") + f" with {procs} procs; "
        f"the suite's output goes to {report_dir / 'e2e.log'}")
    child = target.lab.popen("deployer", sys.executable, "-m", "locallab.conformance", "in-namespace",
                             "--log", str(report_dir / "e2e.log"), "--", *command,
                             cwd=registry.REPOSITORY_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            log(line.rstrip("\n"))
    except KeyboardInterrupt:
        # ginkgo got the interrupt too: it stops the running specs and writes its report, which is summarized.
        log("conformance: interrupted; waiting for ginkgo to write its report (interrupt again to stop waiting)")
        for line in child.stdout:
            log(line.rstrip("\n"))
    finally:
        child.wait()
    junit = report_dir / "junit_01.xml"
    if not junit.exists():
        raise RuntimeError(f"the suite wrote no {junit} (ginkgo exit {child.returncode}): see {report_dir}/e2e.log")
    summary = read_junit(junit)
    (report_dir / "summary.txt").write_text(summary.text() + "\n")
    (report_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=1) + "\n")
    return summary


# --- inside the deployer namespace: ginkgo, its output to e2e.log and a line per finished spec ------------------------

# ginkgo -v prints each finished spec as a block: a header ("• [12.3 seconds]", "• [FAILED] [40.1 seconds]",
# "S [SKIPPED] [0.0 seconds]"), then the spec's name. (e2e.test's --progress-report-url would be the interface for
# this, but at 1.37.2 its per-spec updates are never posted: the count stays 0.) Suite-level nodes
# ("[SynchronizedBeforeSuite] PASSED [...]") do not match.
SPEC_HEADER = re.compile(r"^[•S↺] (?:\[([A-Z][A-Z0-9 -]*[A-Z0-9])\] )?\[[\d.]+ seconds\]$")
WILL_RUN = re.compile(r"^Will run (\d+) of \d+ specs")


class _Progress:
    """Turns ginkgo's output into progress lines on stdout."""

    def __init__(self) -> None:
        self.total: int | str = "?"
        self.done = self.failed = 0
        self.started = self.last = time.monotonic()
        self.state: str | None = None        # a header was read; the next line names its spec

    def read(self, line: str) -> None:
        line = line.rstrip("\n")
        if self.state is not None:
            state, self.state = self.state, None
            self.done += 1
            self.failed += state not in ("passed", "skipped")
            self.last = time.monotonic()
            self.say(f"{state:<6} {line.strip()}")
            return
        header, will_run = SPEC_HEADER.match(line), WILL_RUN.match(line)
        if header:
            state = (header.group(1) or "passed").lower()
            self.state = "passed" if state.startswith("flakey") else state
        elif will_run:
            self.total = int(will_run.group(1))

    def say(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[{self.done:>4}/{self.total} {self.failed} failed {elapsed // 60:3d}m{elapsed % 60:02d}s] {message}",
              flush=True)


def in_namespace(log_path: Path, command: list[str]) -> int:
    """Runs ginkgo (`command`) with its output in log_path and a progress line per finished spec on stdout; returns
    ginkgo's exit code. An interrupt reaches ginkgo from the terminal (same process group): ginkgo then stops the
    running specs and still writes its reports, which this process waits for."""
    progress = _Progress()
    signal.signal(signal.SIGINT, lambda *_: progress.say("interrupted: ginkgo is stopping the running specs"))
    ginkgo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, errors="replace")

    def copy() -> None:
        with open(log_path, "w", buffering=1) as log:     # line by line, so that it can be followed
            for line in ginkgo.stdout:
                log.write(line)
                progress.read(line)

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(timeout=HEARTBEAT_SECONDS)
        if reader.is_alive() and time.monotonic() - progress.last >= HEARTBEAT_SECONDS:
            progress.say("running")
    code = ginkgo.wait()
    progress.say(f"ginkgo exited with {code}")
    return code


# --- ./lab conformance ---------------------------------------------------------------------------------------------

def add_parser(commands) -> None:
    parser = commands.add_parser("conformance", help="run the Kubernetes conformance suite (e2e.test) against the "
                                 "running lab; builds e2e.test, ginkgo and the test images first if missing")
    parser.add_argument("--focus", default=DEFAULT_FOCUS, help=f"specs to run, a regex (default: {DEFAULT_FOCUS})")
    parser.add_argument("--skip", help=r"specs to leave out, a regex (e.g. '\[Serial\]|\[Disruptive\]')")
    parser.add_argument("--procs", type=int, default=DEFAULT_PROCS,
                        help=f"ginkgo's parallel processes (default: {DEFAULT_PROCS})")
    parser.add_argument("--report-dir", type=Path,
                        help="where junit_01.xml, e2e.log and the summary go (default: conformance-results/<time>)")


def command(args, state_dir: Path) -> int:
    """`./lab conformance`: exit 0 when every selected spec passed (or was skipped by the suite), 1 otherwise."""
    if args.procs < 1:
        raise SystemExit(f"lab conformance: --procs {args.procs}: must be 1 or more")
    report_dir = args.report_dir or Path("conformance-results") / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    started = time.monotonic()
    summary = run_suite(state_dir, report_dir.resolve(), focus=args.focus, skip=args.skip, procs=args.procs,
                        log=lambda m: print(m, flush=True))
    print(summary.text())
    print(f"conformance: {time.monotonic() - started:.0f}s in all; reports in {report_dir}")
    return 1 if summary.failed or not summary.selected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locallab.conformance", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("build", help="build e2e.test, ginkgo and the test images' programs (the default)")
    inside = commands.add_parser("in-namespace", help="(used by run_suite) run ginkgo with progress lines")
    inside.add_argument("--log", type=Path, required=True)
    inside.add_argument("ginkgo", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "in-namespace":
        return in_namespace(args.log, args.ginkgo[1:] if args.ginkgo[:1] == ["--"] else args.ginkgo)
    started = time.monotonic()
    directory, manifest = ensure_conformance_build(log=lambda m: print(m, flush=True))
    print(f"conformance build ready in {time.monotonic() - started:.1f}s: {directory} "
          f"(cold: {manifest['total_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
