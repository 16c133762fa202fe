"""Day 2 on the lab's whole cluster, with the program's own steps: a controller down, the API servers' certificate
renewed (a rolling restart while a client polls the API through a worker's haproxy), and the worker count changed
(new workers join; leaving workers are drained by their removal steps before their machines go).

Runs on the lab the other lab tests share (tests/integration/conftest.py), after them (the file name sorts last):
it changes the lab's shape.
"""

from __future__ import annotations

import json
import time

import pytest

from cluster.render.addons import SMOKE_TEST_NAMESPACE
from cluster.render.control_plane import SHUTDOWN_DELAY_SECONDS
from cluster.smoke import NODE_PORT
from cluster.versions import IMAGES
from locallab.session import replay_program

pytestmark = pytest.mark.integration

WELCOME = "Welcome to nginx!"
NAMESPACE = "lab-day2"
KUBELET_KUBECTL = "/usr/local/bin/kubectl --kubeconfig /var/lib/kubelet/kubeconfig"
APISERVER_CERT = "tls:index/locallySignedCert:LocallySignedCert"


def kubectl(lab, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = lab.kubectl(*args, stdin=stdin)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(2)


def workers(lab) -> list[str]:
    return sorted((n for n in lab.nodes if n.startswith("worker-")), key=lambda n: int(n.rsplit("-", 1)[1]))


def node_port_answers(lab, worker: str) -> bool:
    result = lab.machines.lab.exec("deployer", "curl", "-fsS", "--max-time", "10",
                                   f"http://{lab.nodes[worker]}:{NODE_PORT}/", check=False)
    return result.returncode == 0 and WELCOME in result.stdout


def ready_nodes(lab) -> set[str]:
    nodes = json.loads(kubectl(lab, "get", "nodes", "-o", "json"))["items"]
    return {n["metadata"]["name"] for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}


def test_with_a_controller_down_the_api_through_every_workers_haproxy_and_the_workloads_keep_serving(lab):
    controller = "controller-0"
    # Its API server killed first: a graceful power-off would wait out the 30 s shutdown delay, which proves nothing
    # about a controller being gone (the renewal test below measures the delay).
    assert lab.on(controller, "systemctl kill --signal=SIGKILL kube-apiserver").returncode == 0
    lab.machines.stop(controller)
    try:
        time.sleep(12)    # past haproxy's health checks (inter 5s, fall 2): the proxies know it is gone
        for worker in workers(lab):
            result = lab.on(worker, f"{KUBELET_KUBECTL} get node {worker} -o name")
            assert result.returncode == 0 and f"node/{worker}" in result.stdout, result.stdout + result.stderr
            assert node_port_answers(lab, worker), worker
    finally:
        lab.machines.boot(controller, lab.nodes[controller], lab.state_dir / "authorized")
        lab.save()
    wait_for(lambda: lab.on(controller, "curl -fsS --cacert /etc/kubernetes/pki/ca.crt "
                                        "https://127.0.0.1:6443/readyz").returncode == 0, 180, f"{controller} ready")


POLLER = r"""#!/bin/bash
# Read this worker's Node through its haproxy every 0.2 s (a real request, as its kubelet makes; not /readyz, which
# an API server shutting down answers with a failure on purpose) until the stop file appears; one line per request.
rm -f /run/poll.stop /run/poll.log
while [ ! -e /run/poll.stop ]; do
  if out=$(timeout 10 {kubectl} get node "$(hostname)" -o name 2>&1); then
    echo "$(date +%s.%N) ok" >> /run/poll.log
  else
    echo "$(date +%s.%N) FAILED $out" | tr '\n' ' ' >> /run/poll.log; echo >> /run/poll.log
  fi
  sleep 0.2
done
"""


def service_started(lab, node: str, unit: str) -> int:
    """When `unit` last started on `node`, in the host's monotonic clock (every lab machine shares the kernel)."""
    out = lab.on(node, f"systemctl show {unit} -p ExecMainStartTimestampMonotonic --value").stdout.strip()
    return int(out or 0)


def test_a_renewed_api_server_certificate_restarts_the_api_servers_one_at_a_time_and_no_request_fails(lab):
    controllers = sorted(n for n in lab.nodes if n.startswith("controller-"))
    before = {c: service_started(lab, c, "kube-apiserver") for c in controllers}
    worker = workers(lab)[0]
    poller = lab.on(worker, "cat > /run/poll.sh <<'EOF'\n" + POLLER.replace("{kubectl}", KUBELET_KUBECTL)
                    + "EOF\nchmod +x /run/poll.sh; systemd-run --unit lab-api-poller /run/poll.sh")
    assert poller.returncode == 0, poller.stderr
    try:
        time.sleep(3)
        # What pulumi-tls does in a certificate's last 30 days: a new certificate for the same key.
        renewed = [k for k in lab.key_material if k[0] == APISERVER_CERT and k[1].endswith("-kube-apiserver")]
        assert len(renewed) == 1, [k[1] for k in lab.key_material if k[0] == APISERVER_CERT]
        del lab.key_material[renewed[0]]
        lab.new_update()
        report = replay_program(lab)
        time.sleep(3)
    finally:
        lab.on(worker, "touch /run/poll.stop; sleep 1; systemctl stop lab-api-poller 2>/dev/null || true")
    replayed = {r.step for r in report.by_status("replayed")}
    assert {f"{c}-start-kube-apiserver" for c in controllers} <= replayed, report.table()
    # Each restarted API server's readiness check ran again (its start step was replaced: a new id in its triggers).
    assert {f"{c}-apiserver-ready" for c in controllers} <= replayed, report.table()
    after = {c: service_started(lab, c, "kube-apiserver") for c in controllers}
    assert all(after[c] > before[c] for c in controllers), (before, after)
    # One at a time, in order: each API server started again only after the previous one had.
    order = sorted(controllers, key=lambda c: after[c])
    assert order == controllers, after
    # ...and each kept serving for its shutdown delay (its /readyz failing) before it stopped.
    gaps = [(after[b] - after[a]) / 1e6 for a, b in zip(controllers, controllers[1:])]
    assert all(gap >= SHUTDOWN_DELAY_SECONDS for gap in gaps), gaps
    log = lab.on(worker, "cat /run/poll.log").stdout.splitlines()
    failed = [line for line in log if "FAILED" in line]
    assert len(log) > 20, log
    assert not failed, "\n".join(failed[:10])
    print(f"\n{len(log)} requests through {worker}'s haproxy during the rolling restart, none failed; restarts at "
          + ", ".join(f"{c} +{(after[c] - after[controllers[0]]) / 1e6:.1f}s" for c in controllers))


def drain_check(replicas: int) -> str:
    """A Deployment whose pods must survive a scale-down: spread over the workers, a PodDisruptionBudget that
    lets one go at a time."""
    labels = {"app": "drain-check"}
    pod_security = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "drain-check", "namespace": NAMESPACE},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "automountServiceAccountToken": False, "securityContext": pod_security,
                      "terminationGracePeriodSeconds": 1,
                      "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                     "whenUnsatisfiable": "ScheduleAnyway",
                                                     "labelSelector": {"matchLabels": labels}}],
                      "containers": [{"name": "sleep", "image": IMAGES["busybox"], "command": ["sleep", "86400"],
                                      "securityContext": {"allowPrivilegeEscalation": False,
                                                          "capabilities": {"drop": ["ALL"]}}}]}}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "drain-check",
                                                                                "namespace": NAMESPACE},
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}},
    ]})


