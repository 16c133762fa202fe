#!/usr/bin/env python3
"""The modelled wall time of a first `pulumi up`, from the program's real dependency graph.

The program runs under Pulumi mocks (simulator/program.py); every custom resource it declares becomes one
operation, which waits for the resources it depends on (explicit `depends_on`, input dependencies, and
dependencies on a component stand for everything under it: what the Python SDK awaits before it registers a
resource). Each operation is weighted by:
- an AWS operation: a published latency (LATENCIES below: what each source says, and where);
- a remote step: its measured time in the local lab (`bench/lab_bench.py`; the lab lives in locallab, moving to
  locallab/), or a labelled estimate where the lab does not replay the step yet (the Kubernetes steps);
- a local computation (keys, certificates): a labelled estimate.

Two schedules are computed over the same graph:
- the critical path: unbounded parallelism, every operation starts when its last dependency finishes;
- a list schedule: Pulumi's engine runs at most `--parallel` operations at once (default 4 x the deployer's CPUs,
  pulumi 3.x), in the order they become ready, and each RunInstances call takes a token from EC2's resource
  token bucket (1000 instances, 2 per second).
One behaviour of the real steps is kept beyond the graph: the deployer's check through the load balancer passes only
once a target is healthy. (An etcd member's first start no longer waits for a quorum: members start one after
another without waiting, and `etcd-health` waits for the cluster; the scheduler can still model a quorum wait.)

"Usable" is the end of the smoke test (`fetch-from-every-worker`: every node Ready, nginx answered on every worker);
"up done" is the end of the last operation. The preview `pulumi up` runs first, the SSH dial retries of
pulumi-command, the deployer-to-region round trips and the download of artifacts from the internet (the lab serves
them from a local mirror) are not modelled.

`--before` also models the graph in which the API server certificate names the load balancer (its request waits
for the NLB to be active): the script finds out which of the two the current program is and builds the other one.

Usage: .venv/bin/python bench/apply_model.py [--before] [--workers 3 30 100] [--parallel 16 32 128]
                                             [--topology public|private] [--lab-report FILE]
FILE: the output of `bench/lab_bench.py` (its "every replayed step" lines); its per-step times replace the
built-in per-role figures and the estimates for every step it measured.
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# --- Where every number comes from ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    url: str
    says: str


SOURCES: dict[str, Source] = {
    "pulumi-parallel": Source(
        "https://github.com/pulumi/pulumi/pull/15016",
        "'Set a default limit for --parallel' (merged 2024-01): the default becomes 4 * number of CPUs "
        "(pkg/cmd/pulumi/operations/up.go: `var defaultParallel = int32(runtime.NumCPU()) * 4`, as quoted in "
        "https://github.com/pulumi/pulumi/pull/18782); before it, unbounded (pulumi/pulumi#2065, 2018)."),
    "ec2-throttling": Source(
        "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html",
        "EC2 throttles with token buckets per account and Region; RunInstances also has a resource token bucket of "
        "1000 tokens (one per instance) refilled at 2 per second: 1000 instances at once, then 2 per second."),
    "brevdev-launch": Source(
        "https://github.com/brevdev/ec2-coldboot-research/blob/main/docs/instance-type-sweep-results.md",
        "Cold launch, us-west-2, 2026-01-31, t3.medium: RunInstances API 3718 ms, pending->running 16620 ms, "
        "boot->SSH 2744 ms (Amazon Linux 2023); pending->running is 16.4-16.6 s for every family tried."),
    "daemonology-boot": Source(
        "https://www.daemonology.net/blog/2021-08-12-EC2-boot-time-benchmarking.html",
        "ec2-boot-bench splits a launch into RunInstances, pending->running, running->port 22 closed and "
        "closed->open; its sample run: 1.5 s, 4.9 s, 17.2 s, 5.6 s (not used: the Ubuntu figure below is newer)."),
    "depot-ubuntu-boot": Source(
        "https://depot.dev/blog/accelerating-builds-improve-ec2-boot-time",
        "Ubuntu 24.04 on EC2 (2025-05), systemd-analyze before their tuning: 'Startup finished in 1.784s (kernel) "
        "+ 6.999s (userspace) = 8.784s'."),
    "tf-apply-network": Source(
        "https://github.com/bshehram/devops-aws-tf/blob/main/SAMPLE_TF_APPLY.md",
        "A terraform apply of 255 resources in us-west-2 (2024): aws_vpc 12 s (x3); private and internal subnets "
        "0-1 s, public subnets 11 s; route tables 0-2 s; associations 0-1 s; routes 0-2 s; internet gateway "
        "0-1 s; EIP 0-1 s; default security group 1-2 s; NAT gateways 1m24s-2m04s (12 gateways, median 1m44s)."),
    "tf-apply-nlb": Source(
        "https://github.com/kubernetes/kubernetes/issues/44695",
        "(justinsb) 'when an ELB is first created ... it is very normal that it takes > 2 minutes to be created, "
        "but the DNS name is reported fairly quickly'. Three public terraform apply logs of an internet-facing NLB "
        "(aws_lb, type network), found in the code search index without their URLs: 'Creation complete after "
        "2m22s' (ap-northeast-1, 2025), '2m37s' (us-east-1), '2m41s' (ap-southeast-1, 2021); terraform and "
        "pulumi-aws wait for the state 'active'; the listener after it: 0-1 s."),
    "nlb-registration": Source(
        "https://github.com/awsdocs/elb-network-load-balancers-user-guide/pull/11",
        "'a significant delay between targets first entering the initial state, and the first health check being "
        "sent. The duration seems to be around 120 seconds'; the AWS guide now says 'It can take a few minutes for "
        "the registration process to complete and health checks to start' (target-group-register-targets.html). "
        "kubernetes-sigs/aws-load-balancer-controller#1786 (2021): new targets 'take 4~5mins to be ready'."),
    "program-health-check": Source(
        "infra/apilb.py",
        "This program's target group: HTTPS /readyz every 10 s, healthy after 2 checks."),
    "lab-readme": Source(
        "bench/lab_bench.py on a 3/3/3 stack, 34 steps replayed (the README's 'Local lab' then, docs/lab.md now)",
        "replay etcd 12.9 s summed over hosts (16 steps), controller 7.3 s (9 steps), worker 7.5 s (9 steps)."),
}

MEASURED, PUBLISHED, PROGRAM, ESTIMATE = "lab", "published", "program", "estimate"


@dataclass(frozen=True)
class Latency:
    seconds: float
    basis: str          # lab | published | program | estimate
    source: str         # a key of SOURCES, or for an estimate the reasoning behind it

    def label(self) -> str:
        return f"{self.basis}: {self.source}"


# AWS operations, as the provider performs them (pulumi-aws waits for the same states terraform does).
AWS: dict[str, Latency] = {
    "aws:ec2/vpc:Vpc": Latency(12, PUBLISHED, "tf-apply-network"),
    # Ours map no public IP on launch, like the log's private subnets (0-1 s); its public subnets took 11 s.
    "aws:ec2/subnet:Subnet": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/internetGateway:InternetGateway": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/routeTable:RouteTable": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/route:Route": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/eip:Eip": Latency(1, PUBLISHED, "tf-apply-network"),
    "aws:ec2/natGateway:NatGateway": Latency(104, PUBLISHED, "tf-apply-network"),   # the median of 12
    "aws:ec2/securityGroup:SecurityGroup": Latency(2, PUBLISHED, "tf-apply-network"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        Latency(1, ESTIMATE, "one EC2 API call, like a route (0-2 s)"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        Latency(1, ESTIMATE, "one EC2 API call, like a route (0-2 s)"),
    "aws:ec2/subnetCidrReservation:SubnetCidrReservation":
        Latency(1, ESTIMATE, "one EC2 API call, like a route (0-2 s)"),
    "aws:ec2/keyPair:KeyPair": Latency(1, ESTIMATE, "one EC2 API call, like a route (0-2 s)"),
    "aws:ec2/tag:Tag": Latency(1, ESTIMATE, "one EC2 API call, like a route (0-2 s)"),
    "aws:ec2/instance:Instance": Latency(20.3, PUBLISHED, "brevdev-launch"),   # API 3.7 s + pending->running 16.6 s
    "aws:lb/loadBalancer:LoadBalancer": Latency(157, PUBLISHED, "tf-apply-nlb"),   # median of 142, 157, 161 s
    "aws:lb/targetGroup:TargetGroup": Latency(1, ESTIMATE, "one ELB API call, like the listener (0-1 s)"),
    "aws:lb/listener:Listener": Latency(1, PUBLISHED, "tf-apply-nlb"),
    "aws:lb/targetGroupAttachment:TargetGroupAttachment":
        Latency(1, ESTIMATE, "one ELB API call, like the listener (0-1 s)"),
}
LOCAL: dict[str, Latency] = {
    "tls:index/privateKey:PrivateKey": Latency(0.2, ESTIMATE, "a key generated on the deployer (ECDSA P-256; one RSA)"),
    "tls:index/certRequest:CertRequest": Latency(0.1, ESTIMATE, "local signing"),
    "tls:index/locallySignedCert:LocallySignedCert": Latency(0.1, ESTIMATE, "local signing"),
    "tls:index/selfSignedCert:SelfSignedCert": Latency(0.1, ESTIMATE, "local signing"),
    "random:index/randomBytes:RandomBytes": Latency(0.1, ESTIMATE, "local"),
}
# From the gate's start until sshd answers and cloud-init is done, added to the gate step's own (lab) time.
BOOT = Latency(8.8, PUBLISHED, "depot-ubuntu-boot")
NLB_REGISTRATION = Latency(120, PUBLISHED, "nlb-registration")   # registered target -> first health check
NLB_HEALTHY = Latency(2 * 10, PROGRAM, "program-health-check")     # healthy threshold x interval
RUN_INSTANCES_BUCKET, RUN_INSTANCES_REFILL = 1000, 2.0            # SOURCES["ec2-throttling"]
PULUMI_DEFAULT_PARALLEL_PER_CPU = 4                                # SOURCES["pulumi-parallel"]

# Remote steps the lab replays today, by role: its per-role mean (sum over the role's hosts / steps).
LAB_ROLE_MEAN = {"etcd": 12.9 / 16, "controller": 7.3 / 9, "worker": 7.5 / 9}
LAB_REPLAYED = {"ready", "etcd-user", "etcd-files", "install-etcd", "start-etcd", "etcd-health",
                "control-plane-files", "worker-files", "pod-network"}
# Steps not replayed yet: labelled estimates, each with its reason. A lab report replaces any it measured.
STEP_ESTIMATES: dict[str, tuple[float, str]] = {
    "install-kubernetes-server": (20, "download and verify the server tarball from dl.k8s.io (the largest "
                                      "download), unpack 4 binaries"),
    "install-kubernetes-node": (10, "download and verify the node tarball, unpack 3 binaries"),
    "install-containerd": (5, "download, verify and unpack a release archive"),
    "install-runc": (3, "download and verify one binary"),
    "install-cni-plugins": (5, "download, verify and unpack a release archive"),
    "install-crictl": (3, "download, verify and unpack a small archive"),
    "prepare-os": (30, "modprobe, sysctl, then apt-get update and install of a few packages from the region's mirror"),
    "start-kube-apiserver": (3, "systemctl restart, unit active"),
    "start-kube-controller-manager": (2, "systemctl restart, unit active"),
    "start-kube-scheduler": (2, "systemctl restart, unit active"),
    "apiserver-ready": (15, "kube-apiserver start to /readyz ok (post-start hooks, RBAC bootstrap)"),
    "apply-rbac": (2, "kubectl apply of one manifest"),
    "start-haproxy": (2, "systemctl restart, unit active"),
    "start-containerd": (2, "systemctl restart, unit active"),
    "start-kubelet": (3, "systemctl restart, unit active"),
    "start-kube-proxy": (3, "systemctl restart, unit active"),
    "start-k8s-cni-config": (2, "systemctl restart of the CNI config follower, unit active"),
    "etcd-snapshots": (2, "write the snapshot scripts and units, enable the timer"),
    "membership": (0.5, "nothing to do on create: the step removes its member from etcd when it is deleted"),
    "drain": (1, "on a first creation, after the worker is in service: one API read, nothing to drain"),
    "uncordon": (1, "the node is Ready already: two API reads and one annotation"),
    "remove": (1, "one API read on create: the step drains and deletes its worker's Node when it is deleted"),
    "node-ready": (20, "kubelet registers its Node, gets a podCIDR, the CNI config follows, NodeReady"),
    "read-pod-cidr": (2, "one API read on the worker: the controller-manager assigns a podCIDR on registration"),
    "apply-coredns": (2, "kubectl apply of one manifest"),
    "dns-check": (30, "CoreDNS image pulled and started, then a lookup"),
    "apply-nginx": (2, "kubectl apply of one manifest"),
    "nginx-rollout": (25, "nginx image pulled and started on every worker"),
    "api-through-load-balancer": (2, "one /readyz and /version through the NLB, once a target is healthy"),
    "fetch-from-every-worker": (3, "one HTTP GET per worker from the deployer, bounded"),
}
HOST_STEP = re.compile(r"^(?P<role>etcd|controller|worker|bastion)-(?P<index>\d+)-(?P<kind>.+)$")


# --- The graph ---------------------------------------------------------------------------------------------------

@dataclass
class Op:
    """One resource operation: its duration, what it waits for, and how the engine treats it."""
    name: str
    seconds: float
    deps: set[str] = field(default_factory=set)
    kind: str = ""                       # the step kind, or the resource type's short name
    latency: Latency | None = None
    index: int = 0                       # registration order: the engine's order among operations ready together
    launches_instance: bool = False      # takes a RunInstances resource token
    quorum_group: str | None = None      # finishes only once a majority of its group has started
    # Not before this time (given the finish times of its dependencies), then `seconds` more.
    wait_until: Callable[[dict[str, float]], float] | None = None
    wait_reason: str = ""


def step_kind(name: str) -> tuple[str, str]:
    """(role, kind) of a command: `worker-7-node-ready` is (worker, node-ready); a deployer step is named after
    the cluster, so its kind is found by its suffix."""
    if match := HOST_STEP.match(name):
        return match["role"], match["kind"]
    return "deployer", next((k for k in STEP_ESTIMATES if name.endswith(k)), name)


def step_latency(name: str, lab: dict[str, float]) -> Latency:
    """The duration of a command by its step kind (the name without its host)."""
    role, kind = step_kind(name)
    # One per other node, run on the first etcd member or controller: membership-etcd-N, drain-worker-N, ...
    kind = re.sub(r"-(etcd|worker)-\d+$", "", kind) if kind.startswith(("membership-", "drain-", "uncordon-",
                                                                          "remove-")) else kind
    if kind in lab:
        return Latency(lab[kind], MEASURED, "lab report, mean of this step over its hosts")
    if kind in LAB_REPLAYED and role in LAB_ROLE_MEAN:
        return Latency(round(LAB_ROLE_MEAN[role], 2), MEASURED, "lab-readme")
    if kind in STEP_ESTIMATES:
        seconds, why = STEP_ESTIMATES[kind]
        return Latency(seconds, ESTIMATE, why)
    raise KeyError(f"no latency for step {name!r}: measure it in the lab or add an estimate")


def lab_step_times(report: str) -> dict[str, float]:
    """Mean time per step kind from `bench/lab_bench.py` output lines `  <host>-<kind>   <seconds>`."""
    times: dict[str, list[float]] = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) == 2 and (match := HOST_STEP.match(parts[0])):
            try:
                times.setdefault(match["kind"], []).append(float(parts[1]))
            except ValueError:
                continue
    return {kind: round(statistics.mean(values), 2) for kind, values in times.items()}


def program_graph(run, lab: dict[str, float]) -> dict[str, Op]:
    """Every custom resource of a recorded program run as an operation, dependencies on components expanded to
    the custom resources under them (as simulator/graph.py reads them)."""
    ops: dict[str, Op] = {}
    for index, r in enumerate(run.resources):
        if not r.custom:
            continue
        deps = run.custom_edges(r)
        if r.type.startswith("command:"):
            latency = step_latency(r.name, lab)
            if (host := HOST_STEP.match(r.name)) and host["kind"] == "ready":   # the gate also waits for the boot
                latency = Latency(latency.seconds + BOOT.seconds, latency.basis,
                                  f"boot {BOOT.seconds:g} s ({BOOT.label()}) + the step ({latency.label()})")
        elif r.type in AWS:
            latency = AWS[r.type]
        elif r.type in LOCAL:
            latency = LOCAL[r.type]
        else:
            raise KeyError(f"no latency for resource type {r.type} ({r.name})")
        kind = step_kind(r.name)[1] if r.type.startswith("command:") else r.type.rsplit(":", 1)[-1]
        ops[r.urn] = Op(name=r.name, seconds=latency.seconds, deps=deps, kind=kind, latency=latency, index=index,
                        launches_instance=r.type == "aws:ec2/instance:Instance")
    _load_balancer_check(ops)
    return ops


def _load_balancer_check(ops: dict[str, Op]) -> None:
    """The deployer's check through the NLB answers once one controller is a healthy target: registered for
    NLB_REGISTRATION, then NLB_HEALTHY after its API server is ready. It also needs the listener. These are waits of
    the real check, not edges of the program's graph."""
    by_name = {op.name: urn for urn, op in ops.items()}
    check = next((urn for urn, op in ops.items() if op.name.endswith("api-through-load-balancer")), None)
    if check is None:
        return
    attachments = {m["i"]: urn for urn, op in ops.items()
                   if op.latency is AWS["aws:lb/targetGroupAttachment:TargetGroupAttachment"]
                   and (m := re.search(r"controller-(?P<i>\d+)$", op.name))}
    listeners = {urn for urn, op in ops.items() if op.latency is AWS["aws:lb/listener:Listener"]}
    ready = {i: by_name[f"controller-{i}-apiserver-ready"] for i in attachments
             if f"controller-{i}-apiserver-ready" in by_name}
    op = ops[check]
    op.deps |= set(attachments.values()) | listeners | set(ready.values())

    def first_healthy_target(finish: dict[str, float]) -> float:
        return min(max(finish[attachments[i]] + NLB_REGISTRATION.seconds, finish[ready[i]] + NLB_HEALTHY.seconds)
                   for i in ready)

    op.wait_until = first_healthy_target
    op.wait_reason = "NLB target registration and health checks"


