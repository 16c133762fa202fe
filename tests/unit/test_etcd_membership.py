"""etcd under mocks: members start one after another (a rolling restart when they run, no wait on a first
creation), a raised count joins new members without restarting the running ones, a lowered count removes members
before their machines go, and count changes that would lose quorum are refused."""

import re

import pytest

from infra.aws_facts import BOOTSTRAPPED, BOOTSTRAPPED_TAG

from infra.guards import etcd_count_change_problem
from infra.settings import SettingsError
from simulator.graph import dependency_depth
from simulator.program import ClusterMocks, run_program

ADMIN = ["100.64.7.0/24"]
REMOTE = "command:remote:Command"
INSTANCE = "aws:ec2/instance:Instance"


def config(etcd=3, workers=3):
    return {"adminCidrs": ADMIN, "etcd": {"count": etcd}, "controllers": {"count": 1}, "workers": {"count": workers}}


@pytest.fixture(scope="module")
def three():
    return run_program(config(3))


@pytest.fixture(scope="module")
def five_from_three(three):
    return run_program(config(5), mocks=ClusterMocks(existing=three))


def start(run, i):
    return run.named(f"etcd-{i}-start-etcd", REMOTE)


def test_each_member_starts_after_the_previous_one_and_the_health_check_after_all(three):
    for i in range(1, 3):
        assert start(three, i).depends_on_urn(start(three, i - 1).urn)
        assert not start(three, i - 1).depends_on_urn(start(three, i).urn)
    health = three.named("etcd-0-etcd-health", REMOTE)
    assert all(health.depends_on_urn(start(three, i).urn) for i in range(3))


def test_a_first_creation_starts_every_member_without_waiting(three):
    for i in range(3):
        script = start(three, i).inputs["stdin"]
        assert "new_machine_of_running_cluster=no" in script
        assert "systemctl restart --no-block etcd" in script


def test_workers_do_not_deepen_the_graph_and_etcd_adds_one_step_per_member():
    depth = {w: dependency_depth(run_program(config(3, w))) for w in (3, 12)}
    assert depth[3] == depth[12]
    assert dependency_depth(run_program(config(5, 3))) == depth[3] + 2


def test_raising_the_count_joins_the_new_members_one_after_the_other(five_from_three):
    # (that the running members' start steps are not replaced is played in test_change_simulator.py)
    # new machines of a cluster that ran join it, never start a cluster of their own (r2 N5)
    for i in range(3):
        assert "new_machine_of_running_cluster=no" in start(five_from_three, i).inputs["stdin"]
    for i in (3, 4):
        assert "new_machine_of_running_cluster=yes" in start(five_from_three, i).inputs["stdin"]
    for i in (3, 4):
        script = start(five_from_three, i).inputs["stdin"]
        # as a learner, promoted once caught up (r2 N15)
        assert f"member add etcd-{i} --learner --peer-urls=https://10.43.0.{10 + i}:2380" in script
        assert 'member promote "$id"' in script
        assert "--initial-cluster=${ETCD_JOIN_INITIAL_CLUSTER}" in script
        assert "--initial-cluster-state=existing" in script
    # one joins after the other
    assert start(five_from_three, 4).depends_on_urn(start(five_from_three, 3).urn)
    health = five_from_three.named("etcd-0-etcd-health", REMOTE).inputs["stdin"]
    assert all(f"https://10.43.0.{10 + i}:2379" in health for i in range(5))


def test_every_member_but_the_first_has_a_removal_that_runs_on_the_first_before_its_machine_goes(five_from_three):
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r.urn for r in five_from_three.of_type(INSTANCE)}
    steps = {int(re.search(r"etcd-(\d+)$", c.name)[1]): c for c in five_from_three.of_type(REMOTE)
             if c.name.startswith("etcd-0-membership-")}
    assert sorted(steps) == [1, 2, 3, 4]
    for i, step in steps.items():
        # the engine deletes a dependent first: the member is removed before its instance is terminated
        assert step.depends_on_urn(instances[f"etcd-{i}"])
        # deleted with the VPC only: a destroy removes no member, a scale-down does, and a lost or replaced first
        # member neither cascades nor skips it (review D9, D12)
        assert step.deleted_with == five_from_three.of_type("aws:ec2/vpc:Vpc")[0].urn
        assert f"$3 == \"etcd-{i}\"" in step.inputs["delete"] and "member remove" in step.inputs["delete"]
        assert "triggers" not in step.inputs
        if i > 1:
            # removed one at a time, the highest first (the engine deletes dependents before what they depend on)
            assert step.depends_on_urn(steps[i - 1].urn)


@pytest.mark.parametrize("running, wanted", [(3, 5), (5, 3), (5, 7), (7, 5), (9, 5), (5, 9), (3, 3)])
def test_count_changes_of_fewer_than_a_majority_are_applied(running, wanted):
    assert etcd_count_change_problem(running, wanted) is None


@pytest.mark.parametrize("running, wanted, says", [
    (3, 7, "adds 4 members at once, and 4 would be a majority of 7"),
    (3, 7, "in steps of fewer members, one `pulumi up` each: 3 -> 5 -> 7"),
    (9, 3, "removes 6 members at once"),
    (9, 3, "9 -> 5 -> 3"),
    (3, 1, "removes a majority at once"),
    (1, 3, "a single member loses its quorum as soon as a second one is added"),
])
def test_count_changes_that_would_lose_quorum_are_refused_with_the_steps_to_take(running, wanted, says):
    assert says in etcd_count_change_problem(running, wanted)


def test_a_refused_count_change_stops_before_the_first_resource(three):
    mocks = ClusterMocks(existing=three)
    with pytest.raises(SettingsError, match="setting 'etcd.count' = 7 cannot be applied"):
        run_program(config(7), mocks=mocks)
    assert mocks.declared == []


def test_n5_a_replaced_machine_is_told_it_is_new_to_a_running_cluster():
    """Review r2 N5: AWS shows etcd-1's name on another instance than the one the program now has for it (the old
    one, replaced); only etcd-1 is a new machine, so only it must join and never start a cluster of its own. The
    members whose machines ran keep the same script from one update to the next."""
    keys: dict = {}
    three = run_program(config(3), mocks=ClusterMocks(key_material=keys))
    running = [{"id": r.id if not r.name.endswith("etcd-1") else "i-0replaced", "tags": r.inputs["tags"],
                "privateIp": r.inputs["privateIp"], "keyName": "", "rootVolumeGb": 20,
                "interfaceTags": {BOOTSTRAPPED_TAG: BOOTSTRAPPED}}
               for r in three.of_type(INSTANCE)]
    again = run_program(config(3), mocks=ClusterMocks(existing_instances=running, key_material=keys))
    assert "new_machine_of_running_cluster=yes" in start(again, 1).inputs["stdin"]
    for i in (0, 2):
        assert start(again, i).inputs["stdin"] == start(three, i).inputs["stdin"]
