"""Pod routes, masquerading, add-ons and the smoke test under mocks, from canned podCIDRs."""

import re

import pytest

from tests.support.graph import dependency_depth
from tests.support.program import ClusterMocks, run_program

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
    # the removed node is pruned from the API by the reader, which is told exactly the workers that remain
    reader = after.named("controller-0-read-pod-cidrs").inputs["stdin"]
    assert "main(['worker-0', 'worker-1']" in reader


def test_a_node_that_never_gets_a_pod_range_fails_the_update_by_name():
    with pytest.raises(Exception, match="these nodes still have no podCIDR: worker-1"):
        run_program(config(3), mocks=ClusterMocks(pod_cidrs={"worker-0": "10.200.0.0/24", "worker-1": None,
                                                             "worker-2": "10.200.2.0/24"}))


def test_route_quota_is_checked_before_anything_is_declared():
    mocks = ClusterMocks()
    with pytest.raises(ValueError, match="routesQuota 50 allows at most 48 workers"):
        run_program(config(49), mocks=mocks)
    assert mocks.calls == []


def test_pod_routes_wait_for_the_ranges_which_wait_for_every_worker():
    run = run_program(config(3))
    reader = run.named("controller-0-read-pod-cidrs")
    for i in range(3):
        assert reader.depends_on_urn(run.named(f"worker-{i}-node-ready").urn)
    for route in (r for r in run.of_type(ROUTE) if "-pod-network-" in r.name):
        assert route.depends_on_urn(reader.urn)


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
    fetch = run.of_type("command:local:Command")
    fetch = next(c for c in fetch if "fetch-from-every-worker" in c.name)
    urls = run.outputs["nginxUrls"]
    assert set(urls) == {"worker-0", "worker-1", "worker-2"}
    for name, url in urls.items():
        assert re.fullmatch(r"http://203\.0\.113\.\d+:30080/", url)
        assert f"{name}) echo {url} ;;" in fetch.inputs["stdin"]
    coredns = run.named("controller-0-apply-coredns").inputs["stdin"]
    assert '"clusterIP": "10.32.0.10"' in coredns


def test_private_topology_fetches_from_a_controller_over_private_addresses():
    run = run_program(config(2, topology="private"))
    fetch = run.named("controller-0-fetch-from-every-worker")
    assert "http://10.43.128.30:30080/" in fetch.inputs["stdin"]
    assert not [c for c in run.of_type("command:local:Command") if "fetch" in c.name]


def test_graph_depth_does_not_grow_with_the_worker_count():
    depths = {n: dependency_depth(run_program(config(n, podRouting="host"))) for n in (3, 10, 30)}
    assert len(set(depths.values())) == 1, depths