def find_certificate_edge(ops: dict[str, Op]) -> tuple[str, str]:
    """The API server's certificate request and the load balancer: (request urn, NLB urn)."""
    request = next(urn for urn, op in ops.items() if op.name.endswith("-pki-kube-apiserver-csr"))
    nlb = next(urn for urn, op in ops.items() if op.latency is AWS["aws:lb/loadBalancer:LoadBalancer"])
    return request, nlb


def with_certificate_edge(ops: dict[str, Op], present: bool) -> dict[str, Op]:
    """A copy of the graph in which the API server certificate does (present) or does not wait for the NLB."""
    request, nlb = find_certificate_edge(ops)
    copy = {urn: Op(**{**op.__dict__, "deps": set(op.deps)}) for urn, op in ops.items()}
    if present:
        copy[request].deps.add(nlb)
    else:
        copy[request].deps.discard(nlb)
    return copy


# --- Scheduling --------------------------------------------------------------------------------------------------

@dataclass
class Schedule:
    start: dict[str, float]
    finish: dict[str, float]
    ready: dict[str, float]          # when its last dependency finished
    cause: dict[str, str | None]     # the dependency that finished last (None: ready at 0)
    waited: dict[str, str]           # what held it past `ready`, when anything did

    def end(self, urn: str | None = None) -> float:
        return self.finish[urn] if urn else max(self.finish.values(), default=0.0)

    def chain(self, urn: str) -> list[str]:
        """The binding chain ending at `urn`: each operation preceded by the dependency that released it."""
        path = [urn]
        while (previous := self.cause[path[-1]]) is not None:
            path.append(previous)
        return path[::-1]


