"""Pod-to-pod traffic across workers through the routes and the masquerade rule the program generates.

Worker namespaces sit on a private bridge at their stack addresses. On each worker, Debian's CNI plugins (bridge,
host-local, loopback) are invoked with the program's own rendered CNI configuration for that worker's podCIDR,
the way containerd would, to create two pod namespaces. Then the pod-network script the program declared for that
worker (taken from a run of the program under mocks, `podRouting: host`, and `vpc` for the DNS masquerade) is
applied inside the worker. Hosts at the VPC resolver's address and at another VPC address print the source address
of what reaches them, which shows which pod traffic leaves with the node's address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from cluster.render import podnet
from cluster.render.workers.cni import cni_conflist
from locallab.netns import PREFIX, Lab, can_run, sh
from simulator.program import ClusterMocks, run_program

pytestmark = pytest.mark.integration

CNI_PATH = "/usr/lib/cni"
PODS_PER_WORKER = 2
OUTSIDE = "192.0.2.10"          # a host beyond the cluster and the VPC (TEST-NET-1, inside our own namespaces)
RESOLVER = "10.43.0.2"          # the VPC base + 2: where the Amazon-provided DNS server answers
VPC_PEER = "10.43.0.50"         # any other address in the VPC
CANNED = {"worker-0": "10.200.2.0/24", "worker-1": "10.200.0.0/24", "worker-2": "10.200.1.0/24"}
WORKER_IPS = {f"worker-{i}": f"10.43.0.{30 + i}" for i in range(3)}


def _skip_reason() -> str | None:
    reason = can_run()
    if reason:
        return reason
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.access(f"{CNI_PATH}/{plugin}", os.X_OK):
            return f"{CNI_PATH}/{plugin} is missing (Debian: containernetworking-plugins)"
    return None


def program_apply_scripts(workers: int, pod_routing: str = "host") -> dict[str, str]:
    """The script each worker's pod-network step installs and runs, from the real program under mocks."""
    config = {"adminCidrs": ["100.64.7.0/24"], "etcd": {"count": 1}, "controllers": {"count": 1},
              "workers": {"count": workers}, "podRouting": pod_routing}
    run = run_program(config, mocks=ClusterMocks(pod_cidrs=CANNED))
    scripts = {}
    for c in run.of_type("command:remote:Command"):
        if c.name.startswith("worker-") and c.name.endswith("-pod-network"):
            body = re.search(rf"cat > {podnet.APPLY_PATH}\.new <<'K8S_FROM_SCRATCH_EOF'\n(.*?)K8S_FROM_SCRATCH_EOF",
                             c.inputs["stdin"], re.S).group(1)
            scripts[c.name.removesuffix("-pod-network")] = body
    return scripts


