"""Ingress rules of every security group, as a flat table. Pure: settings in, rules out.

One group per role. Everything not listed here is refused; egress is open (nodes download their binaries and
images). The "Security groups" section of docs/architecture.md is this table in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.settings import Settings

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
API_PORT = 6443
KUBELET_PORT = 10250
NODEPORT_RANGE = (30000, 32767)
SSH_PORT = 22
ANY_TCP_PORT = (0, 65535)

GROUPS = ("etcd", "controllers", "workers", "bastion")


@dataclass(frozen=True)
class Rule:
    group: str                 # the group the rule belongs to (traffic destination)
    protocol: str              # tcp | udp | icmp | -1 (all)
    from_port: int | None
    to_port: int | None
    description: str
    cidr: str | None = None    # source network...
    source_group: str | None = None   # ...or source security group (exactly one is set)

    def __post_init__(self):
        assert (self.cidr is None) != (self.source_group is None), self

    @property
    def key(self) -> str:
        """A name made of the rule's content, so adding or removing one rule never renames another."""
        protocol = "all" if self.protocol == "-1" else self.protocol
        ports = "" if self.from_port is None else (
            f"-{self.from_port}" if self.from_port == self.to_port else f"-{self.from_port}-{self.to_port}")
        source = self.source_group or self.cidr.replace("/", "_")
        return f"{self.group}-{protocol}{ports}-from-{source}"


def _tcp(group: str, ports: int | tuple[int, int], description: str, *, cidr=None, source_group=None) -> Rule:
    low, high = (ports, ports) if isinstance(ports, int) else ports
    return Rule(group, "tcp", low, high, description, cidr=cidr, source_group=source_group)


def groups_in_use(settings: Settings) -> tuple[str, ...]:
    return GROUPS if settings.topology == "private" else GROUPS[:3]


def ingress_rules(settings: Settings) -> list[Rule]:
    rules: list[Rule] = []

    def ssh_to(group: str) -> None:
        if settings.topology == "private":
            rules.append(_tcp(group, SSH_PORT, "SSH from the bastion", source_group="bastion"))
        else:
            rules.extend(_tcp(group, SSH_PORT, f"SSH from admin network {c}", cidr=c) for c in settings.admin_cidrs)

    # etcd: clients are the API servers (and members themselves, for health checks); peers only each other.
    rules.append(_tcp("etcd", ETCD_CLIENT_PORT, "etcd clients: API servers", source_group="controllers"))
    rules.append(_tcp("etcd", ETCD_CLIENT_PORT, "etcd clients: members' own health checks", source_group="etcd"))
    rules.append(_tcp("etcd", ETCD_PEER_PORT, "etcd peers", source_group="etcd"))
    ssh_to("etcd")

    # API servers: people come through the network load balancer, which keeps their source address, so the admin
    # networks are admitted here; nodes, controllers and the load balancer's health checks come from inside the VPC.
    rules.extend(_tcp("controllers", API_PORT, f"Kubernetes API from admin network {c} (via the load balancer)",
                      cidr=c) for c in settings.admin_cidrs)
    rules.append(_tcp("controllers", API_PORT, "Kubernetes API from inside the VPC (nodes, LB health checks)",
                      cidr=settings.vpc_cidr))
    rules.append(_tcp("controllers", API_PORT, "Kubernetes API from pods (the `kubernetes` Service)",
                      cidr=settings.pod_cidr))
    ssh_to("controllers")

    # Workers: the API servers call kubelets (logs, exec, port-forward) and pods on any port (admission and
    # conversion webhooks, aggregated APIs such as metrics-server, the pod and service proxy): a group's rule cannot
    # tell a pod's address from its worker's, so it is every TCP port. Pods talk to pods on other workers, and
    # workers to each other (NodePorts and Services are forwarded between nodes); people test NodePorts.
    rules.append(_tcp("workers", ANY_TCP_PORT, f"API servers to kubelets ({KUBELET_PORT}) and to pods on any port "
                      "(webhooks, aggregated APIs, the proxy)", source_group="controllers"))
    rules.append(Rule("workers", "-1", None, None, "pod traffic between workers (pod range)", cidr=settings.pod_cidr))
    rules.append(Rule("workers", "-1", None, None, "node traffic between workers (Services, NodePorts)",
                      source_group="workers"))
    rules.extend(_tcp("workers", NODEPORT_RANGE, f"NodePorts from admin network {c}", cidr=c)
                 for c in settings.admin_cidrs)
    ssh_to("workers")

    if settings.topology == "private":
        rules.extend(_tcp("bastion", SSH_PORT, f"SSH from admin network {c}", cidr=c) for c in settings.admin_cidrs)
    return rules