class TokenBucket:
    """EC2's token bucket: `size` tokens at first, `refill_per_second` after; a caller waits for its token."""

    def __init__(self, size: float, refill_per_second: float):
        self.size, self.rate = size, refill_per_second
        self.tokens, self.at = float(size), 0.0

    def take(self, now: float) -> float:
        """Take one token at `now` or later (after tokens already promised); return when it is granted."""
        t = max(now, self.at)
        self.tokens = min(self.size, self.tokens + (t - self.at) * self.rate)
        if self.tokens < 1:
            t += (1 - self.tokens) / self.rate
            self.tokens = 1.0
        self.at = t
        self.tokens -= 1
        return t


def simulate(ops: dict[str, Op], slots: int | None = None,
             bucket: TokenBucket | None = None) -> Schedule:
    """List scheduling: an operation becomes ready when its last dependency finishes and starts as soon as one of
    `slots` engine workers is free (None: unbounded, which gives the critical path), earliest-ready first, then in
    registration order. A started operation holds its worker until it finishes, waits included."""
    known = set(ops)
    missing = {urn: op.deps - known for urn, op in ops.items() if not op.deps <= known}
    if missing:
        raise ValueError(f"dependencies outside the graph: {missing}")
    bucket = bucket or TokenBucket(RUN_INSTANCES_BUCKET, RUN_INSTANCES_REFILL)
    dependents: dict[str, list[str]] = {urn: [] for urn in ops}
    remaining = {urn: len(op.deps) for urn, op in ops.items()}
    for urn, op in ops.items():
        for dep in op.deps:
            dependents[dep].append(urn)
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    cause: dict[str, str | None] = {}
    waited: dict[str, str] = {}
    ready: list[tuple[float, int, str]] = []
    running: list[tuple[float, int, str]] = []       # (finish, index, urn) for scheduled finishes
    busy = 0
    quorum_started: dict[str, list[str]] = {}
    quorum_size = {g: len([o for o in ops.values() if o.quorum_group == g]) // 2 + 1
                   for g in {o.quorum_group for o in ops.values() if o.quorum_group}}
    quorum_reached: dict[str, float] = {}

    for urn, op in ops.items():
        if not op.deps:
            ready_at[urn], cause[urn] = 0.0, None
            heapq.heappush(ready, (0.0, op.index, urn))

    now = 0.0
    while ready or running or busy:
        while ready and ready[0][0] <= now and (slots is None or busy < slots):
            _, _, urn = heapq.heappop(ready)
            op = ops[urn]
            start[urn] = now
            if now > ready_at[urn]:
                waited[urn] = "a free engine slot (--parallel)"
            busy += 1
            begin = now
            if op.launches_instance:
                granted = bucket.take(now)
                if granted > now:
                    waited[urn] = "a RunInstances token"
                begin = granted
            if op.wait_until is not None:
                until = op.wait_until(finish)
                if until > begin:
                    waited[urn] = op.wait_reason
                begin = max(begin, until)
            group = op.quorum_group
            if group is not None:
                quorum_started.setdefault(group, []).append(urn)
                if group not in quorum_reached:
                    if len(quorum_started[group]) < quorum_size[group]:
                        continue                      # holds its slot until a quorum runs
                    quorum_reached[group] = now
                    for member in quorum_started[group][:-1]:
                        heapq.heappush(running, (now + ops[member].seconds, ops[member].index, member))
                        if now > start[member]:
                            waited[member] = "an etcd quorum (Type=notify)"
            heapq.heappush(running, (begin + op.seconds, op.index, urn))
        next_ready = ready[0][0] if ready and (slots is None or busy < slots) else math.inf
        if not running:
            if math.isinf(next_ready):
                if ready or busy:
                    stuck = sorted(ops[u].name for u in ops if u not in finish)
                    raise RuntimeError(f"the schedule cannot progress (a quorum larger than --parallel?): {stuck}")
                break
            now = next_ready
            continue
        if next_ready < running[0][0]:
            now = next_ready
            continue
        now, _, urn = heapq.heappop(running)
        finish[urn] = now
        busy -= 1
        for child in dependents[urn]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready_at[child] = now
                cause[child] = max(ops[child].deps, key=lambda d: (finish[d], ops[d].index))
                heapq.heappush(ready, (now, ops[child].index, child))
    unfinished = [ops[u].name for u in ops if u not in finish]
    if unfinished:
        raise RuntimeError(f"operations that never ran (a dependency cycle?): {sorted(unfinished)[:10]}")
    return Schedule(start, finish, ready_at, cause, waited)


