"""Subnet and node address planning."""

import ipaddress

from hypothesis import given, settings as hyp_settings, strategies as st

from infra import addressing
from infra.settings import parse_settings


def make(**overrides):
    return parse_settings({"adminCidrs": ["100.64.7.0/24"], **overrides})


def ips(s, role):
    return [p.private_ip for p in addressing.plan_nodes(s, role)]


def test_default_cluster_keeps_the_tutorial_addresses():
    s = make()
    assert addressing.public_subnet_cidrs(s) == ["10.43.0.0/20"]
    assert ips(s, "etcd") == ["10.43.0.10", "10.43.0.11", "10.43.0.12"]
    assert ips(s, "controllers") == ["10.43.0.20", "10.43.0.21", "10.43.0.22"]
    assert ips(s, "workers") == ["10.43.0.30", "10.43.0.31", "10.43.0.32"]
    assert [p.name for p in addressing.plan_nodes(s, "workers")] == ["worker-0", "worker-1", "worker-2"]


def test_more_than_ten_of_a_role_take_more_blocks_and_move_the_next_roles_up():
    s = make(controllers={"count": 12}, workers={"count": 25})
    assert ips(s, "controllers")[0] == "10.43.0.20" and ips(s, "controllers")[-1] == "10.43.0.31"
    assert ips(s, "workers")[0] == "10.43.0.40" and ips(s, "workers")[-1] == "10.43.0.64"


def test_zones_spread_nodes_round_robin_over_their_own_subnets():
    s = make(zones=3)
    assert addressing.public_subnet_cidrs(s) == ["10.43.0.0/20", "10.43.16.0/20", "10.43.32.0/20"]
    assert ips(s, "etcd") == ["10.43.0.10", "10.43.16.10", "10.43.32.10"]
    assert [p.zone_index for p in addressing.plan_nodes(s, "workers")] == [0, 1, 2]


def test_private_topology_puts_nodes_in_private_subnets():
    s = make(topology="private", zones=2)
    assert addressing.node_subnet_cidrs(s) == ["10.43.128.0/20", "10.43.144.0/20"]
    assert ips(s, "etcd")[0] == "10.43.128.10"
    assert addressing.bastion_ip(s) == "10.43.0.5"


@hyp_settings(max_examples=60, deadline=None)
@given(etcd=st.sampled_from([1, 3, 5, 7, 9]), controllers=st.integers(1, 30), workers=st.integers(1, 300),
       zones=st.integers(1, 6), topology=st.sampled_from(["public", "private"]))
def test_every_node_gets_a_distinct_usable_address_inside_its_zone_subnet(etcd, controllers, workers, zones,
                                                                          topology):
    s = make(etcd={"count": etcd}, controllers={"count": controllers}, workers={"count": workers}, zones=zones,
             topology=topology, podRouting="vpc", routesQuota=1000, podCidr="10.128.0.0/12")
    subnets = [ipaddress.ip_network(c) for c in addressing.node_subnet_cidrs(s)]
    plans = addressing.all_nodes(s)
    assert len({p.private_ip for p in plans}) == len(plans) == etcd + controllers + workers
    for p in plans:
        ip = ipaddress.ip_address(p.private_ip)
        subnet = subnets[p.zone_index]
        assert ip in subnet
        # AWS reserves the first four and the last address of every subnet.
        assert subnet.network_address + 4 <= ip < subnet.broadcast_address
    vpc = ipaddress.ip_network(s.vpc_cidr)
    all_subnets = [ipaddress.ip_network(c) for c in addressing.public_subnet_cidrs(s) + addressing.private_subnet_cidrs(s)]
    assert all(n.subnet_of(vpc) for n in all_subnets)
    assert not any(a.overlaps(b) for i, a in enumerate(all_subnets) for b in all_subnets[i + 1:])
