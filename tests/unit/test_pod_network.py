"""Pod routes, masquerading, add-ons and the smoke test under mocks, from canned podCIDRs."""

import re

import pytest

from simulator.graph import dependency_depth
from simulator.program import ClusterMocks, run_program

ADMIN = ["100.64.7.0/24"]
ROUTE = "aws:ec2/route:Route"


def config(workers, **extra):
    return {"adminCidrs": ADMIN, "etcd": {"count": 1}, "controllers": {"count": 2}, "workers": {"count": workers},
            **extra}


def canned(workers):
    """The controller-manager hands out ranges in registration order, not in name order: reverse them."""
    return {f"worker-{i}": f"10.200.{workers - 1 - i}.0/24" for i in range(workers)}


def worker_ip(i):
    return f"10.43.0.{30 + i}"


def host_routes(script):
    return set(re.findall(r"^ip route replace (\S+) via (\S+) proto 211$", script, re.M))


@pytest.mark.parametrize("workers", [3, 10])
def test_vpc_mode_routes_each_worker_range_to_its_interface_in_every_node_route_table(workers):
    mocks = ClusterMocks(pod_cidrs=canned(workers))
    run = run_program(config(workers, zones=2, topology="private"), mocks=mocks)
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r for r in run.of_type("aws:ec2/instance:Instance")}
    pod_routes = [r for r in run.of_type(ROUTE) if "-pod-network-" in r.name]
    tables = {r.inputs["routeTableId"] for r in pod_routes}
    assert len(tables) == 2, "private topology: one route table per zone, each gets every pod route"
    got = {(r.inputs["routeTableId"], r.inputs["destinationCidrBlock"], r.inputs["networkInterfaceId"])
           for r in pod_routes}
    want = {(t, canned(workers)[f"worker-{i}"], instances[f"worker-{i}"].outputs["primaryNetworkInterfaceId"])
            for t in tables for i in range(workers)}
    assert got == want and len(pod_routes) == 2 * workers
    assert run.outputs["podCidrs"] == canned(workers)
    # vpc mode: no host routes anywhere, but every worker masquerades
    for c in run.of_type("command:remote:Command"):
        if c.name.endswith("-pod-network"):
            assert c.name.startswith("worker-") and not host_routes(c.inputs["stdin"])
            assert "-j MASQUERADE" in c.inputs["stdin"]


@pytest.mark.parametrize("workers", [3, 10])
def test_host_mode_routes_every_other_range_via_its_worker_on_workers_and_controllers(workers):
    run = run_program(config(workers, podRouting="host"), mocks=ClusterMocks(pod_cidrs=canned(workers)))
    assert not [r for r in run.of_type(ROUTE) if "-pod-network-" in r.name]
    scripts = {c.name.removesuffix("-pod-network"): c.inputs["stdin"] for c in run.of_type("command:remote:Command")
               if c.name.endswith("-pod-network")}
    assert set(scripts) == {f"worker-{i}" for i in range(workers)} | {"controller-0", "controller-1"}
    everything = {(canned(workers)[f"worker-{i}"], worker_ip(i)) for i in range(workers)}
    for host, script in scripts.items():
        own = {(canned(workers)[host], worker_ip(int(host.split("-")[1])))} if host.startswith("worker") else set()
        assert host_routes(script) == everything - own, host
        assert ("-j MASQUERADE" in script) is host.startswith("worker"), host
        assert "systemctl enable --quiet k8s-pod-network.service" in script


@pytest.mark.parametrize("mode", ["vpc", "host"])
def test_removing_a_worker_leaves_no_route_to_it(mode):
    before = run_program(config(3, podRouting=mode), mocks=ClusterMocks(pod_cidrs=canned(3)))
    after = run_program(config(2, podRouting=mode), mocks=ClusterMocks(pod_cidrs=canned(3)))
    gone = canned(3)["worker-2"]
    def mentions(run):
        texts = [str(r.inputs) for r in run.of_type(ROUTE)] + \
                [c.inputs["stdin"] for c in run.of_type("command:remote:Command") if c.name.endswith("-pod-network")]
        return any(gone in t for t in texts)
    assert mentions(before) and not mentions(after)
    # nothing reads its range any more: its reader went with it
    assert sorted(r.name for r in after.of_type("command:remote:Command") if r.name.endswith("-read-pod-cidr")) == \
        ["worker-0-read-pod-cidr", "worker-1-read-pod-cidr"]


