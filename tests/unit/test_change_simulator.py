"""Setting changes played the way `pulumi up` plays them on a running stack (simulator/change_sim.py): what is
created, updated, replaced and deleted, in the engine's order, replayed into moto on top of the running stack.

Every case asserts the same three things: AWS refuses nothing (no address in use, no name taken), every node
whose instance is replaced gets every one of its steps run again, and no service restarts unless its own inputs
changed. Changes the program cannot apply are refused before anything is created, naming the setting.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import pytest
from moto import mock_aws

from infra.lifecycle import REPLACE_RULES
from infra.settings import SettingsError
from simulator.aws_replay import AwsRefused, AwsReplay
from infra.aws_facts import STACK_TAG
from simulator.change_sim import (ADMIN_CIDRS, CASES_BY_ID, CREATED, DELETED, REPLACED, UNCHANGED, UPDATED,
                                  README_SECTION, ChangePlan, aws_refusal, deployed, plan_case, render_readme_section,
                                  replay_operations, simulate, summarize, write_readme_section)
from simulator.engine import NO_COMMAND, RUNS, SKIPPED
from simulator.engine import node_name as _node_name
from simulator.program import ProgramRun, run_program

README = Path(__file__).resolve().parents[2] / "docs" / "operations.md"   # where the section lives
RECOVERY = Path(__file__).resolve().parents[2] / "docs" / "recovery.md"
INSTANCE = "aws:ec2/instance:Instance"


def replay(plan: ChangePlan) -> list[dict]:
    """Play the plan into moto on top of its running stack; return the instances AWS then runs."""
    with mock_aws():
        aws = replay_operations(plan)
        return [i for r in aws.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": [
            "pending", "running"]}])["Reservations"] for i in r["Instances"]]


def assert_replaced_nodes_run_every_step_again(plan: ChangePlan) -> None:
    for node in plan.replaced_nodes():
        steps = plan.steps(host=node)
        assert steps, f"{node} has no steps"
        stale = [(c.name, c.kind) for c in steps if c.kind not in (REPLACED, CREATED)]
        assert not stale, f"{node} is a new machine, but these steps would not run on it again: {stale}"


def assert_no_restart_without_new_inputs(plan: ChangePlan) -> None:
    """A `start-*` step is replaced (its service restarted) only on a new machine or when its own triggers'
    values changed (files or binary of that service); a change of connection alone is an update."""
    replaced_nodes = set(plan.replaced_nodes())
    for c in plan.steps():
        if c.step.startswith("start-") and c.kind == REPLACED and c.host not in replaced_nodes:
            assert c.before.inputs["triggers"] != c.after.inputs["triggers"], \
                f"{c.name} restarts its service although nothing it starts changed (forced by {c.forcing})"


def assert_safe(plan: ChangePlan) -> list[dict]:
    assert_replaced_nodes_run_every_step_again(plan)
    assert_no_restart_without_new_inputs(plan)
    return replay(plan)


def kinds(plan: ChangePlan, type_: str) -> dict[str, str]:
    return {c.name: c.kind for c in plan.changes.values() if c.type == type_}


# --- a new stack ------------------------------------------------------------------------------------------------
@functools.cache
def first_up(stack: str) -> ProgramRun:
    return run_program({"adminCidrs": ADMIN_CIDRS}, stack=stack)


@pytest.mark.parametrize("stack", ["staging", "production-eu"])
def test_first_up_of_a_new_stack_fits_every_aws_name_and_limit(stack):
    run = first_up(stack)
    with mock_aws():
        aws = AwsReplay()
        aws.replay(run)
        load_balancers = [lb["LoadBalancerName"] for lb in aws.elb.describe_load_balancers()["LoadBalancers"]]
        groups = [g["TargetGroupName"] for g in aws.elb.describe_target_groups()["TargetGroups"]]
    assert len(load_balancers) == 1 and len(groups) == 1
    assert all(len(name) <= 32 for name in load_balancers + groups)
    # Named by the program, not by the provider: a replacement cannot take a name the old one still holds.
    for r in run.resources:
        if r.type in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
            assert r.inputs.get("name"), f"{r.name} is autonamed"


def test_an_autonamed_target_group_over_32_characters_is_refused_as_pulumi_aws_would():
    run = copy.deepcopy(first_up("staging"))
    group = run.of_type("aws:lb/targetGroup:TargetGroup")[0]
    del group.inputs["name"]
    group.name = "k8s-staging-api-controllers"
    with mock_aws(), pytest.raises(AwsRefused, match="plus 7 random chars is longer than maximum length 32"):
        AwsReplay().replay(run)


# --- changes to a running stack ---------------------------------------------------------------------------------
def test_every_resource_type_the_program_declares_has_a_replace_rule():
    known = {rule.type for rule in REPLACE_RULES}
    declared = {r.type for c in ("bastion-type", "workers-up") for run in (plan_case(c).before, plan_case(c).after)
                for r in run.resources if r.custom}
    assert declared <= known, f"no replace rule for {sorted(declared - known)}"


def test_a_second_up_with_nothing_changed_changes_nothing():
    same = simulate(plan_case("workers-up"), CASES_BY_ID["workers-up"].after)
    assert {c.kind for c in same.changes.values()} == {UNCHANGED}
    assert same.operations == []


def test_setting_an_ssh_public_key_would_rebuild_every_node_so_it_is_refused(monkeypatch):
    """A node's key pair is fixed at launch: a new key replaces every node at once, etcd's data with it. Played
    without the refusal, the simulator shows exactly that (delete-first, no collision)."""
    with pytest.raises(SettingsError, match="setting 'sshPublicKey' cannot be changed on a running cluster"):
        plan_case("ssh-key")
    from infra import guards
    monkeypatch.setattr(guards, "unsafe_changes", lambda settings, facts: [])
    plan = simulate(deployed(CASES_BY_ID["ssh-key"].before), CASES_BY_ID["ssh-key"].after)
    assert_safe(plan)
    instances = plan.of_kind(REPLACED, INSTANCE)
    assert len(instances) == 5 and all("keyName" in c.forcing and c.delete_first for c in instances)
    assert plan.replaced_nodes() == ["controller-0", "etcd-0", "worker-0", "worker-1", "worker-2"]


def test_workers_3_to_5_adds_two_and_touches_no_running_node():
    plan = plan_case("workers-up")
    assert_safe(plan)
    assert plan.created_nodes() == ["worker-3", "worker-4"] and plan.replaced_nodes() == []
    for worker in ("worker-0", "worker-1", "worker-2"):
        assert {c.kind for c in plan.steps(host=worker)} == {UNCHANGED}, worker
    # the new workers read their ranges; the others' readers do not run again
    assert {c.name for c in plan.changes.values() if c.step == "read-pod-cidr" and c.reruns} == \
        {"worker-3-read-pod-cidr", "worker-4-read-pod-cidr"}


def test_workers_5_to_2_removes_three_and_forgets_their_nodes():
    plan = plan_case("workers-down")
    assert_safe(plan)
    removed = sorted(c.name for c in plan.of_kind(DELETED, INSTANCE))
    assert removed == ["k8s-dev-worker-2", "k8s-dev-worker-3", "k8s-dev-worker-4"]
    assert plan.replaced_nodes() == []
    # their removal steps deleted their Nodes; their readers went with them, the others' did not run again
    assert {c.name: c.kind for c in plan.changes.values() if c.step == "read-pod-cidr"} == {
        **{f"worker-{i}-read-pod-cidr": UNCHANGED for i in (0, 1)},
        **{f"worker-{i}-read-pod-cidr": DELETED for i in (2, 3, 4)}}


def test_an_instance_type_change_replaces_one_batch_of_workers_each_drained_before_its_machine_goes():
    """Review r2 N7: EC2 applies a new type by stopping the instance, which the engine would do to every worker at
    once, pods and all. One rollout batch per update gets it, as a new machine drained first by its removal step."""
    plan = plan_case("instance-type")
    instances = assert_safe(plan)
    assert len(instances) == 5
    assert {n: k for n, k in kinds(plan, INSTANCE).items() if k != UNCHANGED} == {"k8s-dev-worker-0": REPLACED}
    assert plan.named("k8s-dev-worker-0", INSTANCE).after.inputs["instanceType"] == "t3.large"
    assert plan.named("k8s-dev-worker-1", INSTANCE).after.inputs["instanceType"] == "t3.medium"
    assert plan.replaced_nodes() == ["worker-0"]
    assert _position(plan, "delete", "controller-0-remove-worker-0") < _position(plan, "delete", "k8s-dev-worker-0")
    for other in ("worker-1", "worker-2"):
        assert {c.kind for c in plan.steps(host=other)} == {UNCHANGED}, other


def test_a_larger_root_volume_grows_in_place():
    plan = plan_case("root-volume-up")
    assert_safe(plan)
    assert [c.changed for c in plan.of_kind(UPDATED)] == [["rootBlockDevice.volumeSize"]] * 3
    assert plan.steps() and all(c.kind == UNCHANGED for c in plan.steps())


def test_a_version_bump_reinstalls_and_restarts_only_what_it_pins():
    plan = plan_case("version")
    assert_safe(plan)
    assert plan.replaced_nodes() == []
    rerun = {c.step for c in plan.steps() if c.kind == REPLACED}
    assert {"install-kubernetes-server", "install-kubernetes-node", "start-kube-apiserver", "start-kubelet",
            "start-kube-proxy"} <= rerun
    assert not rerun & {"install-containerd", "start-containerd", "start-haproxy", "start-etcd", "install-etcd",
                        "prepare-os", "worker-files", "ready"}


def test_an_admin_network_added_adds_rules_and_nothing_else():
    plan = plan_case("admin-cidr")
    assert_safe(plan)
    assert {c.type for c in plan.changes.values() if c.kind != UNCHANGED} == {
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"}


def test_zones_1_to_3_moves_nodes_to_new_subnets_without_a_collision():
    plan = plan_case("zones")
    instances = assert_safe(plan)
    assert plan.replaced_nodes() == ["worker-1", "worker-2"]
    assert len({i["SubnetId"] for i in instances}) == 3 and len(instances) == 5
    assert plan.named("k8s-dev-api-nlb").kind == UPDATED     # subnets added to a network load balancer in place
    assert len(plan.of_kind(CREATED, "aws:ec2/subnetCidrReservation:SubnetCidrReservation")) == 2


def test_a_new_bastion_address_reaches_every_step_and_restarts_nothing():
    """In the private topology every step dials through the bastion: a bastion stopped and started for a new
    instance type has a new public address, so every step is updated, and none restarts its service."""
    plan = plan_case("bastion-type")
    assert_safe(plan)
    assert plan.replaced_nodes() == []
    assert {c.kind for c in plan.steps()} == {UPDATED}
    for c in plan.steps():
        assert c.changed == ["connection.proxy.host"], (c.name, c.changed)
        if c.step.startswith("start-"):
            assert "inputs unchanged since it was started, not restarting" in c.after.inputs["stdin"]


def test_a_worker_replaced_at_the_same_address_is_installed_again():
    plan = plan_case("replace-worker")
    instances = assert_safe(plan)
    worker = plan.named("k8s-dev-worker-1", INSTANCE)
    # five machines run afterwards, the new worker-1 at the address the old one had
    assert len(instances) == 5
    assert worker.before.inputs["privateIp"] in {i["PrivateIpAddress"] for i in instances}
    assert worker.kind == REPLACED and worker.delete_first
    assert plan.replaced_nodes() == ["worker-1"]
    # the other workers are left alone
    for other in ("worker-0", "worker-2"):
        assert {c.kind for c in plan.steps(host=other)} == {UNCHANGED}, other


def test_the_replay_catches_a_create_first_replacement_at_a_fixed_address():
    """The simulator can fail: the same replacement played create-first collides with the old instance."""
    case = CASES_BY_ID["replace-worker"]
    create_first = simulate(deployed(case.before), case.after, force_replace=case.force_replace, target=True,
                            deletes_first=lambda r: False)
    assert create_first.named("k8s-dev-worker-1").kind == REPLACED
    with pytest.raises(Exception, match="IP already in use"):
        replay(create_first)


def _position(plan: ChangePlan, action: str, name: str) -> int:
    return next(i for i, op in enumerate(plan.operations) if op.action == action and op.change.name == name)


def test_raising_the_etcd_count_joins_new_members_and_restarts_none_of_the_running():
    plan = plan_case("etcd-up")
    assert_safe(plan)
    assert plan.created_nodes() == ["etcd-3", "etcd-4"] and plan.replaced_nodes() == []
    for i in range(3):
        # run again for the new peer list (the node's fingerprint is unchanged: no restart)
        start = plan.named(f"etcd-{i}-start-etcd")
        assert start.kind == UPDATED and start.changed == ["stdin"], (start.name, start.kind, start.changed)
    for i in (3, 4):
        assert plan.named(f"etcd-{i}-start-etcd").kind == CREATED
        assert "new_machine_of_running_cluster=yes" in plan.named(f"etcd-{i}-start-etcd").after.inputs["stdin"]
        assert plan.named(f"etcd-0-membership-etcd-{i}").kind == CREATED
    # the README counts the two new members' first starts, and nothing else of etcd
    assert summarize(plan)["restarted"].startswith("2 etcd,")


def test_lowering_the_etcd_count_removes_each_member_before_its_machine_goes_highest_first():
    plan = plan_case("etcd-down")
    assert_safe(plan)
    assert {_node_name(c.resource) for c in plan.of_kind(DELETED, INSTANCE)} == {"etcd-3", "etcd-4"}
    removals = {i: _position(plan, "delete", f"etcd-0-membership-etcd-{i}") for i in (3, 4)}
    for i, removal in removals.items():
        assert removal < _position(plan, "delete", f"k8s-dev-etcd-{i}"), f"etcd-{i} goes before its removal"
    assert removals[4] < removals[3]
    assert all(plan.named(f"etcd-{i}-start-etcd").kind == UPDATED for i in range(3))


def test_a_replaced_etcd_member_runs_every_step_again_and_its_membership_step_stays():
    plan = plan_case("replace-etcd")
    assert_safe(plan)
    assert plan.replaced_nodes() == ["etcd-1"]
    # its start step finds no data and a running cluster listing its address as started: it rejoins
    assert "cluster_view" in plan.named("etcd-1-start-etcd").after.inputs["stdin"]
    assert plan.named("etcd-0-membership-etcd-1").kind == UNCHANGED
    assert {plan.named(f"etcd-{i}-start-etcd").kind for i in (0, 2)} == {UNCHANGED}


@pytest.mark.parametrize("case_id, setting", [("architecture", "architecture"), ("ssh-key", "sshPublicKey"),
                                               ("root-volume-down", "workers.rootVolumeGb"),
                                               # etcd members cannot move: every member would start empty
                                               ("topology", "zones', 'topology' and 'vpcCidr"),
                                               ("zones-moving-etcd", "zones', 'topology' and 'vpcCidr"),
                                               # more members than a majority of 7 at once: quorum lost part way
                                               ("etcd-too-many", "etcd.count")])
def test_a_change_that_cannot_be_applied_is_refused_naming_the_setting(case_id, setting):
    with pytest.raises(SettingsError, match=f"settings? '{setting}'"):
        plan_case(case_id)


# --- replacing, losing, retrying: the engine's own rules -----------------------------------------------------------
def acted_on(plan: ChangePlan) -> list[tuple[str, str, str]]:
    """(step, node, machine) of every delete command that ran."""
    return [(op.name, node, machine) for op in plan.delete_commands(RUNS) for node, machine in op.command.acts_on]


def test_a_replaced_worker_is_drained_on_its_old_machine_before_that_machine_goes():
    plan = plan_case("replace-worker")
    assert acted_on(plan) == [("controller-0-remove-worker-1", "worker-1", "old machine")]
    assert plan.position("controller-0-remove-worker-1", "delete") < plan.position("k8s-dev-worker-1", "delete")
    # its own steps go with it: their deletes dial nothing
    assert {op.command.outcome for op in plan.operations if op.action == "delete" and op.change.host == "worker-1"} \
        == {NO_COMMAND}


def test_replacing_controller_0_removes_no_worker_and_keeps_the_removal_steps():
    """The removal steps run on controller-0 but go with the VPC only (review D9, D12): its replacement neither
    cascades into them nor runs their delete commands."""
    plan = plan_case("replace-controller")
    assert acted_on(plan) == [] and plan.delete_commands() == []
    assert {plan.named(f"controller-0-remove-worker-{i}").kind for i in range(3)} == {UNCHANGED}
    assert plan.replaced_nodes() == ["controller-0"] and plan.failure is None


def test_replacing_etcd_0_removes_no_member_and_it_rejoins():
    plan = plan_case("replace-etcd-0")
    assert acted_on(plan) == [] and plan.delete_commands() == []
    assert {plan.named(f"etcd-0-membership-etcd-{i}").kind for i in (1, 2)} == {UNCHANGED}
    assert plan.named("etcd-0-start-etcd").kind == REPLACED
    assert "cluster_view" in plan.named("etcd-0-start-etcd").after.inputs["stdin"]


def test_replacing_the_only_etcd_member_starts_an_empty_cluster_and_the_docs_say_so():
    """D20: nothing to rejoin; the recovery guide says not to, and how to restore instead."""
    plan = plan_case("replace-only-etcd")
    assert plan.replaced_nodes() == ["etcd-0"] and plan.named("etcd-0-start-etcd").kind == REPLACED
    recovery = RECOVERY.read_text()
    assert "etcd.count = 1" in recovery and "--replace" in recovery and "restore" in recovery


def test_a_worker_lost_and_refreshed_is_created_and_installed_again():
    plan = plan_case("worker-lost")
    assert plan.commands == ("pulumi refresh", "pulumi up")
    assert plan.created_nodes() == ["worker-1"] and plan.failure is None
    assert {c.kind for c in plan.steps(host="worker-1")} <= {REPLACED, CREATED}
    assert plan.named("k8s-dev-pod-network-table0-worker-1").kind == UPDATED    # the new interface, in place
    assert len(replay(plan)) == 5


def test_destroy_dials_no_machine():
    plan = plan_case("destroy")
    assert plan.failure is None and acted_on(plan) == []
    assert {op.command.outcome for op in plan.delete_commands()} == {SKIPPED}
    assert {c.kind for c in plan.changes.values()} == {DELETED}


def test_an_interrupted_first_up_leaves_what_the_retry_collides_with():
    """D8: the pending creates stay pending and are created again; AWS refuses the names and addresses taken."""
    plan = plan_case("interrupted")
    assert plan.warnings and "interrupted while creating" in plan.warnings[0]
    assert len(plan.of_kind(CREATED, INSTANCE)) == 5
    assert aws_refusal(plan) is not None
    recovery = RECOVERY.read_text()
    assert "pulumi refresh --import-pending-creates" in recovery and STACK_TAG in recovery


def test_importing_the_pending_creates_lets_the_retry_through():
    plan = plan_case("interrupted-imported")
    assert plan.of_kind(CREATED, INSTANCE) == [] and not plan.warnings
    assert aws_refusal(plan) is None


def test_a_stack_rename_with_the_default_cluster_name_builds_a_new_cluster_and_the_docs_say_so():
    """D5 for a rename: nothing in AWS names the renamed stack yet, so nothing refuses it; the docs say to pin
    clusterName first."""
    plan = plan_case("stack-rename")
    assert len(plan.of_kind(CREATED, INSTANCE)) == 5 and len(plan.of_kind(DELETED, INSTANCE)) == 5
    assert plan.position("k8s-staging-etcd-0", "create") < plan.position("k8s-dev-etcd-0", "delete")
    assert "pulumi config set clusterName" in RECOVERY.read_text()


@pytest.mark.parametrize("case_id, says", [
    ("cluster-name", "setting 'clusterName' = 'renamed' cannot be applied: this stack's nodes run as cluster 'k8s-dev'"),
    ("second-stack", "setting 'clusterName' = 'k8s-dev' cannot be used: nodes of cluster 'k8s-dev' in this account "
                     "and region belong to stack 'organization/k8s-from-scratch/dev'"),
])
def test_a_cluster_name_change_or_a_name_another_stack_holds_is_refused(case_id, says):
    with pytest.raises(SettingsError, match=re.escape(says)):
        plan_case(case_id)


@pytest.mark.parametrize("case_id, says", [
    # N7: a new worker type reaches one rollout batch per update, by replacement, drained first
    ("instance-type", "`remove-worker-N` on controller-0 acts on the node it names: old machine"),
    # D2: only the replaced worker's own route (and its bootstrapped tag) goes before it is back
    ("replace-worker", "deleted before the replaced node goes and created again only after it is back: Route, Tag"),
    ("workers-down", "3 × `remove-worker-N` on controller-0 acts on the node it names: old machine"),
    # D1: the old removal step's delete command finds the Node on the new machine and leaves it alone
    ("worker-lost", "`remove-worker-N` on controller-0 acts on the node it names: none: the instance it names is not "
                    "this machine"),
    ("stack-rename", "etcd starts empty on new machines with no member to join"),
])
def test_the_readme_names_what_the_preview_does_not_show(case_id, says):
    assert says in summarize(plan_case(case_id))["hidden"]


# --- the README -------------------------------------------------------------------------------------------------
def test_readme_changing_a_running_cluster_is_the_simulators_table():
    section = README_SECTION + README.read_text().split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    assert section == render_readme_section(), "rewrite it: python -m simulator.change_sim --readme"


def test_the_section_can_be_written_into_another_file(tmp_path):
    target = tmp_path / "operations.md"
    target.write_text("# Operations\n\n## Changing a running cluster\n\nold\n\n## Next\n\nkept\n")
    write_readme_section(str(target))
    text = target.read_text()
    assert text.startswith("# Operations\n\n" + render_readme_section()) and text.endswith("\n## Next\n\nkept\n")
