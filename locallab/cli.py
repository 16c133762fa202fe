"""`./lab`: the local lab as a command. See README, "Try the node side locally"."""

from __future__ import annotations

import argparse
import os
import sys
import time

from locallab import session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab", description="The program's own node steps on local machines: "
                                     "Kubernetes, etcd, containerd, runc, the CNI plugins, crictl and CoreDNS built "
                                     "from their Go modules, images served by a registry of the lab's own, machines "
                                     "booted with systemd-nspawn.")
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
    kubectl = commands.add_parser("kubectl", help="kubectl with the stack's admin kubeconfig, from the deployer")
    kubectl.add_argument("args", nargs=argparse.REMAINDER)
    ssh = commands.add_parser("ssh", help="SSH to a node as the stack's user, from the deployer")
    ssh.add_argument("node")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    commands.add_parser("down", help="power off and remove every machine, namespace and mount of the lab")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("lab: run as root (network namespaces, systemd-nspawn)", file=sys.stderr)
        return 2
    if args.command == "up":
        started = time.monotonic()
        lab = session.up(tag=args.tag, etcd=args.etcd, controllers=args.controllers, workers=args.workers,
                         kubernetes=args.kubernetes, log=lambda m: print(m, flush=True))
        print(lab.first_report.table())
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
    if args.command == "kubectl":
        command = session.kubectl_command(args.tag, args.args)
    else:
        command = session.ssh_command(args.tag, args.node, args.remote_command)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
