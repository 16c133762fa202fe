"""The rollout scripts (cluster/render/rollout.py) run for real by bash against a stand-in kubectl that keeps one Node
object in a JSON file and logs every call: what they cordon, drain, uncordon, annotate and delete is observed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.render import rollout
from cluster.render.control_plane import DEPLOYER_KUBECTL

NODE = "worker-1"
INPUTS = "f00dfeed"
MACHINE = "i-0123456789abcdef0"

FAKE_KUBECTL = r'''
import json, sys
state_path, log_path = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
if args[:1] == ["--kubeconfig"]:
    args = args[2:]
state = json.load(open(state_path))
with open(log_path, "a") as log:
    log.write(" ".join(args) + "\n")
node = state.get("node")

def missing():
    print('Error from server (NotFound): nodes "%s" not found' % state["name"], file=sys.stderr)
    sys.exit(1)

def save():
    json.dump(state, open(state_path, "w"))

verb = args[0]
if verb == "get":
    if node is None:
        missing()
    output = args[args.index("-o") + 1]
    if output == "name":
        print("node/" + state["name"])
    elif output == "wide":
        print(state["name"], "Ready" if node["ready"] else "NotReady")
    else:
        path = output.removeprefix("jsonpath=")
        if "status" in path and path.endswith(".status}"):
            print(node["ready"], end="")
        elif "lastHeartbeatTime" in path:
            beats = node["heartbeats"]
            print(beats.pop(0) if len(beats) > 1 else beats[0], end="")
            save()
        elif path == "{.spec.unschedulable}":
            print("true" if node["unschedulable"] else "", end="")
        elif path.startswith("{.metadata.annotations."):
            key = path[len("{.metadata.annotations."):-1].replace("\\.", ".")
            print(node["annotations"].get(key, ""), end="")
        else:
            sys.exit("unknown jsonpath " + path)
elif verb == "annotate":
    if node is None:
        missing()
    for item in args[4:]:
        if item.endswith("-"):
            node["annotations"].pop(item[:-1], None)
        else:
            key, value = item.split("=", 1)
            node["annotations"][key] = value
    save()
elif verb in ("cordon", "uncordon"):
    node["unschedulable"] = verb == "cordon"
    save()
elif verb == "drain":
    if state.get("drain_fails"):
        print("error when evicting pods/web-0: Cannot evict pod as it would violate the pod's disruption budget.",
              file=sys.stderr)
        sys.exit(1)
    print("node/%s drained" % state["name"])
elif verb == "delete":
    state["node"] = None
    save()
else:
    sys.exit("unknown verb " + verb)
'''


class Cluster:
    """One Node as the API holds it, and the kubectl calls the script made."""

    def __init__(self, tmp_path: Path, *, registered=True, ready="True", unschedulable=False, annotations=None,
                 heartbeats=("2026-11-28T10:00:00Z",), drain_fails=False):
        self.tmp = tmp_path
        self.state = tmp_path / "state.json"
        self.log = tmp_path / "calls.log"
        node = {"ready": ready, "unschedulable": unschedulable, "annotations": dict(annotations or {}),
                "heartbeats": list(heartbeats)}
        self.state.write_text(json.dumps({"name": NODE, "node": node if registered else None,
                                          "drain_fails": drain_fails}))
        fake = tmp_path / "kubectl.py"
        fake.write_text(FAKE_KUBECTL)
        self.kubectl = tmp_path / "kubectl"
        self.kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} {self.state} {self.log} "$@"\n')
        self.kubectl.chmod(0o755)

    def run(self, script: str) -> subprocess.CompletedProcess:
        # The scripts call the controller's kubectl by its absolute path: point that at the stand-in.
        script = script.replace(DEPLOYER_KUBECTL[0], str(self.kubectl))
        path = self.tmp / "script.sh"
        path.write_text(script)
        return subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=60)

    @property
    def node(self) -> dict | None:
        return json.loads(self.state.read_text())["node"]

    @property
    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def verbs(self) -> list[str]:
        return [c.split()[0] for c in self.calls]


def test_a_node_whose_runtime_inputs_changed_is_cordoned_and_drained_with_a_bound(tmp_path):
    cluster = Cluster(tmp_path, annotations={rollout.RUNTIME_INPUTS: "old"})
    result = cluster.run(rollout.drain_script(NODE, INPUTS, timeout_seconds=120))
    assert result.returncode == 0, result.stderr
    drains = [c for c in cluster.calls if c.startswith("drain ")]
    assert drains == [f"drain {NODE} --ignore-daemonsets --delete-emptydir-data --timeout=120s"]
    node = cluster.node
    assert node["unschedulable"]
    assert node["annotations"][rollout.CORDONED_FOR_RESTART] == "true"
    assert node["annotations"][rollout.HEARTBEAT_AT_DRAIN] == "2026-11-28T10:00:00Z"
    assert cluster.verbs().index("cordon") < cluster.verbs().index("drain")


@pytest.mark.parametrize("case, cluster_args", [
    ("its runtime already runs these inputs", {"annotations": {rollout.RUNTIME_INPUTS: INPUTS}}),
    ("it is not registered (a new machine)", {"registered": False}),
])
def test_no_drain_when(case, cluster_args, tmp_path):
    cluster = Cluster(tmp_path, **cluster_args)
    result = cluster.run(rollout.drain_script(NODE, INPUTS))
    assert result.returncode == 0, result.stderr
    assert "nothing to drain" in result.stdout
    assert not {"cordon", "drain", "annotate"} & set(cluster.verbs()), case


def test_a_node_cordoned_by_hand_is_drained_but_not_marked_for_uncordoning(tmp_path):
    cluster = Cluster(tmp_path, unschedulable=True)
    assert cluster.run(rollout.drain_script(NODE, INPUTS)).returncode == 0
    assert rollout.CORDONED_FOR_RESTART not in cluster.node["annotations"]
    # and after the restart it stays cordoned
    cluster = Cluster(tmp_path, unschedulable=True, annotations={rollout.HEARTBEAT_AT_DRAIN: "t0"},
                      heartbeats=("t1",))
    assert cluster.run(rollout.uncordon_script(NODE, INPUTS, MACHINE, poll_seconds=0)).returncode == 0
    assert cluster.node["unschedulable"]
    assert cluster.node["annotations"] == {rollout.RUNTIME_INPUTS: INPUTS, rollout.INSTANCE_ID: MACHINE}


def test_a_drain_a_disruption_budget_blocks_fails_naming_the_node_and_leaves_it_cordoned(tmp_path):
    cluster = Cluster(tmp_path, drain_fails=True)
    result = cluster.run(rollout.drain_script(NODE, INPUTS, timeout_seconds=60))
    assert result.returncode == 1
    assert f"{NODE} could not be drained within 60s" in result.stderr
    assert "disruption budget" in result.stderr
    assert cluster.node["unschedulable"]


def test_a_node_not_ready_is_cordoned_without_waiting_for_evictions_it_cannot_complete(tmp_path):
    cluster = Cluster(tmp_path, ready="False")
    result = cluster.run(rollout.drain_script(NODE, INPUTS))
    assert result.returncode == 0, result.stderr
    assert "drain" not in cluster.verbs() and cluster.node["unschedulable"]


def test_uncordon_waits_for_a_heartbeat_after_the_drain_then_returns_the_node_to_service(tmp_path):
    # the API shows the stale status twice, then the restarted kubelet's report
    cluster = Cluster(tmp_path, unschedulable=True,
                      annotations={rollout.CORDONED_FOR_RESTART: "true", rollout.HEARTBEAT_AT_DRAIN: "t0",
                                   rollout.RUNTIME_INPUTS: "old"},
                      heartbeats=("t0", "t0", "t1"))
    result = cluster.run(rollout.uncordon_script(NODE, INPUTS, MACHINE, poll_seconds=0))
    assert result.returncode == 0, result.stderr
    assert not cluster.node["unschedulable"]
    # what it runs now, and on which machine (the removal steps read it)
    assert cluster.node["annotations"] == {rollout.RUNTIME_INPUTS: INPUTS, rollout.INSTANCE_ID: MACHINE}
    assert cluster.node["heartbeats"] == ["t1"]         # it read past the stale ones


def test_uncordon_gives_up_within_its_bound_and_leaves_the_node_cordoned(tmp_path):
    cluster = Cluster(tmp_path, unschedulable=True,
                      annotations={rollout.CORDONED_FOR_RESTART: "true", rollout.HEARTBEAT_AT_DRAIN: "t0"},
                      heartbeats=("t0",))
    result = cluster.run(rollout.uncordon_script(NODE, INPUTS, MACHINE, timeout_seconds=1, poll_seconds=1))
    assert result.returncode == 1
    assert f"{NODE} is not Ready again after 1s" in result.stderr
    assert cluster.node["unschedulable"]


def test_removal_drains_then_deletes_the_node(tmp_path):
    cluster = Cluster(tmp_path)
    result = cluster.run(rollout.remove_node_script(NODE, MACHINE, timeout_seconds=90))
    assert result.returncode == 0, result.stderr
    assert [v for v in cluster.verbs() if v in ("cordon", "drain", "delete")] == ["cordon", "drain", "delete"]
    assert "--timeout=90s" in next(c for c in cluster.calls if c.startswith("drain "))
    assert cluster.node is None


@pytest.mark.parametrize("recorded", [MACHINE, None])
def test_removal_drains_a_node_that_runs_on_its_machine_or_on_one_never_recorded(recorded, tmp_path):
    cluster = Cluster(tmp_path, annotations={rollout.INSTANCE_ID: recorded} if recorded else {})
    assert cluster.run(rollout.remove_node_script(NODE, MACHINE)).returncode == 0
    assert "drain" in cluster.verbs() and cluster.node is None


def test_removal_made_for_an_earlier_machine_leaves_the_node_of_a_newer_one_alone(tmp_path):
    """Review D1: a worker lost, refreshed and created again; the old removal step's delete comes at the end of
    the update, after the new machine's uncordon step recorded it."""
    cluster = Cluster(tmp_path, annotations={rollout.INSTANCE_ID: "i-0newmachine0000"})
    result = cluster.run(rollout.remove_node_script(NODE, MACHINE))
    assert result.returncode == 0, result.stderr
    assert "runs on machine i-0newmachine0000 now, not on i-0123456789abcdef0" in result.stdout
    assert not {"cordon", "drain", "delete"} & set(cluster.verbs())
    assert cluster.node is not None and not cluster.node["unschedulable"]


def test_removal_of_an_unregistered_node_does_nothing_and_a_blocked_drain_keeps_the_machine(tmp_path):
    cluster = Cluster(tmp_path, registered=False)
    assert cluster.run(rollout.remove_node_script(NODE, MACHINE)).returncode == 0
    blocked = Cluster(_fresh(tmp_path), drain_fails=True)
    result = blocked.run(rollout.remove_node_script(NODE, MACHINE))
    assert result.returncode == 1 and "the machine is kept until then" in result.stderr
    assert blocked.node is not None            # the Node stays: the engine does not terminate the instance


def _fresh(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    other.mkdir()
    return other
