"""Day 2 on the lab's cluster, second round (review r2): drains that keep DNS serving, and a whole-cluster restore from
an etcd snapshot under the running cluster.

Runs on the lab the other lab tests share (tests/integration/conftest.py), last of them (conftest.py orders it so:
the restore rewinds the cluster); alone, it shrinks a new lab to two workers first.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from cluster.render.addons import dns_check_script
from cluster.render.etcd_backup import BUMP_REVISION, SNAPSHOT_DIR, TIMERS
from cluster.restore import restore_cluster
from cluster.smoke import NODE_PORT
from cluster.versions import IMAGES
from infra.settings import parse_settings
from tests.integration.test_lab_workers_day2 import kubectl, wait_for, workers

pytestmark = pytest.mark.integration

DNS_SELECTOR = "k8s-app=kube-dns"
DRAIN = ("--ignore-daemonsets", "--delete-emptydir-data")


def ready_dns_endpoints(lab) -> int | None:
    """Ready kube-dns endpoints, as kube-proxy sees them; None when the API does not answer."""
    result = lab.kubectl("get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns",
                         "-o", "json")
    if result.returncode != 0:
        return None
    return sum(1 for s in json.loads(result.stdout)["items"] for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready"))


def dns_nodes(lab) -> dict[str, str]:
    """Ready CoreDNS pods by node."""
    pods = json.loads(kubectl(lab, "get", "pods", "-n", "kube-system", "-l", DNS_SELECTOR, "-o", "json"))["items"]
    return {p["spec"]["nodeName"]: p["metadata"]["name"] for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(c.get("ready") for c in p["status"].get("containerStatuses", []))}


class DnsWatcher(threading.Thread):
    """Counts ready kube-dns endpoints every half second; remembers the fewest seen."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.samples, self.fewest = lab, 0, None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            ready = ready_dns_endpoints(self.lab)
            if ready is not None:
                self.samples += 1
                self.fewest = ready if self.fewest is None else min(self.fewest, ready)
            time.sleep(0.5)


@pytest.fixture(scope="module")
def two_workers(lab):
    if len(workers(lab)) > 2:
        report = lab.resize(2)
        assert not report.by_status("failed"), report.table()
    assert workers(lab) == ["worker-0", "worker-1"]
    return lab


