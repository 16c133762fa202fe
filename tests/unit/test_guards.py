"""What AWS holds, checked before anything is declared (infra/aws_facts.py reads it, infra/guards.py judges it):
each refusal names the setting and what to do, and the program declares nothing. The mocks answer every lookup as
AWS does, including the answers that refuse."""

from __future__ import annotations

from collections import Counter

import pytest

from infra.aws_facts import BOOTSTRAPPED, BOOTSTRAPPED_TAG, SSH_KEY_TAG, STACK_TAG, AwsFacts, KeyPairFacts, NodeSample, is_standard_family
from infra.guards import launch_image_warnings, unsafe_changes
from infra.settings import SettingsError, parse_settings
from simulator.program import AMIS, ClusterMocks, run_program, stack_config

INSTANCE = "aws:ec2/instance:Instance"
THIS_STACK = "organization/k8s-from-scratch/dev"
OTHER_STACK = "acme/k8s-from-scratch/dev"


def refused(config: dict, mocks: ClusterMocks, says: str, **kw) -> str:
    with pytest.raises(SettingsError) as err:
        run_program(config, mocks=mocks, **kw)
    assert says in str(err.value), str(err.value)
    assert mocks.declared == [], "refused after something was declared"
    return str(err.value)


def node(role: str, index: int, *, stack: str | None = THIS_STACK, cluster: str = "k8s-dev", ip: str = "") -> dict:
    tags = {"cluster": cluster, "role": role, "Name": f"{cluster}-{role.rstrip('s') if role != 'etcd' else 'etcd'}-{index}"}
    if stack:
        tags[STACK_TAG] = stack
    return {"id": f"i-{role[:4]}{index}{abs(hash((stack, cluster))) % 10**8:08d}", "rootVolumeGb": 20, "tags": tags,
            "privateIp": ip or f"10.43.0.{ {'etcd': 10, 'controllers': 20, 'workers': 30}[role] + index}",
            "interfaceTags": {BOOTSTRAPPED_TAG: BOOTSTRAPPED}}     # it came up once


# --- D4: nodes are found by the stack's tag --------------------------------------------------------------------------
def test_every_resource_names_the_stack_that_made_it():
    run = run_program(stack_config(1, 1, 1, topology="private"))
    tagged = [r for r in run.resources if r.custom and "tags" in r.inputs]
    assert all(r.inputs["tags"][STACK_TAG] == THIS_STACK for r in tagged)
    assert {"aws:ec2/instance:Instance", "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup",
            "aws:ec2/keyPair:KeyPair", "aws:ec2/eip:Eip", "aws:ec2/vpc:Vpc"} <= {r.type for r in tagged}


def test_another_stacks_nodes_with_the_same_cluster_name_are_refused_not_adopted():
    mocks = ClusterMocks(existing_instances=[node("etcd", 0, stack=OTHER_STACK), node("workers", 0, stack=OTHER_STACK)])
    message = refused(stack_config(1, 1, 1), mocks, f"nodes of cluster 'k8s-dev' in this account and region belong "
                                                    f"to stack '{OTHER_STACK}'")
    assert "Set a clusterName of your own" in message and "tag-resources" in message


def test_a_load_balancer_name_another_stack_holds_is_refused():
    mocks = ClusterMocks(load_balancers=[{"name": "k8s-dev-api", "kind": "load balancer",
                                           "tags": {STACK_TAG: OTHER_STACK, "cluster": "k8s-dev"}}])
    refused(stack_config(1, 1, 1), mocks, f"the load balancer name 'k8s-dev-api' is taken in this account and region "
                                          f"by stack '{OTHER_STACK}'")


def test_a_target_group_name_held_by_something_else_is_refused():
    mocks = ClusterMocks(load_balancers=[{"name": "k8s-dev-api", "kind": "target group", "tags": {}}])
    refused(stack_config(1, 1, 1), mocks, "the target group name 'k8s-dev-api' is taken in this account and region by "
                                          "something this program did not make")