# --- Report ------------------------------------------------------------------------------------------------------

def minutes(seconds: float) -> str:
    tenths = round(seconds * 10)
    return f"{tenths // 600}m{tenths % 600 / 10:04.1f}s"


def smoke_test(ops: dict[str, Op]) -> str:
    return next(urn for urn, op in ops.items() if op.name.endswith("fetch-from-every-worker"))


def generic(name: str) -> str:
    """A step name without its host number, so that the same chain reads the same at any size."""
    return re.sub(r"-\d+(?=-|$)", "-N", name)


def describe_chain(ops: dict[str, Op], schedule: Schedule, end: str) -> list[str]:
    lines = []
    for urn in schedule.chain(end):
        op = ops[urn]
        wait = schedule.finish[urn] - schedule.start[urn] - op.seconds
        held = f", waited {wait:.0f} s for {schedule.waited[urn]}" if urn in schedule.waited and wait > 0.5 else ""
        queued = schedule.start[urn] - schedule.ready[urn]
        held += f", queued {queued:.0f} s for an engine slot" if queued > 0.5 else ""
        if op.seconds < 0.5 and not held:
            continue     # keys and certificates: tenths of a second
        what = generic(op.name) if op.name.endswith(op.kind) else f"{generic(op.name)} ({op.kind})"
        lines.append(f"  {minutes(schedule.finish[urn]):>9}  {what:<52} {op.seconds:6.1f} s  "
                     f"[{op.latency.basis}]{held}")
    return lines


