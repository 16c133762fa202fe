"""Reading node podCIDRs: parsing, bounded waiting, and the reader script run for real with a stand-in kubectl."""

import json
import subprocess

import pytest

from cluster.render import podcidrs


def node(name, ip, cidr=None):
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]}}


def test_parse_nodes_takes_internal_ip_and_pod_cidr():
    parsed = podcidrs.parse_nodes({"items": [node("worker-0", "10.43.0.30", "10.200.3.0/24"),
                                             node("worker-1", "10.43.0.31")]})
    assert parsed == {"worker-0": podcidrs.NodePodRange("worker-0", "10.43.0.30", "10.200.3.0/24"),
                      "worker-1": None}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_returns_once_every_expected_node_has_a_range_in_expected_order():
    answers = iter([
        RuntimeError("connection refused"),
        {"items": [node("worker-1", "10.43.0.31", "10.200.0.0/24")]},
        {"items": [node("worker-1", "10.43.0.31", "10.200.0.0/24"), node("worker-0", "10.43.0.30", "10.200.1.0/24"),
                   node("controller-x", "10.43.0.99", "10.200.9.0/24")]},
    ])

    def fetch():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    clock = FakeClock()
    got = podcidrs.wait_for_pod_cidrs(["worker-0", "worker-1"], fetch, timeout=60, clock=clock, sleep=clock.sleep)
    assert [(r.name, r.pod_cidr) for r in got] == [("worker-0", "10.200.1.0/24"), ("worker-1", "10.200.0.0/24")]
    assert clock.now == 10


def test_wait_gives_up_at_the_bound_naming_the_nodes_still_without_a_range():
    clock = FakeClock()
    with pytest.raises(podcidrs.PodCidrTimeout, match=r"after 30s these nodes still have no podCIDR: worker-1, worker-2"):
        podcidrs.wait_for_pod_cidrs(["worker-0", "worker-1", "worker-2"],
                                    lambda: {"items": [node("worker-0", "10.43.0.30", "10.200.0.0/24"),
                                                       node("worker-1", "10.43.0.31")]},
                                    timeout=30, clock=clock, sleep=clock.sleep)
    assert clock.now == 30


def test_reader_output_round_trips():
    out = "worker-0 10.43.0.30 10.200.0.0/24\n" + podcidrs.RESULT_PREFIX + json.dumps(
        [{"name": "worker-0", "ip": "10.43.0.30", "pod_cidr": "10.200.0.0/24"}]) + "\n"
    assert podcidrs.parse_reader_output(out) == [podcidrs.NodePodRange("worker-0", "10.43.0.30", "10.200.0.0/24")]
    with pytest.raises(ValueError, match="no POD_CIDRS line"):
        podcidrs.parse_reader_output("nothing here")


def fake_kubectl(tmp_path, items):
    """A stand-in kubectl: answers `get nodes -o json` with these nodes and records deletions."""
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps({"items": items}))
    script = tmp_path / "kubectl"
    script.write_text(f"""#!/bin/bash
if [ "$1" = get ]; then cat {nodes}; elif [ "$1" = delete ]; then echo "$3" >> {tmp_path}/deleted; fi
""")
    script.chmod(0o755)
    return [str(script)]


def test_reader_script_runs_the_module_and_leaves_removed_workers_to_their_removal_steps(tmp_path):
    kubectl = fake_kubectl(tmp_path, [node("worker-0", "10.43.0.30", "10.200.1.0/24"),
                                      node("worker-1", "10.43.0.31", "10.200.0.0/24"),
                                      node("worker-2", "10.43.0.32", "10.200.2.0/24")])
    script = podcidrs.reader_script(["worker-0", "worker-1"], 5, kubectl)
    result = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [r.pod_cidr for r in podcidrs.parse_reader_output(result.stdout)] == ["10.200.1.0/24", "10.200.0.0/24"]
    # worker-2's Node stays: its removal step drains it and deletes it (deleting it here would orphan its pods).
    assert not (tmp_path / "deleted").exists()


def test_reader_script_fails_naming_missing_nodes(tmp_path):
    kubectl = fake_kubectl(tmp_path, [node("worker-0", "10.43.0.30", "10.200.1.0/24"), node("worker-1", "10.43.0.31")])
    result = subprocess.run(["bash", "-s"], input=podcidrs.reader_script(["worker-0", "worker-1"], 1, kubectl),
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "these nodes still have no podCIDR: worker-1" in result.stderr


def test_a_single_node_answer_parses_with_its_registration_time():
    one = {**node("worker-1", "10.43.0.31", "10.200.7.0/24"), "kind": "Node"}
    one["metadata"]["creationTimestamp"] = "2026-12-01T10:00:05Z"
    assert podcidrs.parse_nodes(one) == {
        "worker-1": podcidrs.NodePodRange("worker-1", "10.43.0.31", "10.200.7.0/24", "2026-12-01T10:00:05Z")}


@pytest.mark.parametrize("read_at, live_at, live_cidr, wins", [
    # the node was deleted and registered again since its reader ran: the live read is newer (review N2)
    ("2026-12-01T09:00:00Z", "2026-12-01T10:00:05Z", "10.200.7.0/24", "live"),
    # a new machine registered during this update, after the live read saw the old Node
    ("2026-12-01T11:00:00Z", "2026-12-01T09:00:00Z", "10.200.1.0/24", "read"),
    # the same registration
    ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z", "10.200.1.0/24", "read"),
    # the API did not answer
    ("2026-12-01T09:00:00Z", None, None, "read"),
])
def test_the_newer_registration_of_a_node_gives_its_range(read_at, live_at, live_cidr, wins):
    read = podcidrs.NodePodRange("worker-1", "10.43.0.31", "10.200.1.0/24", read_at)
    live = podcidrs.NodePodRange("worker-1", "10.43.0.31", live_cidr, live_at) if live_at else None
    assert podcidrs.newest(read, live) == {"live": live, "read": read}[wins]


def test_the_reader_asks_for_its_own_node_only(tmp_path):
    """A worker reads its Node with its kubelet's identity, which may read that Node (the node authorizer)."""
    calls = tmp_path / "calls"
    kubectl = tmp_path / "kubectl"
    one = {**node("worker-1", "10.43.0.31", "10.200.7.0/24"), "kind": "Node"}
    kubectl.write_text(f"#!/bin/bash\necho \"$*\" >> {calls}\ncat <<'EOF'\n{json.dumps(one)}\nEOF\n")
    kubectl.chmod(0o755)
    result = subprocess.run(["bash", "-s"], input=podcidrs.reader_script(["worker-1"], 5, [str(kubectl)]),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().split() == ["get", "nodes", "worker-1", "-o", "json"]
    assert [r.pod_cidr for r in podcidrs.parse_reader_output(result.stdout)] == ["10.200.7.0/24"]
