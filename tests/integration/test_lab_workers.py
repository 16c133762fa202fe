"""The lab's workers, for real: containerd, runc, the CNI plugins, kubelet and kube-proxy from the program's own
steps inside systemd-nspawn machines, and the cluster-level steps (pod routes, CoreDNS, the DNS check, nginx and
the fetch from every worker) replayed on them. The lab is the one test_lab.py uses (tests/integration/conftest.py).
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest

from cluster.render import podnet
from cluster.render.workers import cni, kube_proxy, kubelet
from cluster.render.addons import NGINX_PORT
from cluster.versions import IMAGES

pytestmark = pytest.mark.integration

WORKERS = [f"worker-{i}" for i in range(3)]
NAMESPACE = "lab-workers"
LOAD_BALANCER_CHECK = "lab-api-through-load-balancer"


def nodes(lab) -> dict[str, dict]:
    result = lab.kubectl("get", "nodes", "-o", "json")
    assert result.returncode == 0, result.stderr
    return {n["metadata"]["name"]: n for n in json.loads(result.stdout)["items"]}


def test_the_replay_report_leaves_out_only_the_load_balancer_check(lab):
    report = lab.first_report
    declared = sorted(r.name for r in lab.run.resources if r.type.startswith("command:"))
    assert sorted(r.step for r in report.rows) == declared
    assert not report.by_status("failed")
    assert [r.step for r in report.by_status("not replayed")] == [LOAD_BALANCER_CHECK]
    replayed = {r.step for r in report.by_status("replayed")}
    for worker in WORKERS:
        assert {f"{worker}-{s}" for s in (
            "prepare-os", "install-containerd", "install-runc", "install-cni-plugins", "install-crictl",
            "start-containerd", "start-kubelet", "start-kube-proxy", "node-ready", "pod-network")} <= replayed
    assert {*(f"{w}-read-pod-cidr" for w in WORKERS), "controller-0-apply-coredns", "controller-0-dns-check",
            "controller-0-apply-nginx", "controller-0-nginx-rollout", "lab-smoke-test-fetch-from-every-worker"} \
        <= replayed


def test_every_worker_is_a_ready_node_with_the_pinned_kubelet_and_the_pod_range_the_program_read(lab):
    pinned = lab.config["versions"]["kubernetes"]["version"]
    found = nodes(lab)
    assert sorted(found) == WORKERS
    ranges = lab.run.outputs["podCidrs"]
    for name in WORKERS:
        node = found[name]
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", (name, node["status"]["conditions"])
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{pinned}" and info["kubeProxyVersion"] in ("", f"v{pinned}")
        assert info["containerRuntimeVersion"].startswith(f"containerd://{lab.config['versions']['containerd']['version']}")
        assert node["spec"]["podCIDR"] == ranges[name], (name, node["spec"], ranges)
        assert {a["type"]: a["address"] for a in node["status"]["addresses"]}["InternalIP"] == lab.nodes[name]
    assert len(set(ranges.values())) == len(WORKERS)


def test_the_pod_routes_follow_the_ranges_the_controller_manager_assigned(lab):
    ranges = lab.run.outputs["podCidrs"]
    for worker in WORKERS:
        routes = lab.on(worker, f"ip -4 route show proto {podnet.ROUTE_PROTOCOL}").stdout
        for other in WORKERS:
            if other != worker:
                assert f"{ranges[other]} via {lab.nodes[other]}" in routes, (worker, routes)
        conflist = lab.on(worker, f"cat {cni.CNI_CONFLIST}").stdout
        assert f'"subnet": "{ranges[worker]}"' in conflist


def test_the_lab_deviations_are_the_two_worker_settings_and_pods_live_in_their_machines_cgroups(lab):
    assert lab.config["workers"]["allowCgroupV1"] is True and lab.config["workers"]["systemContainer"] is True
    for worker in WORKERS:
        files = lab.on(worker, f"cat {kubelet.KUBELET_CONFIG} {kube_proxy.KUBE_PROXY_CONFIG} "
                               "/etc/containerd/config.toml").stdout
        assert '"failCgroupV1": false' in files and '"maxPerCore": 0' in files
        assert "restrict_oom_score_adj = true" in files
        active = lab.on(worker, "systemctl is-active containerd kubelet kube-proxy k8s-cni-config haproxy").stdout
        assert active.split() == ["active"] * 5, (worker, active)
        # Every pod's cgroup is below the machine's own, in every controller the kubelet uses: nothing is shared
        # with the other machines or the host.
        for path in lab.machines.cgroups[worker]:
            if Path(path).parts[4] in ("cpu", "memory", "pids", "cpuset"):
                payload = Path(path)
                assert any(payload.rglob("kubepods*")), path
        # systemd in the machine manages the v1 controllers: it started after the remount.
        assert "memory:/init.scope" in lab.on(worker, "cat /proc/1/cgroup").stdout


def pod(name: str, node: str, command: str) -> dict:
    """A busybox pod on one node that passes the restricted Pod Security profile."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "main", "image": IMAGES["busybox"], "command": ["sh", "-c", command],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.fixture(scope="module")
