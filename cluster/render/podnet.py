"""Pod networking on a node: routes to other nodes' pod ranges (`podRouting: host`) and the masquerade rule for pod
traffic leaving the cluster, both idempotent and re-applied at boot.

What keeps the pod's address depends on who can route back to it. With `podRouting: vpc` the VPC's route tables
hold every pod range, so traffic to any VPC address keeps it, except to the VPC's DNS resolver (the VPC base address
+ 2), which answers only queries from addresses in the VPC's subnets (CoreDNS forwards external names there: the
node's resolv.conf). With `podRouting: host` only the nodes hold routes to pod ranges: traffic to any other VPC
address (a database, an endpoint, the bastion) would get its reply sent to the VPC router, which drops it, so only
traffic between pods keeps the pod's address.

The routes carry their own protocol number, so the script can tell them from every other route and remove the
ones no longer wanted (a worker removed or replaced) without touching anything else.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from typing import Sequence

from cluster.render import shell
from cluster.render.common import systemd_unit

ROUTE_PROTOCOL = 211                       # ours; 0-4 and 186-193 are taken by the kernel and known daemons
MASQUERADE_CHAIN = "K8S-FROM-SCRATCH-MASQ"
APPLY_PATH = "/usr/local/sbin/k8s-pod-network"
UNIT_NAME = "k8s-pod-network"


@dataclass(frozen=True)
class PodRoute:
    pod_cidr: str
    via: str          # the node that holds the range


def routes_for(node_ip: str, ranges: Sequence[tuple[str, str]]) -> list[PodRoute]:
    """`ranges` is (node ip, pod cidr) per worker; a node needs a route to every range but its own."""
    return [PodRoute(cidr, ip) for ip, cidr in sorted(ranges, key=lambda r: r[1]) if ip != node_ip]


def vpc_resolver(vpc_cidr: str) -> str:
    """The Amazon-provided DNS server of a VPC: its base address plus two."""
    return str(ipaddress.ip_network(vpc_cidr)[2])


def apply_script(*, routes: Sequence[PodRoute], cluster_pod_cidr: str, vpc_cidr: str, dns_resolver: str,
                 masquerade: bool, vpc_routes_pods: bool = True) -> str:
    """Converge this node's pod routes to exactly `routes` and (on workers) its masquerade rule. Run twice, it
    changes nothing: `ip route replace` and a flushed and refilled chain never duplicate. `vpc_routes_pods`: the
    VPC's route tables hold the pod ranges (`podRouting: vpc`), so VPC hosts may see pod addresses."""
    q = shlex.quote
    wanted = " ".join(q(r.pod_cidr) for r in routes)
    lines = [
        "#!/bin/bash",
        "# Pod routes and masquerading, managed by k8s-from-scratch. Verification: the routes listed, one rule.",
        "set -euo pipefail",
        f"wanted=({wanted})" if routes else "wanted=()",
    ]
    for r in routes:
        lines.append(f"ip route replace {q(r.pod_cidr)} via {q(r.via)} proto {ROUTE_PROTOCOL}")
    lines += [
        f"for existing in $(ip -4 route show proto {ROUTE_PROTOCOL} | cut -d' ' -f1); do",
        "  keep=0",
        '  for want in "${wanted[@]}"; do [ "$existing" = "$want" ] && keep=1; done',
        f'  if [ "$keep" = 0 ]; then ip route del "$existing" proto {ROUTE_PROTOCOL}; echo "removed stale route $existing"; fi',
        "done",
    ]
    if masquerade:
        chain = MASQUERADE_CHAIN
        lines += [
            f"iptables -w -t nat -N {chain} 2>/dev/null || true",
            f"iptables -w -t nat -F {chain}",
            f"iptables -w -t nat -A {chain} -d {q(cluster_pod_cidr)} -j RETURN",
        ]
        if vpc_routes_pods:
            lines += [
                # Before the VPC's RETURN: the VPC resolver only answers queries from the VPC's own addresses.
                f"iptables -w -t nat -A {chain} -d {q(dns_resolver)}/32 -j MASQUERADE",
                f"iptables -w -t nat -A {chain} -d {q(vpc_cidr)} -j RETURN",
            ]
        lines += [
            # Multicast never leaves the node's bridge (IGMP reports between pods cross it, and with
            # bridge-nf-call-iptables bridged packets meet this chain too); the CNI plugins' own ipMasq skips it.
            f"iptables -w -t nat -A {chain} -d 224.0.0.0/4 -j RETURN",
            f"iptables -w -t nat -A {chain} -j MASQUERADE",
            # The one rule in POSTROUTING: pod traffic for anywhere else leaves with the node's address.
            f"rule=(-s {q(cluster_pod_cidr)} -m comment --comment k8s-from-scratch-pod-egress -j {chain})",
            'iptables -w -t nat -C POSTROUTING "${rule[@]}" 2>/dev/null || iptables -w -t nat -A POSTROUTING "${rule[@]}"',
        ]
    lines += [f"ip -4 route show proto {ROUTE_PROTOCOL}"]
    if masquerade:
        lines.append(f"iptables -w -t nat -S {MASQUERADE_CHAIN}")
    return "\n".join(lines) + "\n"


def boot_unit() -> str:
    """Re-applies the routes and the rule at every boot, after the network is up."""
    return systemd_unit(description="k8s-from-scratch pod routes and masquerading", exec_start=[APPLY_PATH],
                        service={"Type": "oneshot", "RemainAfterExit": "yes", "Restart": "no"})


def install_script(apply: str) -> str:
    """Write the apply script and its boot unit, enable the unit, and apply now."""
    return shell.render("podnet/install.sh", APPLY_PATH=APPLY_PATH, APPLY=apply, UNIT_NAME=UNIT_NAME,
                        UNIT=boot_unit())