def pods_by_node(lab, namespace: str, selector: str) -> dict[str, list[str]]:
    pods = json.loads(kubectl(lab, "get", "pods", "-n", namespace, "-l", selector, "-o", "json"))["items"]
    running: dict[str, list[str]] = {}
    for p in pods:
        ready = any(c.get("ready") for c in p["status"].get("containerStatuses", []))
        if ready and not p["metadata"].get("deletionTimestamp"):
            running.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    return running


def test_four_workers_then_two_converge_and_the_leaving_workers_pods_are_drained_to_the_others(lab):
    report = lab.resize(4)
    assert not report.by_status("failed"), report.table()
    assert "worker-3-node-ready" in {r.step for r in report.by_status("replayed")}, report.table()
    assert workers(lab) == [f"worker-{i}" for i in range(4)]
    assert ready_nodes(lab) >= set(workers(lab))
    new_node = json.loads(kubectl(lab, "get", "node", "worker-3", "-o", "json"))
    assert new_node["spec"]["podCIDR"] == lab.run.outputs["podCidrs"]["worker-3"] == lab.pod_cidrs["worker-3"]
    fetched = next(r for r in report.rows if r.step.endswith("-fetch-from-every-worker"))
    assert all(f"{w}: {WELCOME}" in fetched.output for w in workers(lab)), fetched.output
    for worker in workers(lab):
        assert wait_for(lambda w=worker: node_port_answers(lab, w), 60, f"nginx on {worker}'s NodePort")
        routes = lab.on(worker, "ip -4 route show").stdout
        for other in workers(lab):
            if other != worker:
                assert f"{lab.pod_cidrs[other]} via {lab.nodes[other]}" in routes, (worker, other, routes)
    kubectl(lab, "apply", "-f", "-", stdin=drain_check(replicas=4))
    spread = wait_for(lambda: (lambda p: p if sum(map(len, p.values())) == 4 else None)(
        pods_by_node(lab, NAMESPACE, "app=drain-check")), 180, "4 drain-check pods running")
    leaving = {"worker-2", "worker-3"}
    assert set(spread) & leaving, spread
    leaving_ips = {lab.nodes[w] for w in leaving}

    report = lab.resize(2)
    assert not report.by_status("failed"), report.table()
    deleted = {r.step for r in report.by_status("deleted")}
    assert {"controller-0-remove-worker-2", "controller-0-remove-worker-3"} <= deleted, report.table()
    drained = "\n".join(f"== {r.step}\n{r.output}" for r in report.by_status("deleted"))
    print(drained)
    for worker in leaving:    # drained while Ready (a worker that is not Ready is only cordoned)
        assert f"draining {worker}" in drained, drained
    assert workers(lab) == ["worker-0", "worker-1"]
    assert not leaving & set(lab.machines.pids) and not any((lab.machines.disks / w).exists() for w in leaving)
    fetched = next(r for r in report.rows if r.step.endswith("-fetch-from-every-worker"))
    assert all(f"{w}: {WELCOME}" in fetched.output for w in workers(lab)), fetched.output
    assert not any(w in fetched.output for w in leaving), fetched.output
    names = {n["metadata"]["name"] for n in json.loads(kubectl(lab, "get", "nodes", "-o", "json"))["items"]}
    assert names == {"worker-0", "worker-1"}
    # Every drain-check pod runs on the workers that stay, none was lost.
    after = wait_for(lambda: (lambda p: p if sum(map(len, p.values())) == 4 else None)(
        pods_by_node(lab, NAMESPACE, "app=drain-check")), 180, "4 drain-check pods running again")
    assert set(after) <= {"worker-0", "worker-1"}, after
    # The nginx evicted from a leaving worker starts again on the one without (its spread constraint).
    wait_for(lambda: set(pods_by_node(lab, SMOKE_TEST_NAMESPACE, "app=nginx-smoke-test")) == {"worker-0", "worker-1"},
             180, "one ready nginx on each remaining worker")
    for worker in workers(lab):
        assert node_port_answers(lab, worker), worker
        routes = lab.on(worker, "ip -4 route show").stdout
        other = next(w for w in workers(lab) if w != worker)
        assert f"{lab.pod_cidrs[other]} via {lab.nodes[other]}" in routes, routes
        assert not any(f"via {ip} " in routes for ip in leaving_ips), routes
    kubectl(lab, "delete", "namespace", NAMESPACE, "--wait=false", check=False)
