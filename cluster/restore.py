"""k8s-cluster-restore: the whole cluster back from one etcd snapshot, run from the deployer over SSH.

    python -m cluster.restore --ssh-config ssh.cfg --snapshot /var/lib/etcd-snapshots/etcd-0-<time>.db \
        [--copy-from etcd-0]

`ssh.cfg` is the stack's `sshConfig` output (its hosts name every node); the snapshot must be at the given path on
every etcd member, or on the member `--copy-from` names, which this copies to the others through the deployer first.
The phases (cluster/render/restore.py) run in order, each on all of its nodes at once; the first failure stops the
restore and prints the node's output. docs/day2.md has the runbook around it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from cluster.render.restore import Phase, cluster_restore_plan

# (returncode, output) of a script run as root on a node.
RunOn = Callable[[str, str], tuple[int, str]]
ROLES = {"etcd": "etcd-", "controllers": "controller-", "workers": "worker-"}


class RestoreFailed(RuntimeError):
    pass


@dataclass
class PhaseResult:
    title: str
    seconds: float
    outputs: dict[str, str]


def nodes_by_role(names: Sequence[str]) -> dict[str, list[str]]:
    """The node names of each role, in node order (etcd-0, etcd-1, ...)."""
    order = lambda n: int(n.rsplit("-", 1)[1])
    return {role: sorted((n for n in names if re.fullmatch(rf"{prefix}\d+", n)), key=order)
            for role, prefix in ROLES.items()}


def run_plan(plan: Sequence[Phase], run_on: RunOn, log=print) -> list[PhaseResult]:
    """Every phase in order, each on all its nodes at once; raise RestoreFailed on the first node that fails."""
    results = []
    for number, phase in enumerate(plan, 1):
        log(f"[{number}/{len(plan)}] {phase.title}: {', '.join(phase.nodes)}")
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(phase.nodes))) as pool:
            done = dict(zip(phase.nodes, pool.map(lambda node: run_on(node, phase.script), phase.nodes)))
        failed = {node: out for node, (code, out) in done.items() if code != 0}
        if failed:
            raise RestoreFailed(f"phase {number} ({phase.title}) failed on {', '.join(failed)}:\n"
                                + "\n".join(f"--- {node}\n{out}" for node, out in failed.items()))
        results.append(PhaseResult(phase.title, time.monotonic() - started, {n: out for n, (_, out) in done.items()}))
        log(f"      done in {results[-1].seconds:.0f}s")
    return results


def restore_cluster(*, snapshot: str, nodes: Sequence[str], run_on: RunOn,
                    copy: Callable[[str, str, str], None] | None = None, copy_from: str | None = None,
                    log=print) -> list[PhaseResult]:
    """Copy the snapshot to every member when `copy_from` names the one that holds it, then run the plan."""
    roles = nodes_by_role(nodes)
    if copy_from:
        for member in roles["etcd"]:
            if member != copy_from:
                log(f"copying {snapshot} from {copy_from} to {member}")
                copy(copy_from, member, snapshot)
    plan = cluster_restore_plan(snapshot=snapshot, etcd=roles["etcd"], controllers=roles["controllers"],
                                workers=roles["workers"])
    return run_plan(plan, run_on, log)


def ssh_hosts(config: Path) -> list[str]:
    return [h for h in re.findall(r"^Host (\S+)$", config.read_text(), re.M) if h != "bastion"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ssh-config", required=True, type=Path, help="the stack's sshConfig output, as a file")
    parser.add_argument("--snapshot", required=True, help="the snapshot's path on the etcd members")
    parser.add_argument("--copy-from", help="the etcd member holding the snapshot: copy it to the others first")
    args = parser.parse_args(argv)
    ssh = ["ssh", "-F", str(args.ssh_config), "-o", "BatchMode=yes"]

    def run_on(node: str, script: str) -> tuple[int, str]:
        result = subprocess.run([*ssh, node, "sudo bash -s"], input=script, capture_output=True, text=True)
        return result.returncode, result.stdout + result.stderr

    def copy(source: str, target: str, path: str) -> None:
        quoted = shlex.quote(path)
        store = f"umask 077 && mkdir -p \"$(dirname {quoted})\" && cat > {quoted}"
        reader = subprocess.Popen([*ssh, source, f"sudo cat {quoted}"], stdout=subprocess.PIPE)
        writer = subprocess.run([*ssh, target, f"sudo sh -c {shlex.quote(store)}"], stdin=reader.stdout)
        if reader.wait() != 0 or writer.returncode != 0:
            raise RestoreFailed(f"cannot copy {path} from {source} to {target}")

    try:
        restore_cluster(snapshot=args.snapshot, nodes=ssh_hosts(args.ssh_config), run_on=run_on, copy=copy,
                        copy_from=args.copy_from)
    except RestoreFailed as err:
        print(err, file=sys.stderr)
        return 1
    print("the cluster runs from the snapshot; the old etcd data dirs are kept as /var/lib/etcd.before-restore-*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