def cni(lab: Lab, worker: str, plugin_conf: dict, pod_ns: str, container_id: str) -> dict:
    result = lab.exec(worker, "env", "CNI_COMMAND=ADD", f"CNI_CONTAINERID={container_id}",
                      f"CNI_NETNS=/run/netns/{pod_ns}", "CNI_IFNAME=eth0", f"CNI_PATH={CNI_PATH}",
                      f"{CNI_PATH}/{plugin_conf['type']}", input=json.dumps(plugin_conf), check=False)
    assert result.returncode == 0, f"CNI {plugin_conf['type']} ADD failed: {result.stdout}{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("podnet")
    with Lab("podnet") as lab:
        for name, ip in WORKER_IPS.items():
            lab.add_host(name, ip)
            lab.exec(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")     # what the OS preparation step sets
            lab.exec(name, "ip", "route", "add", "192.0.2.0/24", "dev", "eth0")   # "the internet"
        lab.add_host("outside", OUTSIDE)
        lab.exec("outside", "ip", "addr", "del", f"{OUTSIDE}/20", "dev", "eth0")
        lab.exec("outside", "ip", "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        lab.exec("outside", "ip", "route", "add", "10.43.0.0/20", "dev", "eth0")   # knows nodes, not pods
        lab.add_host("resolver", RESOLVER)
        lab.add_host("vpc-peer", VPC_PEER)

        pods: dict[str, tuple[str, str]] = {}      # pod ns -> (worker, ip)
        for worker, cidr in CANNED.items():
            conflist = json.loads(cni_conflist(cidr))
            bridge = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
            # Several workers share this machine's disk: each gets its own host-local store, as on real nodes.
            bridge["ipam"] = {**bridge["ipam"], "dataDir": str(root / worker / "ipam")}
            loopback = {"cniVersion": conflist["cniVersion"], "name": "lo", "type": "loopback"}
            for p in range(PODS_PER_WORKER):
                pod_ns = f"{PREFIX}-podnet-{worker}-pod{p}"
                sh("ip", "netns", "add", pod_ns)
                lab.hosts[f"{worker}-pod{p}"] = pod_ns       # removed with the lab
                cni(lab, worker, loopback, pod_ns, f"{worker}-pod{p}")
                result = cni(lab, worker, bridge, pod_ns, f"{worker}-pod{p}")
                pods[f"{worker}-pod{p}"] = (worker, result["ips"][0]["address"].split("/")[0])
        yield lab, pods


def apply(lab: Lab, worker: str, script: str) -> subprocess.CompletedProcess:
    result = lab.exec(worker, "bash", "-s", input=script, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def ping(lab: Lab, pod: str, target: str) -> bool:
    return lab.exec(pod, "ping", "-c", "1", "-W", "2", target, check=False).returncode == 0


def masquerade_packets(lab: Lab, worker: str) -> int:
    out = lab.exec(worker, "iptables", "-w", "-t", "nat", "-L", podnet.MASQUERADE_CHAIN, "-v", "-n", "-x").stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "MASQUERADE" in line)


def test_pods_get_addresses_from_their_workers_range(cluster):
    _, pods = cluster
    for pod, (worker, ip) in pods.items():
        assert ip.startswith(CANNED[worker].rsplit(".", 2)[0] + "."), (pod, ip)


def test_every_pod_reaches_every_other_pod_across_workers(cluster):
    lab, pods = cluster
    scripts = program_apply_scripts(3)
    assert set(scripts) == set(CANNED)
    assert not ping(lab, "worker-0-pod0", pods["worker-1-pod0"][1]), "no route yet: must not reach"
    for worker, script in scripts.items():
        apply(lab, worker, script)
    failures = [(a, b) for a in pods for b, (_, ip) in pods.items() if a != b and not ping(lab, a, ip)]
    assert not failures
    # pod-to-pod traffic keeps its source address: nothing went through MASQUERADE
    assert all(masquerade_packets(lab, w) == 0 for w in scripts)


def test_traffic_leaving_the_cluster_is_masqueraded(cluster):
    lab, _ = cluster
    for worker, script in program_apply_scripts(3).items():
        apply(lab, worker, script)
    # The outside host has no route to pod ranges: its reply arrives only if the worker rewrote the source.
    assert ping(lab, "worker-1-pod1", OUTSIDE)
    assert masquerade_packets(lab, "worker-1") > 0


def test_applying_twice_leaves_no_duplicate_route_or_rule(cluster):
    lab, _ = cluster
    scripts = program_apply_scripts(3)
    for _ in range(2):
        for worker, script in scripts.items():
            apply(lab, worker, script)
    for worker in scripts:
        routes = lab.exec(worker, "ip", "-4", "route", "show", "proto", str(podnet.ROUTE_PROTOCOL)).stdout
        assert len(routes.splitlines()) == 2, routes
        postrouting = lab.exec(worker, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout
        assert postrouting.count(f"-j {podnet.MASQUERADE_CHAIN}") == 1, postrouting
        chain = lab.exec(worker, "iptables", "-w", "-t", "nat", "-S", podnet.MASQUERADE_CHAIN).stdout
        assert len([l for l in chain.splitlines() if l.startswith("-A")]) == 3, chain


def test_removing_a_worker_and_reapplying_leaves_no_route_to_it(cluster):
    lab, pods = cluster
    for worker, script in program_apply_scripts(3).items():
        apply(lab, worker, script)
    remaining = program_apply_scripts(2)
    assert set(remaining) == {"worker-0", "worker-1"}
    for worker, script in remaining.items():
        out = apply(lab, worker, script).stdout
        assert f"removed stale route {CANNED['worker-2']}" in out
        routes = lab.exec(worker, "ip", "-4", "route", "show").stdout
        assert CANNED["worker-2"] not in routes
    assert ping(lab, "worker-0-pod0", pods["worker-1-pod1"][1])
    assert not ping(lab, "worker-0-pod0", pods["worker-2-pod0"][1])


# Binds, says so, then prints the source address of the first datagram that arrives.
LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(10)
print("listening", flush=True)
data, (host, port) = s.recvfrom(512)
print(host, flush=True)
"""
# A few datagrams, in case the first is lost while the listener settles.
SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(10):
    s.sendto(b"query", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.2)
"""


def source_seen(lab: Lab, listener_host: str, pod: str, port: int = 53) -> str:
    """The source address that `listener_host` sees on UDP from `pod` (DNS's port and protocol)."""
    listener = lab.popen(listener_host, "python3", "-c", LISTEN, str(port), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "listening", listener.stderr.read()
        lab.exec(pod, "python3", "-c", SEND, lab.addresses[listener_host], str(port))
        out, err = listener.communicate(timeout=15)
    finally:
        listener.kill()
        listener.wait()
    assert listener.returncode == 0, f"nothing from {pod} reached {listener_host}: {err}"
    return out.strip()


def test_vpc_mode_pod_dns_to_the_vpc_resolver_leaves_with_the_node_address_other_vpc_traffic_keeps_the_pod_address(
        cluster):
    """The VPC's route tables hold the pod ranges, so VPC hosts can answer pods; only the resolver cannot."""
    lab, pods = cluster
    scripts = program_apply_scripts(3, "vpc")
    assert f"-d {RESOLVER}/32 -j MASQUERADE" in scripts["worker-1"]
    for worker, script in scripts.items():
        apply(lab, worker, script)
    pod = "worker-1-pod0"
    assert source_seen(lab, "resolver", pod) == WORKER_IPS["worker-1"], "the resolver must see the node"
    assert source_seen(lab, "vpc-peer", pod) == pods[pod][1], "other VPC hosts must see the pod itself"


def test_n3_host_mode_pods_reach_vpc_hosts_that_are_not_nodes(cluster):
    """Review r2 N3: with podRouting host only nodes route pod ranges. A VPC host that is not a node (a database,
    an endpoint, the bastion) answers a pod only if the pod's traffic reaches it with the node's address."""
    lab, pods = cluster
    scripts = program_apply_scripts(3, "host")
    for worker, script in scripts.items():
        apply(lab, worker, script)
    pod = "worker-1-pod0"
    assert ping(lab, pod, VPC_PEER), "the VPC host's reply must come back to the pod"
    assert ping(lab, pod, RESOLVER)
    assert source_seen(lab, "vpc-peer", pod) == WORKER_IPS["worker-1"]
    assert source_seen(lab, "resolver", pod) == WORKER_IPS["worker-1"]
    # Traffic between pods still keeps its address.
    assert ping(lab, pod, pods["worker-2-pod1"][1])
    assert masquerade_packets(lab, "worker-2") == 0
