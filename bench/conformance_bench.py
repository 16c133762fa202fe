#!/usr/bin/env python3
"""Run the Kubernetes conformance suite (or a focus of it) on the lab and print what came of it: the counts, how long
it took, the commit it ran from, and each failure with its first line; --json writes the same as a small record.

A lab that `./lab up` left running is used with --tag (default: lab); without a running lab one is booted for the
run (tag "bench") and removed afterwards. Needs root; hold /work/lab.lock (or your own lab's) around it.

Usage, as root: .venv/bin/python bench/conformance_bench.py [--focus RE] [--skip RE] [--procs N] [--json FILE]
Full certification run: no --skip. The parallel-safe part: --skip '\\[Serial\\]|\\[Disruptive\\]'.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locallab import conformance, session  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]


def commit() -> str:
    """HEAD, with "+changes" when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


@contextlib.contextmanager
def lab_state_dir(tag: str):
    """The running lab `tag`, or a lab booted for this run."""
    if session.running(tag):
        yield session.STATE_ROOT / tag, f"running lab {tag!r}"
        return
    with session.lab_session(tag="bench") as lab:
        yield lab.state_dir, "lab 'bench' booted for this run"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default="lab", help="the running lab to use (default: lab)")
    parser.add_argument("--focus", default=conformance.DEFAULT_FOCUS)
    parser.add_argument("--skip")
    parser.add_argument("--procs", type=int, default=conformance.DEFAULT_PROCS)
    parser.add_argument("--report-dir", type=Path, help="default: conformance-results/bench-<time>")
    parser.add_argument("--json", type=Path, help="write the record here as well")
    args = parser.parse_args()
    report_dir = (args.report_dir or REPOSITORY / "conformance-results" /
                  time.strftime("bench-%Y%m%d-%H%M%S", time.gmtime())).resolve()
    started_at, started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.monotonic()
    with lab_state_dir(args.tag) as (state_dir, which):
        shape = {role: spec["count"] for role, spec in
                 json.loads((state_dir / "state.json").read_text())["config"].items()
                 if isinstance(spec, dict) and "count" in spec}
        summary = conformance.run_suite(state_dir, report_dir, focus=args.focus, skip=args.skip, procs=args.procs,
                                        log=lambda m: print(m, flush=True))
    wall = time.monotonic() - started
    record = {"commit": commit(), "started": started_at, "lab": which, "shape": shape, "focus": args.focus,
              "skip": args.skip, "procs": args.procs, "passed": summary.passed, "failed": summary.failed,
              "skipped": summary.skipped, "selected": summary.selected, "suite_seconds": round(summary.seconds),
              "wall_seconds": round(wall), "failures": [asdict(f) for f in summary.failures],
              "report_dir": str(report_dir)}
    print(f"\ncommit        {record['commit']}")
    print(f"lab           {which}, {shape}")
    print(f"selection     focus {args.focus!r}" + (f", skip {args.skip!r}" if args.skip else "") +
          f", {args.procs} procs: {summary.selected} of {summary.total} specs")
    print(f"result        {summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped")
    print(f"duration      {summary.seconds / 60:.1f} min in the suite, {wall / 60:.1f} min in all "
          "(with the image push and, for a booted lab, its boot)")
    for failure in summary.failures:
        print(f"FAILED {failure.name}\n    {failure.first_line}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"record        {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