def chain_shares(ops: dict[str, Op], schedule: Schedule, end: str) -> dict[str, float]:
    shares: dict[str, float] = {}
    for urn in schedule.chain(end):
        op = ops[urn]
        shares[op.latency.basis] = shares.get(op.latency.basis, 0.0) + op.seconds
        held = schedule.finish[urn] - schedule.ready[urn] - op.seconds
        if held > 0:
            reason = schedule.waited.get(urn, "a free engine slot (--parallel)")
            shares[f"waiting for {reason}"] = shares.get(f"waiting for {reason}", 0.0) + held
    return shares


def print_sources(ops: dict[str, Op]) -> None:
    used: dict[str, Latency] = {}
    for op in ops.values():
        used.setdefault(op.kind, op.latency)
    print("Latencies (s, basis: where from; sources are listed in bench/apply_model.py):")
    for what, latency in sorted(used.items()):
        print(f"  {what:<38} {latency.seconds:6.1f}  {latency.label()}")
    print(f"  {'NLB target registered -> checked':<38} {NLB_REGISTRATION.seconds:6.1f}  {NLB_REGISTRATION.label()}")
    print(f"  {'NLB target checked -> healthy':<38} {NLB_HEALTHY.seconds:6.1f}  {NLB_HEALTHY.label()}")
    print(f"  RunInstances tokens: {RUN_INSTANCES_BUCKET} at once, {RUN_INSTANCES_REFILL:g}/s after "
          "(published: ec2-throttling)")
    print(f"  Pulumi --parallel default: {PULUMI_DEFAULT_PARALLEL_PER_CPU} x CPUs (published: pulumi-parallel)\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[3, 30, 100])
    parser.add_argument("--parallel", type=int, nargs="+", default=[16, 32, 128],
                        help="engine slots to simulate; pulumi's default is 4 x CPUs: 16 on 4 CPUs, 32 on 8; "
                             "128 is what `pulumi up --parallel 128` (or PULUMI_PARALLEL=128) would give")
    parser.add_argument("--before", action="store_true",
                        help="also model the graph where the API server certificate waits for the NLB")
    parser.add_argument("--lab-report", type=Path, help="bench/lab_bench.py output with per-step times")
    parser.add_argument("--topology", choices=("public", "private"), default="public",
                        help="private: nodes behind NAT gateways, reached through a bastion")
    args = parser.parse_args(argv)

    from simulator.program import run_program

    lab = lab_step_times(args.lab_report.read_text()) if args.lab_report else {}
    rows = []
    for workers in args.workers:
        run = run_program({"adminCidrs": ["100.64.7.0/24"], "workers": {"count": workers}, "routesQuota": 1000,
                           "topology": args.topology})
        current = program_graph(run, lab)
        request, nlb = find_certificate_edge(current)
        has_edge = nlb in current[request].deps
        if not rows:
            print_sources(current)
            print("The current program's API server certificate "
                  + ("waits for the load balancer: its graph is 'before'.\n" if has_edge else
                     "does not wait for the load balancer: its graph is 'after'.\n"))
        variants = [("after", with_certificate_edge(current, False))]
        if args.before or has_edge:
            variants.insert(0, ("before", with_certificate_edge(current, True)))
        for label, ops in variants:
            end = smoke_test(ops)
            schedules = {None: simulate(ops), **{p: simulate(ops, slots=p) for p in args.parallel}}
            rows.append((label, workers, len(run.resources), ops, end, schedules))

    first_p, last_p = args.parallel[0], args.parallel[-1]
    head = "".join(f"{'-p ' + str(p):>10}" for p in args.parallel)
    print("Modelled time to a usable cluster (every node Ready, smoke test passed):")
    print(f"{'graph':<7}{'workers':>8}{'resources':>10}{'critical':>10}{head}{'up done':>10}")
    for label, workers, count, ops, end, schedules in rows:
        cells = "".join(f"{minutes(schedules[p].end(end)):>10}" for p in args.parallel)
        print(f"{label:<7}{workers:>8}{count:>10}{minutes(schedules[None].end(end)):>10}{cells}"
              f"{minutes(schedules[first_p].end()):>10}")
    print(f"critical: unbounded parallelism (the critical path); -p N: at most N operations at once; "
          f"up done: the last operation at -p {first_p} (the check through the NLB included).\n")

    smallest, largest = min(args.workers), max(args.workers)
    shown = [(label, smallest, first_p) for label in dict.fromkeys(r[0] for r in rows)]
    shown += [("after", largest, first_p), ("after", largest, last_p)]
    for label, workers, p in dict.fromkeys(shown):
        label_, workers_, _, ops, end, schedules = next(r for r in rows if r[0] == label and r[1] == workers)
        print(f"The chain that ends the smoke test, {label}, {workers} workers, -p {p} "
              "(finish, operation, its own time [basis]; operations under 0.5 s not shown):")
        print("\n".join(describe_chain(ops, schedules[p], end)))
        shares = chain_shares(ops, schedules[p], end)
        total = sum(shares.values())
        print("  made of: " + ", ".join(f"{k} {v:.0f} s ({v / total:.0%})"
                                        for k, v in sorted(shares.items(), key=lambda kv: -kv[1])) + "\n")

    def usable(label: str, workers: int, p: int | None) -> float:
        return next(r[5][p].end(r[4]) for r in rows if r[0] == label and r[1] == workers)

    print("For comparison, time to a working cluster: Typhoon 6 min (1 controller, 2 workers), kops 10-15 min, "
          "EKS 13-20 min (figures from issue 10).")
    if any(r[0] == "before" for r in rows):
        print(f"Before -> after ({smallest} workers, -p {first_p}): {minutes(usable('before', smallest, first_p))} -> "
              f"{minutes(usable('after', smallest, first_p))}.")
    after_small = usable("after", smallest, first_p)
    print(f"Goal, usable within 3 minutes for {smallest} workers: {minutes(after_small)} at -p {first_p} "
          f"({'met' if after_small <= 180 else 'not met'}).")
    for p in dict.fromkeys((first_p, last_p)) if largest > smallest else ():
        ratio = usable("after", largest, p) / usable("after", smallest, p)
        print(f"Growth {smallest} -> {largest} workers at -p {p}: x{ratio:.2f} the time for x{largest / smallest:.1f} "
              f"the workers ({'no worse than linear' if ratio <= largest / smallest else 'worse than linear'}).")


if __name__ == "__main__":
    main()