def test_nodes_from_before_the_stack_tag_are_read_as_this_stacks_when_no_other_stack_holds_the_name():
    legacy = [node("etcd", i, stack=None) for i in range(3)]
    run = run_program(stack_config(3, 1, 1), mocks=ClusterMocks(existing_instances=legacy))
    start = run.named("etcd-0-start-etcd")
    # running members: none joins, and the count change to 1 would be refused
    assert "new_member_of_running_cluster=yes" not in start.inputs["stdin"]
    refused(stack_config(1, 1, 1), ClusterMocks(existing_instances=legacy), "setting 'etcd.count' = 1 cannot be applied "
                                                                            "to the running 3 etcd members")
    # beside another stack's node with the same cluster name, they are not adopted: that stack is refused
    refused(stack_config(3, 1, 1), ClusterMocks(existing_instances=[*legacy, node("workers", 0, stack=OTHER_STACK)]),
            f"belong to stack '{OTHER_STACK}'")


# --- D5: a running stack keeps its cluster name ----------------------------------------------------------------------
def test_a_cluster_name_change_on_a_running_stack_is_refused():
    before = run_program(stack_config(1, 1, 1))
    refused(stack_config(1, 1, 1, clusterName="other"), ClusterMocks(existing=before),
            "setting 'clusterName' = 'other' cannot be applied: this stack's nodes run as cluster 'k8s-dev'")
    # the name it has is no change, and a stack whose nodes are all gone may take another
    assert run_program(stack_config(1, 1, 1), mocks=ClusterMocks(existing=before)).of_type(INSTANCE)
    assert run_program(stack_config(1, 1, 1, clusterName="other")).of_type(INSTANCE)


# --- D6: instance types, their architecture and zones ---------------------------------------------------------------
def test_an_instance_type_of_another_architecture_is_refused():
    config = {**stack_config(1, 1, 1), "workers": {"count": 1, "instanceType": "t4g.medium"}}
    refused(config, ClusterMocks(), "setting 'workers.instanceType' = 't4g.medium' is invalid: it runs arm64, not "
                                    "x86_64, and 'architecture' is 'amd64'")


def test_an_instance_type_ec2_does_not_have_is_refused_with_ec2s_answer():
    config = {**stack_config(1, 1, 1), "etcd": {"count": 1, "instanceType": "t9.small"}}
    refused(config, ClusterMocks(), "setting 'etcd.instanceType' = 't9.small' is invalid: EC2 does not know it (invoke "
                                    "of aws:ec2/getInstanceType:getInstanceType failed: reading EC2 Instance Type")


def test_an_instance_type_not_offered_in_a_zone_the_stack_uses_is_refused():
    mocks = ClusterMocks(not_offered={("t3.medium", "eu-west-1c")})
    refused(stack_config(1, 3, 3, zones=3), mocks, "setting 'controllers.instanceType' = 't3.medium' (also "
                                                   "workers.instanceType) is invalid: EC2 does not offer it in "
                                                   "eu-west-1c, a zone this stack uses")
    # with two zones the third does not matter
    assert run_program(stack_config(1, 3, 3, zones=2), mocks=ClusterMocks(not_offered={("t3.medium", "eu-west-1c")}))


def test_more_zones_than_the_region_has_are_refused():
    refused(stack_config(1, 1, 4, zones=4), ClusterMocks(), "setting 'zones' = 4 is invalid: this region has only 3")


# --- quotas ----------------------------------------------------------------------------------------------------------
def test_more_standard_vcpus_than_the_quota_are_refused():
    mocks = ClusterMocks(quotas={"L-1216C47A": 16.0})
    refused(stack_config(3, 3, 3), mocks, "need 18 vCPUs of On-Demand Standard instances, but the account's quota "
                                          "L-1216C47A in this region is 16")
    assert run_program(stack_config(3, 3, 2), mocks=ClusterMocks(quotas={"L-1216C47A": 16.0}))