# What each worker's chain holds per mode: with vpc, the VPC routes pod ranges, so only its resolver needs the node's
# address; with host (review r2 N3), nothing but a node routes back to a pod, so only pod-to-pod keeps the address.
CHAINS = {
    "vpc": ["-d 10.200.0.0/16 -j RETURN", "-d 10.50.0.2/32 -j MASQUERADE", "-d 10.50.0.0/16 -j RETURN",
            "-d 224.0.0.0/4 -j RETURN", "-j MASQUERADE"],
    "host": ["-d 10.200.0.0/16 -j RETURN", "-d 224.0.0.0/4 -j RETURN", "-j MASQUERADE"],
}


@pytest.mark.parametrize("mode", ["vpc", "host"])
def test_the_masquerade_chain_exempts_what_can_route_back_to_pods(mode):
    run = run_program(config(3, podRouting=mode, vpcCidr="10.50.0.0/16"), mocks=ClusterMocks(pod_cidrs=canned(3)))
    for c in run.of_type("command:remote:Command"):
        if c.name.startswith("worker-") and c.name.endswith("-pod-network"):
            chain = [line for line in c.inputs["stdin"].splitlines() if "-A K8S-FROM-SCRATCH-MASQ" in line]
            rules = [line.split("-A K8S-FROM-SCRATCH-MASQ ", 1)[1] for line in chain]
            assert rules == CHAINS[mode], c.name


def test_a_node_that_never_gets_a_pod_range_fails_the_update_by_name():
    with pytest.raises(Exception, match="these nodes still have no podCIDR: worker-1"):
        run_program(config(3), mocks=ClusterMocks(pod_cidrs={"worker-0": "10.200.0.0/24", "worker-1": None,
                                                             "worker-2": "10.200.2.0/24"}))


def test_route_quota_is_checked_before_anything_is_declared():
    mocks = ClusterMocks()
    with pytest.raises(ValueError, match="routesQuota 50 allows at most 48 workers"):
        run_program(config(49), mocks=mocks)
    assert mocks.calls == []


def test_a_workers_range_is_read_on_the_worker_once_it_is_ready_and_only_its_routes_take_it():
    """No route takes an input from another worker's step, nor from the first controller: replacing one of them
    delete-first leaves the other routes alone (review D2; the engine replaces what takes an input from a replaced
    resource, step_generator.go calculateDependentReplacements)."""
    run = run_program(config(3))
    for i in range(3):
        reader = run.named(f"worker-{i}-read-pod-cidr")
        assert reader.depends_on_urn(run.named(f"worker-{i}-node-ready").urn)
        assert "/usr/local/bin/kubectl', '--kubeconfig', '/var/lib/kubelet/kubeconfig'" in reader.inputs["stdin"]
        assert f"main(['worker-{i}']" in reader.inputs["stdin"]
        route = run.named(f"k8s-dev-pod-network-table0-worker-{i}", ROUTE)
        assert route.property_dependencies["destinationCidrBlock"] == [reader.urn]
    host_mode = run_program(config(3, podRouting="host"))
    readers = [host_mode.named(f"worker-{i}-read-pod-cidr").urn for i in range(3)]
    for c in host_mode.of_type("command:remote:Command"):
        if c.name.endswith("-pod-network"):
            assert all(c.depends_on_urn(r) for r in readers), c.name


