#!/usr/bin/env python3
"""A lab cluster at the previous Kubernetes minor, upgraded in place to the program's pin by replaying the program
with the new `versions.kubernetes`, while a client on every worker keeps writing and reading a ConfigMap through that
worker's haproxy (https://127.0.0.1:6443, as its kubelet and kube-proxy reach the API). Prints the upgrade's duration,
the client requests and how many failed (the goal: 0), the longest stall (the longest time a client went without a
successful request), and the order in which the services restarted (the version skew order: every API server, then
the controller-managers and schedulers, then each worker's kubelet after its drain).

Needs root, the lab's tools and the lab lock: flock /work/lab.lock .venv/bin/python bench/upgrade_bench.py
[--from 1.36.3] [--to 1.37.2] [--json figures.json]. A cold build of a Kubernetes release takes 15 to 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locallab.build import PROGRAM_PINS  # noqa: E402
from locallab.session import lab_session  # noqa: E402

PREVIOUS_MINOR = "1.36.3"     # the newest 1.36 patch of k8s.io/kubernetes on the Go module proxy
CLIENT = r"""#!/bin/bash
# Write then read this worker's ConfigMap through its haproxy every 0.2 s until /run/upgrade-client.stop appears;
# one line per request pair: the time, ok or FAILED and what failed.
k() { timeout 15 /usr/local/bin/kubectl --kubeconfig /run/upgrade-client.kubeconfig -n upgrade-bench "$@"; }
name="client-$(hostname)"
rm -f /run/upgrade-client.stop /run/upgrade-client.log
n=0
while [ ! -e /run/upgrade-client.stop ]; do
  n=$((n + 1))
  if ! out=$(k patch configmap "$name" --type merge -p "{\"data\":{\"n\":\"$n\"}}" 2>&1); then
    echo "$(date +%s.%N) FAILED write $out" | tr '\n' ' ' >> /run/upgrade-client.log; echo >> /run/upgrade-client.log
  elif ! got=$(k get configmap "$name" -o jsonpath='{.data.n}' 2>&1) || [ "$got" != "$n" ]; then
    echo "$(date +%s.%N) FAILED read $got" | tr '\n' ' ' >> /run/upgrade-client.log; echo >> /run/upgrade-client.log
  else
    echo "$(date +%s.%N) ok" >> /run/upgrade-client.log
  fi
  sleep 0.2
