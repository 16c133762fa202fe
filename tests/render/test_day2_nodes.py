"""Issue 18 (second review, N3-N18): what the nodes receive for day 2, one test per finding that a rendered file can
show. The findings the lab or a namespace can run are tested there (tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

from cluster.render import control_plane, steps
from cluster.render.workers import haproxy, kube_proxy, kubelet
from tests.render import sample

ARCHITECTURE = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()


def test_n18_the_controller_manager_is_not_told_about_cloud_routes_it_has_no_cloud_provider_for():
    flags = dict(control_plane.controller_manager_flags(sample.control_plane_inputs()))
    assert "configure-cloud-routes" not in flags
    assert "cloud-provider" not in flags


def test_n18_the_docs_say_which_instances_hold_an_iam_role():
    instances = ARCHITECTURE.split("## Instances", 1)[1].split("\n#", 1)[0]
    assert "No instance has an IAM role" not in instances
    assert "etcdSnapshots.s3" in instances


def test_n14_node_ports_answer_on_the_nodes_primary_address_only():
    config = json.loads(kube_proxy.kube_proxy_config(sample.worker_inputs()))
    assert config["nodePortAddresses"] == ["primary"]


def test_n13_haproxy_drops_the_sessions_of_a_server_it_marks_down():
    config = haproxy.haproxy_config(["10.43.0.20", "10.43.0.21"])
    default_server = next(line for line in config.splitlines() if line.strip().startswith("default-server"))
    assert "on-marked-down shutdown-sessions" in default_server


def test_n13_a_new_haproxy_config_is_reloaded_and_the_kubelet_still_restarts():
    assert haproxy.SERVICE.reloads and not kubelet.SERVICE.reloads
    reload = steps.restart_services_script(["haproxy"], "0" * 32, reload=True)
    restart = steps.restart_services_script(["kubelet"], "0" * 32)
    assert 'systemctl reload-or-restart "$unit"' in reload and 'systemctl restart "$unit"' not in reload
    assert 'systemctl restart "$unit"' in restart


def test_n8_no_drain_evicts_every_coredns_replica():
    items = {i["kind"]: i for i in json.loads(sample.coredns())["items"]}
    budget, deployment = items["PodDisruptionBudget"], items["Deployment"]
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert budget["metadata"]["namespace"] == "kube-system"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}]


def test_every_node_keeps_its_clock_on_the_amazon_time_sync_service():
    """Section 3 item 10. Not run for real: the lab's machines are containers sharing this host's clock (the
    script says so and sets nothing), and no EC2 instance runs here."""
    script = steps.time_sync_script()
    assert "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4" in script
    assert "/etc/chrony/sources.d/amazon-time-sync.sources" in script
    assert "chronyc -n sources | grep -q '^\\^\\* *169.254.169.123 '" in script