def probes(lab):
    """One busybox pod per worker, in a namespace under the restricted profile."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    items = [namespace, *(pod(f"probe-{w}", w, "sleep 3600") for w in WORKERS)]
    created = lab.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert created.returncode == 0, created.stderr
    waited = lab.kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
    assert waited.returncode == 0, waited.stdout + waited.stderr + lab.kubectl("-n", NAMESPACE, "get", "pods", "-o",
                                                                               "wide").stdout
    yield {w: f"probe-{w}" for w in WORKERS}
    lab.kubectl("delete", "namespace", NAMESPACE, "--wait=false")


def in_pod(lab, name: str, command: str, timeout: float = 30) -> str:
    """The command's output in the pod, retried until it succeeds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = lab.kubectl("-n", NAMESPACE, "exec", name, "--", "sh", "-c", command)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, (name, command, result.stdout, result.stderr)
            return result.stdout
        time.sleep(2)


def test_pods_on_different_workers_reach_each_other(lab, probes):
    ips = {w: lab.kubectl("-n", NAMESPACE, "get", "pod", probes[w], "-o", "jsonpath={.status.podIP}").stdout
           for w in WORKERS}
    nginx = json.loads(lab.kubectl("-n", "smoke-test", "get", "pods", "-o", "json").stdout)["items"]
    nginx_on = {p["spec"]["nodeName"]: p["status"]["podIP"] for p in nginx}
    assert sorted(nginx_on) == WORKERS, nginx_on
    for worker in WORKERS:
        assert ipaddress.ip_address(ips[worker]) in ipaddress.ip_network(lab.run.outputs["podCidrs"][worker])
        for other in WORKERS:
            if other != worker:
                page = in_pod(lab, probes[worker], f"timeout 10 wget -q -O - http://{nginx_on[other]}:{NGINX_PORT}/")
                assert "Welcome to nginx!" in page, (worker, other)


def test_a_service_cluster_ip_answers_from_every_worker_through_kube_proxy(lab, probes):
    service = json.loads(lab.kubectl("-n", "smoke-test", "get", "service", "nginx", "-o", "json").stdout)
    cluster_ip, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
    for worker in WORKERS:
        page = in_pod(lab, probes[worker], f"timeout 10 wget -q -O - http://{cluster_ip}:{port}/")
        assert "Welcome to nginx!" in page, worker
        rules = lab.on(worker, "iptables -w -t nat -S KUBE-SERVICES").stdout
        assert cluster_ip in rules, (worker, rules)


def test_pods_resolve_the_kubernetes_service_through_coredns(lab, probes):
    service_ip = lab.kubectl("get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout
    for worker in WORKERS:
        answer = in_pod(lab, probes[worker], "nslookup kubernetes.default.svc.cluster.local")
        assert f"Address: {service_ip}" in answer, (worker, answer)
        resolv = in_pod(lab, probes[worker], "cat /etc/resolv.conf")
        assert "nameserver 10.32.0.10" in resolv


def test_nginx_answers_on_every_workers_node_port_from_the_deployer(lab):
    for worker in WORKERS:
        result = lab.machines.lab.exec("deployer", "curl", "--silent", "--max-time", "10",
                                       f"http://{lab.nodes[worker]}:30080/", check=False)
        assert "Welcome to nginx!" in result.stdout, (worker, result.stdout, result.stderr)
    # The program's own fetch, replayed in the deployer namespace, said so for each of them.
    fetched = next(r for r in lab.first_report.rows if r.step.endswith("-fetch-from-every-worker"))
    for worker in WORKERS:
        assert f"{worker}: Welcome to nginx! (http://{lab.nodes[worker]}:30080/)" in fetched.output, fetched.output


def test_a_restarted_worker_comes_back_ready_with_its_routes_and_its_pods(lab):
    worker = "worker-1"
    before = lab.kubectl("-n", "smoke-test", "get", "pods", "-o", "json")
    nginx = next(p for p in json.loads(before.stdout)["items"] if p["spec"]["nodeName"] == worker)
    lab.restart(worker)
    deadline = time.monotonic() + 180
    while True:
        node = nodes(lab)[worker]
        ready = {c["type"]: c for c in node["status"]["conditions"]}["Ready"]
        pod = json.loads(lab.kubectl("-n", "smoke-test", "get", "pod", nginx["metadata"]["name"], "-o", "json").stdout)
        statuses = pod["status"].get("containerStatuses", [{}])
        if ready["status"] == "True" and all(s.get("ready") and s.get("restartCount", 0) >= 1 for s in statuses):
            break
        assert time.monotonic() < deadline, (ready, pod["status"])
        time.sleep(3)
    # The same pod, restarted in place by the kubelet from the containerd state the reboot kept.
    assert pod["metadata"]["uid"] == nginx["metadata"]["uid"]
    routes = lab.on(worker, f"ip -4 route show proto {podnet.ROUTE_PROTOCOL}").stdout
    for other in WORKERS:
        if other != worker:
            assert f"{lab.run.outputs['podCidrs'][other]} via {lab.nodes[other]}" in routes, routes
    assert lab.on(worker, "systemctl is-system-running").stdout.strip() == "running"
    result = lab.machines.lab.exec("deployer", "curl", "--silent", "--max-time", "10",
                                   f"http://{lab.nodes[worker]}:30080/", check=False)
    assert "Welcome to nginx!" in result.stdout