done
"""


def kubectl(lab, *args: str, stdin: str | None = None) -> str:
    result = lab.kubectl(*args, stdin=stdin)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def client_kubeconfig(lab) -> str:
    """The stack's admin kubeconfig, pointed at the worker's own haproxy (the API server certificate names
    127.0.0.1)."""
    doc = json.loads(lab.run.outputs["kubeconfig"])
    cluster = doc["clusters"][0]["cluster"]
    cluster["server"] = "https://127.0.0.1:6443"
    cluster.pop("tls-server-name", None)
    return json.dumps(doc)


def started_at(lab, node: str, unit: str) -> float:
    out = lab.on(node, f"systemctl show {unit} -p ExecMainStartTimestampMonotonic --value").stdout.strip()
    return int(out or 0) / 1e6


def stalls_and_failures(log: list[str], since: float, until: float) -> tuple[int, int, float]:
    """(requests, failed, longest time without a successful request) within [since, until]."""
    requests, failed, longest, last_ok = 0, 0, 0.0, since
    for line in log:
        stamp, status = line.split(" ", 2)[:2]
        t = float(stamp)
        if not since <= t <= until:
            continue
        requests += 1
        if status == "ok":
            longest = max(longest, t - last_ok)
            last_ok = t
        else:
            failed += 1
    return requests, failed, max(longest, until - last_ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="old", default=PREVIOUS_MINOR)
    parser.add_argument("--to", dest="new", default=PROGRAM_PINS["kubernetes"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    up_started = time.monotonic()
    with lab_session(tag="upgrade", kubernetes=args.old) as lab:
        up_seconds = time.monotonic() - up_started
        workers = sorted(n for n in lab.nodes if n.startswith("worker-"))
        controllers = sorted(n for n in lab.nodes if n.startswith("controller-"))
        kubectl(lab, "create", "namespace", "upgrade-bench")
        for worker in workers:
            kubectl(lab, "create", "configmap", f"client-{worker}", "-n", "upgrade-bench", "--from-literal=n=0")
            config = client_kubeconfig(lab)
            started = lab.on(worker, f"install -m 0600 /dev/null /run/upgrade-client.kubeconfig\n"
                                     f"cat > /run/upgrade-client.kubeconfig <<'EOF'\n{config}\nEOF\n"
                                     f"cat > /run/upgrade-client.sh <<'EOF'\n{CLIENT}EOF\n"
                                     "chmod 0700 /run/upgrade-client.sh\n"
                                     "systemd-run --unit upgrade-client /run/upgrade-client.sh")
            if started.returncode != 0:
                raise SystemExit(f"cannot start the client on {worker}: {started.stderr}")
        before = {n: kubectl(lab, "get", "node", n, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}")
                  for n in workers}
        time.sleep(5)
        wall_started = time.time()
        upgrade_started = time.monotonic()
        report = lab.upgrade(args.new, log=lambda m: print(m, flush=True))
        upgrade_seconds = time.monotonic() - upgrade_started
        wall_ended = time.time()
        time.sleep(5)
        logs = {}
        for worker in workers:
            lab.on(worker, "touch /run/upgrade-client.stop; sleep 1; systemctl stop upgrade-client 2>/dev/null || true")
            logs[worker] = lab.on(worker, "cat /run/upgrade-client.log").stdout.splitlines()
        failed_steps = report.by_status("failed")
        after = {n: kubectl(lab, "get", "node", n, "-o", "jsonpath={.status.nodeInfo.kubeletVersion}")
                 for n in workers}
        server = json.loads(kubectl(lab, "version", "-o", "json"))["serverVersion"]["gitVersion"]
        restarts = {f"{c} kube-apiserver": started_at(lab, c, "kube-apiserver") for c in controllers}
        restarts.update({f"{c} kube-controller-manager": started_at(lab, c, "kube-controller-manager")
                         for c in controllers})
        restarts.update({f"{w} kubelet": started_at(lab, w, "kubelet") for w in workers})
        apiservers = [t for k, t in restarts.items() if k.endswith("kube-apiserver")]
        managers = [t for k, t in restarts.items() if k.endswith("kube-controller-manager")]
        kubelets = [t for k, t in restarts.items() if k.endswith("kubelet")]
        skew_order_held = max(apiservers) < min(managers) and max(managers) < min(kubelets)
        per_client = {w: stalls_and_failures(lines, wall_started, wall_ended) for w, lines in logs.items()}
        figures = {
            "from": args.old, "to": args.new, "lab_up_seconds": round(up_seconds, 1),
            "upgrade_seconds": round(upgrade_seconds, 1),
            "requests": sum(r for r, _, _ in per_client.values()),
            "failed_requests": sum(f for _, f, _ in per_client.values()),
            "longest_stall_seconds": round(max(s for _, _, s in per_client.values()), 2),
            "per_worker": {w: {"requests": r, "failed": f, "longest_stall_seconds": round(s, 2)}
                           for w, (r, f, s) in per_client.items()},
            "kubelets_before": before, "kubelets_after": after, "api_server_after": server,
            "skew_order_held": skew_order_held,
            "restart_order": [k for k, _ in sorted(restarts.items(), key=lambda kv: kv[1])],
            "steps": {s: len(report.by_status(s)) for s in ("replayed", "unchanged", "failed")},
            "failures": [f"{r.step}: {r.output[-400:]}" for r in failed_steps],
            "failed_lines": [line for lines in logs.values() for line in lines if "FAILED" in line][:20],
        }
    print(f"\nupgrade {args.old} -> {args.new} of a 3/3/{len(workers)} lab, a client on every worker's haproxy:")
    print(f"  lab up at {args.old}       {figures['lab_up_seconds']:8.1f} s")
    print(f"  upgrade (replay)        {figures['upgrade_seconds']:8.1f} s")
    print(f"  client requests         {figures['requests']:8d}")
    print(f"  failed requests         {figures['failed_requests']:8d}")
    print(f"  longest stall           {figures['longest_stall_seconds']:8.2f} s")
    print(f"  kubelets                {before} -> {after}; API server {server}")
    print(f"  skew order held         {skew_order_held}: " + ", ".join(figures["restart_order"]))
    print(f"  steps                   {figures['steps']}")
    for line in figures["failed_lines"] + figures["failures"]:
        print(f"    {line}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if not failed_steps and all(v == f"v{args.new}" for v in after.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