def test_other_running_instances_of_the_same_types_count_against_the_quota():
    other = {"id": "i-someone0else", "rootVolumeGb": 8, "tags": {"Name": "build-box"}, "instanceType": "t3.medium"}
    mocks = ClusterMocks(quotas={"L-1216C47A": 18.0}, existing_instances=[other])
    refused(stack_config(3, 3, 3), mocks, "need 18 vCPUs of On-Demand Standard instances and other running instances "
                                          "of the same types use 2")


def test_this_stacks_own_running_nodes_are_not_counted_twice():
    before = run_program(stack_config(3, 3, 3))
    assert run_program(stack_config(3, 3, 3), mocks=ClusterMocks(existing=before, quotas={"L-1216C47A": 18.0}))


@pytest.mark.parametrize("instance_type, standard", [("t3.medium", True), ("m7i-flex.large", True),
                                                     ("i4i.xlarge", True), ("inf2.xlarge", False),
                                                     ("g5.xlarge", False), ("dl1.24xlarge", False),
                                                     ("hpc7g.4xlarge", False), ("x2idn.16xlarge", False)])
def test_standard_families_are_the_ones_quota_l_1216c47a_covers(instance_type, standard):
    assert is_standard_family(instance_type) is standard


def test_elastic_ips_the_private_topology_needs_are_checked_against_the_quota():
    mocks = ClusterMocks(eips=[{"tags": {}}] * 4)
    refused(stack_config(1, 1, 2, topology="private", zones=2), mocks,
            "setting 'topology' = 'private' with 'zones' = 2 needs 2 Elastic IP addresses (a NAT gateway per zone), 2 "
            "of them new, but the region holds 4 of the 5 the account may have (quota L-0263D0A3)")
    # a running private stack's own addresses are already counted
    before = run_program(stack_config(1, 1, 2, topology="private", zones=2))
    assert run_program(stack_config(1, 1, 2, topology="private", zones=2),
                       mocks=ClusterMocks(existing=before, eips=[{"tags": {}}] * 3))


# --- D17: lookups do not grow with the node count --------------------------------------------------------------------
def test_the_lookups_before_anything_is_declared_do_not_grow_with_the_workers():
    def lookups(workers: int) -> Counter:
        before = run_program(stack_config(3, 3, workers))
        mocks = ClusterMocks(existing=before)
        run_program(stack_config(3, 3, workers), mocks=mocks)
        return Counter(token for token, _ in mocks.calls if "Instance" in token.split(":")[-1])
    assert lookups(3) == lookups(12)


# --- D19 and D21: the key pair is judged by its tag, not by the name AWS gave it ------------------------------------
def facts(**kw) -> AwsFacts:
    defaults = dict(stack=THIS_STACK, zones=("eu-west-1a",))
    return AwsFacts(**{**defaults, **kw})


def running_etcd():
    from infra.aws_facts import RunningNode
    return (RunningNode("i-1", "etcd", "10.43.0.10", "etcd-0", bootstrapped=BOOTSTRAPPED),)


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp8eZyWQ0kUrJ6h2jk7vYk3Yq8j5m3n9lJ8bY0zQ1aB me@host"


@pytest.mark.parametrize("key_name", ["k8s-dev-ssh", "k8s-dev-ssh-1a2b3c4", "team-keys-k8s-dev-ssh-0f9e8d7"])
def test_a_generated_key_pair_is_recognized_whatever_autonaming_called_it(key_name):
    settings = parse_settings({"adminCidrs": ["100.64.7.0/24"], "etcd": {"count": 1}})
    pair = KeyPairFacts(key_name, "ssh-ed25519 AAAA", {SSH_KEY_TAG: "generated"})
    assert unsafe_changes(settings, facts(nodes=running_etcd(), key_pair=pair)) == []
    with_key = parse_settings({"adminCidrs": ["100.64.7.0/24"], "etcd": {"count": 1}, "sshPublicKey": KEY})
    assert "sshPublicKey" in unsafe_changes(with_key, facts(nodes=running_etcd(), key_pair=pair))[0]