def test_n8_draining_both_dns_nodes_one_after_the_other_never_leaves_dns_without_a_ready_replica(two_workers):
    """Review r2 N8: with two workers, draining one moved its CoreDNS replica onto the other, and draining that one
    evicted both. Now no two replicas share a node and the budget lets one go at a time: the second drain waits
    until the first worker is back and its replica ready there."""
    lab = two_workers
    assert wait_for(lambda: set(dns_nodes(lab)) == {"worker-0", "worker-1"} or None, 180, "a CoreDNS on each worker")
    watcher = DnsWatcher(lab)
    watcher.start()
    try:
        kubectl(lab, "drain", "worker-0", *DRAIN, "--timeout=120s")
        second = subprocess.Popen(
            ["ip", "netns", "exec", lab.machines.lab.hosts["deployer"], str(lab.build.binary("kubectl")),
             "--kubeconfig", str(lab.state_dir / "admin.kubeconfig"), "drain", "worker-1", *DRAIN, "--timeout=240s"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(20)
        assert second.poll() is None, f"the second drain did not wait for the budget: {second.stdout.read()}"
        kubectl(lab, "uncordon", "worker-0")
        out, _ = second.communicate(timeout=300)
        assert second.returncode == 0, out
        assert "disruption budget" in out, out
        kubectl(lab, "uncordon", "worker-1")
        assert wait_for(lambda: set(dns_nodes(lab)) == {"worker-0", "worker-1"} or None, 180,
                        "a CoreDNS on each worker again")
    finally:
        watcher.stopped.set()
        watcher.join(10)
        for worker in workers(lab):
            lab.kubectl("uncordon", worker)
    print(f"\n{watcher.samples} samples of kube-dns's ready endpoints during both drains: fewest {watcher.fewest}")
    assert watcher.samples > 20
    assert watcher.fewest >= 1


def on(lab, node: str, script: str) -> tuple[int, str]:
    result = lab.on(node, script)
    return result.returncode, result.stdout + result.stderr


def copy(lab, source: str, target: str, path: str) -> None:
    """As `python -m cluster.restore --copy-from` does through the deployer, here over the lab's SSH."""
    data = lab.on(source, f"base64 -w0 {path}")
    assert data.returncode == 0, data.stderr
    result = lab.on(target, f"install -d -m 0700 $(dirname {path})\nbase64 -d > {path} <<'EOF'\n{data.stdout}\nEOF\n"
                            f"chmod 0600 {path}")
    assert result.returncode == 0, result.stderr


def resource_version(lab, *what: str) -> int:
    return int(kubectl(lab, "get", *what, "-o", "jsonpath={.metadata.resourceVersion}"))


def test_n4_a_snapshot_restored_under_the_running_cluster_brings_every_component_back(two_workers):
    """Review r2 N4: the whole procedure (cluster/restore.py) on the running lab, then every component is shown to
    work from the restored store: the scheduler and controller-manager place and start a new Deployment, kubelets
    run it, kube-proxy serves the NodePort, CoreDNS answers, and the etcd timers run again."""
    lab = two_workers
    kubectl(lab, "create", "configmap", "before-snapshot", "-n", "default", "--from-literal=k=v")
    taken = lab.on("etcd-0", f"systemctl start k8s-etcd-snapshot && ls -1t {SNAPSHOT_DIR} | head -n 1")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    snapshot = f"{SNAPSHOT_DIR}/{taken.stdout.split()[-1]}"
    kubectl(lab, "create", "configmap", "after-snapshot", "-n", "default", "--from-literal=k=v")
    before = resource_version(lab, "configmap", "after-snapshot", "-n", "default")

    started = time.monotonic()
    results = restore_cluster(snapshot=snapshot, nodes=list(lab.nodes), run_on=lambda n, s: on(lab, n, s),
                              copy=lambda s, t, p: copy(lab, s, t, p), copy_from="etcd-0")
    seconds = time.monotonic() - started
    print(f"\nrestore of {snapshot} under the running lab: {seconds:.0f}s; "
          + "; ".join(f"{r.title.split(':')[0]} {r.seconds:.0f}s" for r in results))

    assert lab.kubectl("get", "configmap", "before-snapshot", "-n", "default").returncode == 0
    gone = lab.kubectl("get", "configmap", "after-snapshot", "-n", "default")
    assert gone.returncode != 0 and "NotFound" in gone.stderr, "the store is the snapshot's"
    kubectl(lab, "create", "configmap", "after-restore", "-n", "default", "--from-literal=k=v")
    assert resource_version(lab, "configmap", "after-restore", "-n", "default") > before + BUMP_REVISION // 2
    for worker in workers(lab):
        wait_for(lambda w=worker: "True" in kubectl(lab, "get", "node", w, "-o",
                                                     'jsonpath={.status.conditions[?(@.type=="Ready")].status}'),
                 180, f"{worker} Ready")
    kubectl(lab, "create", "deployment", "after-restore", "-n", "default", f"--image={IMAGES['busybox']}",
            "--replicas=2", "--", "sleep", "3600")
    kubectl(lab, "rollout", "status", "deployment/after-restore", "-n", "default", "--timeout=180s")
    for worker in workers(lab):
        fetched = lab.machines.lab.exec("deployer", "curl", "-fsS", "--max-time", "10",
                                        f"http://{lab.nodes[worker]}:{NODE_PORT}/", check=False)
        assert fetched.returncode == 0 and "Welcome to nginx!" in fetched.stdout, (worker, fetched.stderr)
    settings = parse_settings(lab.config, lab_machines=True)
    dns = on(lab, "controller-0", dns_check_script(image=IMAGES["busybox"], kubernetes_service_ip=settings.service_ip,
                                                   external_name=settings.dns_check_name))
    assert dns[0] == 0, dns[1]
    for member in (n for n in lab.nodes if n.startswith("etcd-")):
        active = lab.on(member, f"systemctl is-active {' '.join(TIMERS)}")
        assert active.returncode == 0, (member, active.stdout)
    kubectl(lab, "delete", "deployment", "after-restore", "-n", "default", "--wait=false")
