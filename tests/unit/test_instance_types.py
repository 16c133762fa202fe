"""Instance types: their CPUs and memory size the kubelet's reservations, and a new type reaches a running role a
few nodes per update (review r2 N7 and section 3 item 4)."""

from __future__ import annotations

import json
import re

import pytest

from cluster.render.workers.kubelet import node_allocation
from infra.aws_facts import staged_instance_types
from infra.instance_types import Capacity, capacity
from infra.settings import SettingsError, parse_settings
from simulator.program import ClusterMocks, run_program, stack_config

INSTANCE = "aws:ec2/instance:Instance"


@pytest.mark.parametrize("instance_type, vcpus, gib", [
    ("t3.medium", 2, 4), ("t3a.small", 2, 2), ("t2.micro", 1, 1), ("t4g.xlarge", 4, 16), ("m5.large", 2, 8),
    ("c6i.4xlarge", 16, 32), ("r7g.medium", 1, 8), ("m7i.48xlarge", 192, 768), ("c5.9xlarge", 36, 72)])
def test_capacity_of_known_types(instance_type, vcpus, gib):
    assert capacity(instance_type) == Capacity(vcpus, gib * 1024)


def test_an_unknown_worker_type_is_refused_naming_the_setting():
    with pytest.raises(SettingsError, match=r"setting 'workers.instanceType' = 'x2idn.metal' is invalid: .*known "
                                            r"families: t2, t3"):
        parse_settings({**stack_config(1, 1, 1), "workers": {"count": 1, "instanceType": "x2idn.metal"}})


def test_reservations_follow_the_published_tiers():
    """GKE's sizing: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8...; 6% of the first core, 1% of
    the second, 0.5% of the next two, 0.25% above."""
    small, large = node_allocation(capacity("t3.medium")), node_allocation(capacity("m5.4xlarge"))
    assert small["kubeReserved"] == {"cpu": "70m", "memory": "1024Mi"}
    assert large["kubeReserved"] == {"cpu": "110m", "memory": f"{round((1 + 0.8 + 0.8 + 48 * 0.06) * 1024)}Mi"}
    assert small["evictionHard"]["memory.available"] == "100Mi"
    assert large["evictionHard"]["memory.available"] == f"{round(65536 * 0.02)}Mi"
    assert large["evictionSoft"]["memory.available"] == f"{2 * round(65536 * 0.02)}Mi"
    assert set(small["evictionHard"]) == {"memory.available", "nodefs.available", "nodefs.inodesFree",
                                          "imagefs.available", "imagefs.inodesFree"}


def test_each_workers_kubelet_is_sized_for_its_own_instance_type():
    run = run_program({**stack_config(1, 1, 1), "workers": {"count": 1, "instanceType": "m5.xlarge"}})
    script = run.named("worker-0-worker-files").inputs["stdin"]
    config = _file(script, "/var/lib/kubelet/config.yaml")
    assert config["kubeReserved"] == node_allocation(capacity("m5.xlarge"))["kubeReserved"]
    assert config["systemReserved"] == {"cpu": "100m", "memory": "100Mi"}


def _file(script: str, path: str) -> dict:
    import base64
    body = re.search(rf"mktemp '?{re.escape(path)}\.XXXXXX'?\)\nbase64 -d > \"\$tmp\" <<'K8S_FROM_SCRATCH_EOF'\n"
                     r"([A-Za-z0-9+/=\n]*?)K8S_FROM_SCRATCH_EOF", script)[1]
    return json.loads(base64.b64decode(body.replace("\n", "")))


# --- N7: a new instance type, a few nodes per update ----------------------------------------------------------------
def test_staging_gives_the_new_type_to_so_many_running_nodes_and_to_every_new_one():
    running = {"etcd-0": "t3.small", "etcd-1": "t3.small", "etcd-2": "t3.small"}
    planned = ["etcd-0", "etcd-1", "etcd-2", "etcd-3"]
    assert staged_instance_types("t3.large", planned, running, 1) == {
        "etcd-0": "t3.large", "etcd-1": "t3.small", "etcd-2": "t3.small", "etcd-3": "t3.large"}
    # the next update finds etcd-0 changed and takes etcd-1
    running["etcd-0"] = "t3.large"
    assert staged_instance_types("t3.large", planned[:3], running, 1)["etcd-1"] == "t3.large"
    assert staged_instance_types("t3.large", planned[:3], running, 2) == dict.fromkeys(planned[:3], "t3.large")


def test_a_new_type_for_every_role_stops_one_etcd_member_one_controller_and_one_batch_of_workers():
    before = stack_config(3, 3, 4)
    after = {**before, "etcd": {"count": 3, "instanceType": "t3.medium"},
             "controllers": {"count": 3, "instanceType": "t3.large"},
             "workers": {"count": 4, "instanceType": "t3.large", "rolloutBatchSize": 2}}
    keys: dict = {}
    first = run_program(before, mocks=ClusterMocks(key_material=keys))
    types = lambda run: {r.name.removeprefix("k8s-dev-"): r.inputs["instanceType"] for r in run.of_type(INSTANCE)}
    second = run_program(after, mocks=ClusterMocks(key_material=keys, existing=first))
    assert types(second) == {
        "etcd-0": "t3.medium", "etcd-1": "t3.small", "etcd-2": "t3.small",
        "controller-0": "t3.large", "controller-1": "t3.medium", "controller-2": "t3.medium",
        "worker-0": "t3.large", "worker-1": "t3.large", "worker-2": "t3.medium", "worker-3": "t3.medium"}
    # workers change by replacement (drained first by their removal step); etcd and controllers in place
    workers = [r for r in second.of_type(INSTANCE) if "worker" in r.name]
    assert all(r.replace_on_changes == ["instanceType"] for r in workers)
    assert not any(r.replace_on_changes for r in second.of_type(INSTANCE) if "worker" not in r.name)
    third = run_program(after, mocks=ClusterMocks(key_material=keys, existing=second))
    assert types(third)["etcd-1"] == "t3.medium" and types(third)["controller-1"] == "t3.large"
    assert types(third)["worker-3"] == "t3.large" and types(third)["etcd-2"] == "t3.small"
