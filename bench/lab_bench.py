#!/usr/bin/env python3
"""Boot the local lab and replay the program's remote steps; print the build times (cold: as recorded when the
cache was filled; warm: this run's cache hit), how long booting took, the wall time of the replay, the time from
`./lab up` to the smoke test passing (the replay ends with the smoke test's fetch from every worker), the real time
of every replayed step, and each worker step's time across the workers (the figures bench/apply_model.py uses).

Needs root and the lab's tools (docs/lab.md). Usage, as root: .venv/bin/python bench/lab_bench.py
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locallab.build import ensure_build  # noqa: E402
from locallab.session import lab_session  # noqa: E402


def main() -> None:
    started = time.monotonic()
    build = ensure_build()
    warm = time.monotonic() - started
    up_started = time.monotonic()
    with lab_session(tag="bench") as session:
        up_seconds = time.monotonic() - up_started
        report = session.first_report
        print(f"build, cold          {build.cold_seconds:7.1f} s (with {build.manifests['kubernetes']['go']}, "
              "recorded when each group's cache was filled, module downloads included)")
        for group, manifest in build.manifests.items():
            print(f"  {group + ' ' + manifest['version']:<26} {manifest['total_seconds']:7.1f} s")
            for name, seconds in manifest["seconds"].items():
                print(f"    {name:<24} {seconds:7.1f} s")
        print(f"build, warm          {warm:7.1f} s (cache hit)")
        print(f"binaries             {session.timings['build']:7.1f} s (release archives or the Go build, and "
              "the mirror's archives; cached)")
        print(f"network, images      {session.timings['network'] + session.timings['images']:7.1f} s")
        print(f"boot 9 machines      {session.timings['boot']:7.1f} s (the rootfs when cached, then until each "
              "answers SSH)")
        print(f"replay, wall time    {session.timings['replay']:7.1f} s")
        print(f"checks               {session.timings['checks']:7.1f} s (Ready nodes, nginx on every worker)")
        per_role: dict[str, float] = defaultdict(float)
        for row in report.by_status("replayed"):
            per_role[row.step.split("-", 1)[0]] += row.seconds
        for role, seconds in per_role.items():
            print(f"replay {role:<13} {seconds:7.1f} s summed over its hosts")
        print(f"up, to smoke test    {up_seconds:7.1f} s (./lab up with a warm cache: build check, boot, replay "
              "until nginx answered on every worker)")
        per_worker_step: dict[str, list[float]] = defaultdict(list)
        for row in report.by_status("replayed"):
            match = re.fullmatch(r"worker-\d+-(.+)", row.step)
            if match:
                per_worker_step[match.group(1)].append(row.seconds)
        print("\nworker steps across the workers (s): median, max")
        for step, seconds in sorted(per_worker_step.items(), key=lambda kv: -max(kv[1])):
            print(f"  {step:<32} {statistics.median(seconds):6.1f} {max(seconds):6.1f}")
        print("\nevery replayed step (real time, s):")
        for row in sorted(report.by_status("replayed"), key=lambda r: -r.seconds):
            print(f"  {row.step:<48} {row.seconds:6.1f}")
        print(f"\nsteps: {len(report.by_status('replayed'))} replayed, {len(report.by_status('not replayed'))} "
              "not replayed")


if __name__ == "__main__":
    main()