@pytest.mark.parametrize("mode", ["vpc", "host"])
def test_a_node_registered_again_with_another_range_is_routed_on_the_next_up_and_nothing_else_changes(mode):
    """Review N2: the live read at the next `pulumi up` sees the new range (a newer registration than the one its
    reader read), and only what routes to it changes."""
    from simulator.change_sim import deployed, simulate
    from simulator.engine import UNCHANGED
    stack = config(3, podRouting=mode)
    again = {"worker-0": "10.200.0.0/24", "worker-1": "10.200.7.0/24", "worker-2": "10.200.2.0/24"}
    plan = simulate(deployed(stack), stack, pod_cidrs=again)
    changed = {c.name for c in plan.changes.values() if c.kind != UNCHANGED}
    if mode == "vpc":
        assert changed == {"k8s-dev-pod-network-table0-worker-1"}
        assert plan.named("k8s-dev-pod-network-table0-worker-1").after.inputs["destinationCidrBlock"] == \
            "10.200.7.0/24"
    else:
        # every node but worker-1 routes the new range to it
        steps = {c.name for c in plan.changes.values() if c.step == "pod-network"}
        assert changed == steps - {"worker-1-pod-network"} and "controller-0-pod-network" in changed
        for name in changed:
            script = plan.named(name).after.inputs["stdin"]
            assert "ip route replace 10.200.7.0/24 via 10.43.0.31" in script and "10.200.1.0/24" not in script
    assert plan.after.outputs["podCidrs"] == again
    # the same answer again changes nothing
    assert {c.kind for c in simulate(plan, stack, pod_cidrs=again).changes.values()} == {UNCHANGED}


def test_the_live_read_carries_the_admin_kubeconfig_on_stdin_only_and_logs_nothing():
    mocks = ClusterMocks(existing=run_program(config(3)))
    run_program(config(3), mocks=mocks)
    (call,) = [a for token, a in mocks.calls if token == "command:local:run"]
    assert call["logging"] == "none"
    assert "client-key-data" in call["stdin"] and "client-key-data" not in call["command"]


def test_dns_and_smoke_test_follow_the_pod_network_and_the_urls_are_outputs():
    run = run_program(config(3))
    dns = run.named("controller-0-dns-check")
    nginx = run.named("controller-0-apply-nginx")
    for r in run.of_type(ROUTE):
        if "-pod-network-" in r.name:
            assert dns.depends_on_urn(r.urn) and nginx.depends_on_urn(r.urn)
    assert nginx.depends_on_urn(dns.urn)
    assert '"replicas": 3' in nginx.inputs["stdin"] and '"nodePort": 30080' in nginx.inputs["stdin"]
    assert '"whenUnsatisfiable": "DoNotSchedule"' in nginx.inputs["stdin"]
    assert set(run.outputs["nginxUrls"]) == {"worker-0", "worker-1", "worker-2"}    # test_deployer_checks.py
    coredns = run.named("controller-0-apply-coredns").inputs["stdin"]
    assert '"clusterIP": "10.32.0.10"' in coredns


def test_graph_depth_does_not_grow_with_the_worker_count():
    depths = {n: dependency_depth(run_program(config(n, podRouting="host"))) for n in (3, 10, 30)}
    assert len(set(depths.values())) == 1, depths


def test_dns_check_resolves_the_configured_external_name_and_the_kubernetes_service_address():
    run = run_program(config(2, dnsCheckName="ec2.eu-west-1.amazonaws.com", serviceCidr="10.96.0.0/24"))
    check = run.named("controller-0-dns-check").inputs["stdin"]
    assert "internal=$(answers kubernetes.default.svc.cluster.local" in check
    assert "external=$(answers ec2.eu-west-1.amazonaws.com " in check
    assert "grep -qxF 10.96.0.1 " in check
    assert "kubectl run" not in check


def test_a_worker_is_ready_only_once_its_cni_config_follower_runs():
    run = run_program(config(2))
    for i in range(2):
        ready = run.named(f"worker-{i}-node-ready")
        assert ready.depends_on_urn(run.named(f"worker-{i}-start-k8s-cni-config").urn)
        assert run.named(f"worker-{i}-start-k8s-cni-config").depends_on_urn(
            run.named(f"worker-{i}-install-kubernetes-node").urn), "it runs kubectl"
