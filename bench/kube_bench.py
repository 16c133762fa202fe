#!/usr/bin/env python3
"""kube-bench (CIS Kubernetes Benchmark) on the lab: the master checks on a controller, the etcd checks on an etcd
member, the node checks on a worker, with the newest benchmark kube-bench ships. Prints each check's result and a summary table.

kube-bench is built from a git checkout of its release (the Go module proxy refuses the module; see
locallab/build.py), so this is a benchmark run by hand, not a test. Uses the running lab `./lab up` started (or
boots one for the run). Usage, as root: .venv/bin/python bench/kube_bench.py [--tag lab]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locallab import session as lab  # noqa: E402
from locallab.build import BUILD_ROOT, KUBE_BENCH_TAG, ensure_kube_bench  # noqa: E402
from locallab.machines import MIRROR_URL  # noqa: E402

RUNS = (("controller-0", "master"), ("etcd-0", "etcd"), ("worker-0", "node"))


def newest_benchmark(cfg: Path) -> tuple[str, str]:
    """The CIS benchmark kube-bench maps the newest Kubernetes release it knows to (cfg/config.yaml
    version_mapping), and that release. (Benchmark names do not sort: cis-1.24 is older than cis-1.12.)"""
    mapping = yaml.safe_load((cfg / "config.yaml").read_text())["version_mapping"]
    releases = [str(v) for v in mapping if re.fullmatch(r"\d+\.\d+", str(v))]    # not eks-1.x, gke-1.x, ...
    newest = max(releases, key=lambda v: tuple(int(x) for x in v.split(".")))
    return mapping[newest], str(newest)


def publish_kube_bench(built: Path) -> None:
    """kube-bench and its cfg/ on the lab's mirror, for the machines to fetch."""
    target = BUILD_ROOT / "mirror" / "lab" / "kube-bench"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built / "bin" / "kube-bench", target / "kube-bench")
    with tarfile.open(target / "cfg.tar.gz", "w:gz") as tar:
        tar.add(built / "cfg", arcname="cfg")


def run(session, node: str, target: str, benchmark: str) -> dict:
    script = f"""set -euo pipefail
install -d /opt/kube-bench
cd /opt/kube-bench
curl -fsS -o kube-bench {MIRROR_URL}/lab/kube-bench/kube-bench && chmod +x kube-bench
curl -fsS {MIRROR_URL}/lab/kube-bench/cfg.tar.gz | tar -xz
./kube-bench run --targets {target} --benchmark {benchmark} --config-dir /opt/kube-bench/cfg \\
  --config /opt/kube-bench/cfg/config.yaml --json
"""
    result = session.on(node, script)
    if result.returncode not in (0,) and not result.stdout.strip().startswith("{"):
        raise SystemExit(f"kube-bench on {node} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", default="lab")
    args = parser.parse_args()
    built = ensure_kube_bench()
    if built is None:
        raise SystemExit("no kube-bench source checkout (KUBE_BENCH_SOURCE): kube-bench cannot be built here")
    benchmark, covers = newest_benchmark(built / "cfg")
    print(f"benchmark {benchmark}: the newest kube-bench {KUBE_BENCH_TAG} has, mapped to Kubernetes {covers}")
    publish_kube_bench(built)
    if not lab.running(args.tag):
        raise SystemExit(f"lab {args.tag} is not running: ./lab up first")
    session = lab.attach(args.tag)
    totals = []
    for node, target in RUNS:
        report = run(session, node, target, benchmark)
        for control in report.get("Controls", []):
            print(f"\n## {node}: {control['id']} {control['text']} ({benchmark})")
            for group in control["tests"]:
                for check in group["results"]:
                    print(f"  {check['status']:<5} {check['test_number']:<8} {check['test_desc']}")
                    if check["status"] == "FAIL":
                        print(f"        found: {(check.get('actual_value') or '').strip()[:160]}")
            counts = Counter(check["status"] for group in control["tests"] for check in group["results"])
            totals.append((node, target, counts))
    print(f"\n| node | target ({benchmark}) | PASS | FAIL | WARN | INFO |\n|---|---|---|---|---|---|")
    for node, target, counts in totals:
        print(f"| {node} | {target} | {counts['PASS']} | {counts['FAIL']} | {counts['WARN']} | {counts['INFO']} |")


if __name__ == "__main__":
    main()
