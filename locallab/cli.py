"""`./lab`: the local lab as a command. See docs/lab.md."""

from __future__ import annotations

import argparse
import os
import sys
import time

from locallab import conformance, session


PASS_THROUGH = {"kubectl": 0, "ssh": 1}    # command -> how many of its own arguments come before the passed ones


def split_pass_through(argv: list[str]) -> tuple[list[str], list[str]]:
    """(what argparse reads, what goes to kubectl or to the node unchanged): everything after `kubectl`, or after
    `ssh NODE`, is passed as typed, options like `-n` included, which argparse would take for the lab's own."""
    position = 0
    while position < len(argv) and argv[position].startswith("-"):
        position += 2 if argv[position] == "--tag" else 1      # the lab's own options come before the command
    if position < len(argv) and argv[position] in PASS_THROUGH:
        cut = position + 1 + PASS_THROUGH[argv[position]]
        return argv[:cut], argv[cut:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    own, passed = split_pass_through(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lab", description="The program's own node steps on local machines: "
                                     "the pinned releases (downloaded from their publishers, or built from Go "
                                     "modules when they cannot be), images served by a registry of the lab's own, "
                                     "machines booted with systemd-nspawn.")
    parser.add_argument("--tag", default="lab", help="name of the lab (several can run side by side)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build what is missing, boot the machines, replay the program, keep running")
    shape = " (default: 3 for a new lab; a running lab keeps its own)"
    up.add_argument("--workers", type=int, help="worker count; a running lab grows or shrinks to it" + shape)
    up.add_argument("--controllers", type=int, help="controller count" + shape)
    up.add_argument("--etcd", type=int, help="etcd member count" + shape)
    up.add_argument("--kubernetes", help="Kubernetes release (default: the program's pin); a running lab is "
                    "upgraded to it in place, in the version skew order")
    commands.add_parser("status", help="the machines and what was replayed")
    commands.add_parser("kubectl", help="kubectl ARGS...: kubectl with the stack's admin kubeconfig, from the "
                        "deployer; every argument after `kubectl` is kubectl's")
    ssh = commands.add_parser("ssh", help="ssh NODE [COMMAND...]: SSH to a node as the stack's user, from the "
                              "deployer; every argument after NODE is the remote command's")
    ssh.add_argument("node")
    commands.add_parser("down", help="power off and remove every machine, namespace and mount of the lab")
    conformance.add_parser(commands)
    args = parser.parse_args(own)

    if os.geteuid() != 0:
        print("lab: run as root (network namespaces, systemd-nspawn)", file=sys.stderr)
        return 2
    if args.command == "up":
        started = time.monotonic()
        lab = session.up(tag=args.tag, etcd=args.etcd, controllers=args.controllers, workers=args.workers,
                         kubernetes=args.kubernetes, log=lambda m: print(m, flush=True))
        counts = lab.first_report.table().splitlines()[-1]
        print(f"replay: {counts} (every step: {lab.state_dir / 'replay-report.txt'})")
        print(f"lab {args.tag} is up ({time.monotonic() - started:.0f}s): ./lab status, ./lab kubectl get nodes, "
              f"./lab ssh controller-0, ./lab down")
        return 0
    if args.command == "status":
        print(session.status(args.tag))
        return 0
    if args.command == "down":
        session.down(args.tag, log=print)
        print(f"lab {args.tag}: removed")
        return 0
    if not session.running(args.tag):
        print(f"lab {args.tag} is not running: ./lab up", file=sys.stderr)
        return 1
    if args.command == "conformance":
        return conformance.command(args, session.STATE_ROOT / args.tag)
    if args.command == "kubectl":
        command = session.kubectl_command(args.tag, passed)
    else:
        command = session.ssh_command(args.tag, args.node, passed)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
