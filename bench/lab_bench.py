#!/usr/bin/env python3
"""Boot the local lab and replay the program's remote steps; print how long booting took and how long the replayed
steps of each role ran (summed over that role's hosts, and the longest single host), plus the wall time.

Needs root and the lab's tools (see README, "Local lab"). Usage, as root: .venv/bin/python bench/lab_bench.py
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.session import lab_session  # noqa: E402


def main() -> None:
    with lab_session(tag="bench") as session:
        report = session.first_report
        per_role: dict[str, float] = defaultdict(float)
        per_host: dict[str, float] = defaultdict(float)
        for row in report.by_status("replayed"):
            role = row.step.split("-", 1)[0]
            host = "-".join(row.step.split("-", 2)[:2])
            per_role[role] += row.seconds
            per_host[host] += row.seconds
        print(f"rootfs ready        {session.timings['rootfs']:6.1f} s (0 when cached)")
        print(f"boot 9 machines     {session.timings['boot']:6.1f} s (until each answers SSH)")
        print(f"replay, wall time   {session.timings['replay']:6.1f} s")
        for role in ("etcd", "controller", "worker"):
            longest = max(v for h, v in per_host.items() if h.startswith(role))
            print(f"replay {role:<11}  {per_role[role]:6.1f} s summed over hosts, {longest:4.1f} s on the busiest")
        print(f"steps: {len(report.by_status('replayed'))} replayed, {len(report.by_status('not replayed'))} "
              "not replayed")


if __name__ == "__main__":
    main()
