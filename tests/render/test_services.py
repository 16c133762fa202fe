"""The service rows (cluster/render/services.py): each role's rows are a start order its units agree with, and the
facts the wiring reads off them are the ones the design states (what drains a worker, what waits for the control
plane)."""

from __future__ import annotations

import re

import pytest

from cluster import versions
from cluster.render import control_plane, etcd, services, workers
from cluster.render.services import Skew
from tests.render import sample

ROLES = {"etcd": (etcd.SERVICE,), "controllers": control_plane.SERVICES, "workers": workers.SERVICES}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_service_starts_after_services_of_its_role_that_come_before_it(role):
    seen = set()
    for service in ROLES[role]:
        assert set(service.after) <= seen, f"{service.name} starts after {service.after}, not all before it"
        assert set(service.artifacts + service.uses) <= set(versions.COMPONENTS), service.name
        seen.add(service.name)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_unit_a_service_receives_orders_it_after_the_services_of_its_row(role):
    inputs = {"etcd": etcd.EtcdInputs(sample.ETCD[0], sample.ETCD, "k8s-dev", sample.etcd_tls("etcd-0")),
              "controllers": sample.control_plane_inputs(), "workers": sample.worker_inputs()}[role]
    for service in ROLES[role]:
        units = [f for f in service.files(inputs) if f.path.endswith(f"/{service.unit}")]
        for unit in units:
            after = re.search(r"^After=(.*)$", unit.content, re.M)
            assert after and set(services.units(service.after)) <= set(after[1].split()), service.name


def test_worker_rows_state_the_drain_and_skew_rules():
    assert [s.name for s in workers.SERVICES] == ["haproxy", "containerd", "k8s-cni-config", "kubelet", "kube-proxy"]
    assert [s.name for s in workers.SERVICES if s.drains] == ["containerd", "kubelet"]
    assert [s.name for s in workers.SERVICES if s.skew == Skew.NODE] == ["kubelet", "kube-proxy"]
    assert services.installs(workers.SERVICES) == ("containerd", "runc", "cni-plugins", "crictl", "kubernetes-node")
    assert [s.name for s in services.last_started(workers.SERVICES)] == ["k8s-cni-config", "kubelet", "kube-proxy"]


def test_the_node_ready_check_reports_every_worker_service_log_the_kubelets_first():
    script = workers.node_ready_script("worker-0")
    assert "for unit in kubelet containerd k8s-cni-config kube-proxy haproxy; do" in script
    assert services.in_report_order(workers.SERVICES)[0] == "kubelet"


def test_control_plane_rows_put_the_api_server_before_the_controller_manager_and_scheduler():
    assert [s.name for s in control_plane.SERVICES] == ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    assert control_plane.API_SERVER.skew == Skew.API_SERVER
    assert [s.name for s in control_plane.CONTROLLERS] == ["kube-controller-manager", "kube-scheduler"]
    assert services.installs(control_plane.SERVICES) == ("kubernetes-server",)
    assert "for unit in kube-apiserver kube-controller-manager kube-scheduler; do" in \
        control_plane.apiserver_ready_script()


def test_an_etcd_member_restarts_for_its_files_without_the_membership_flags():
    inputs = etcd.EtcdInputs(sample.ETCD[0], sample.ETCD, "k8s-dev", sample.etcd_tls("etcd-0"))
    written = {f.path: f.content for f in etcd.SERVICE.files(inputs)}
    restarting = {f.path: f.content for f in etcd.SERVICE.files_restarting_it(inputs)}
    assert written.keys() == restarting.keys()
    assert "--initial-cluster=" in written["/etc/systemd/system/etcd.service"]
    assert "--initial-cluster=" not in restarting["/etc/systemd/system/etcd.service"]
    assert (etcd.SERVICE.artifacts, etcd.SERVICE.skew) == (("etcd",), Skew.ETCD)