def test_a_new_comment_on_the_same_key_is_the_same_key_pair():
    settings = parse_settings({"adminCidrs": ["100.64.7.0/24"], "etcd": {"count": 1}, "sshPublicKey": KEY})
    recommented = parse_settings({"adminCidrs": ["100.64.7.0/24"], "etcd": {"count": 1},
                                  "sshPublicKey": KEY.replace("me@host", "me@laptop")})
    from infra.settings import key_pair_former_name, key_pair_resource_name, ssh_key_identity
    assert ssh_key_identity(settings.ssh_public_key) == ssh_key_identity(recommented.ssh_public_key)
    assert key_pair_resource_name("k8s-dev", KEY) == key_pair_resource_name("k8s-dev", recommented.ssh_public_key)
    # a key pair made when the comment counted keeps its identity through an alias
    run = run_program(stack_config(1, 1, 1, sshPublicKey=KEY))
    (pair,) = run.of_type("aws:ec2/keyPair:KeyPair")
    assert any(key_pair_former_name("k8s-dev", KEY) in a for a in pair.aliases)
    # a pair from before the tag is judged by its key
    legacy = KeyPairFacts("k8s-dev-ssh-0a1b2c3d-1234567", KEY, {})
    assert unsafe_changes(recommented, facts(nodes=running_etcd(), key_pair=legacy)) == []


# --- D14: a node's image ---------------------------------------------------------------------------------------------
def test_a_gone_launch_image_is_warned_about_naming_the_nodes():
    sample = NodeSample("workers", "i-1", "t3.medium", 30, "k", AMIS["x86_64"])
    warnings = launch_image_warnings(facts(samples={"workers": sample}, gone_images=(AMIS["x86_64"],)))
    assert warnings == [f"the image {AMIS['x86_64']} that the workers nodes were launched from is no longer "
                        "available: a replacement of one of them (--replace, a zones change) would terminate it and "
                        "fail to launch its successor. See docs/recovery.md, 'A node's image is gone'"]
    before = run_program(stack_config(1, 1, 1))
    mocks = ClusterMocks(existing=before, gone_images={AMIS["x86_64"]})
    run_program(stack_config(1, 1, 1), mocks=mocks)
    assert ("aws:ec2/getAmi:getAmi", True) in {(t, "image-id" in str(a)) for t, a in mocks.calls}


# --- D7, D21: what settings alone refuse ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, says", [
    ({"sshPublicKey": "ecdsa-sha2-nistp256 AAAAE2VjZHNh me@host"},
     "setting 'sshPublicKey' = 'ecdsa-sha2-nistp256 AAAAE2VjZHNh me@host' is invalid: EC2 key pairs take ssh-ed25519 "
     "and ssh-rsa keys only, not ecdsa-sha2-nistp256"),
    ({"vpcCidr": "10.43.0.0/23"}, "setting 'vpcCidr' = '10.43.0.0/23' is invalid: expected /16 to /22"),
    ({"clusterName": "internal-dev"}, "setting 'clusterName' = 'internal-dev' is invalid: the load balancer is named "
                                      "after it, and ELBv2 refuses names that begin with 'internal-'"),
])
def test_settings_aws_would_refuse_are_refused_first(raw, says):
    with pytest.raises(SettingsError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_settings({"adminCidrs": ["100.64.7.0/24"], **raw})


def test_a_22_vpc_still_holds_a_small_cluster():
    assert parse_settings({"adminCidrs": ["100.64.7.0/24"], "vpcCidr": "10.43.0.0/22", "etcd": {"count": 1},
                           "controllers": {"count": 1}, "workers": {"count": 2}}).vpc_cidr == "10.43.0.0/22"
