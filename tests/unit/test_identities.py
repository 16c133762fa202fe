"""Who the program and its people are to the cluster (review r2 N11, N12, N16), through the whole program under
mocks."""

from __future__ import annotations

import base64
import datetime
import json
import re

import pytest

from cluster.render.control_plane import DEPLOYER_KUBECONFIG, SUPER_ADMIN_KUBECONFIG
from simulator.program import run_program, stack_config

LOCALLY_SIGNED = "tls:index/locallySignedCert:LocallySignedCert"


@pytest.fixture(scope="module")
def run():
    return run_program(stack_config(3, 3, 2))


def written_files(script: str) -> dict[str, str]:
    found = re.findall(r"mktemp '?(\S+?)\.XXXXXX'?\)\nbase64 -d > \"\$tmp\" <<'K8S_FROM_SCRATCH_EOF'\n(\S+)\n", script)
    return {path: base64.b64decode(content).decode() for path, content in found}


def test_n11_the_break_glass_kubeconfig_is_no_default_output(run):
    assert "superAdminKubeconfig" not in run.outputs
    exported = run_program({**stack_config(1, 1, 1), "exportSuperAdminKubeconfig": True})
    users = json.loads(exported.outputs["superAdminKubeconfig"])["users"]
    assert [u["name"] for u in users] == ["super-admin"]


def test_n11_the_break_glass_kubeconfig_lives_on_the_first_controller_only(run):
    first = run.named("controller-0-control-plane-files").inputs["stdin"]
    assert SUPER_ADMIN_KUBECONFIG in written_files(first)
    for other in ("controller-1", "controller-2"):
        script = run.named(f"{other}-control-plane-files").inputs["stdin"]
        assert SUPER_ADMIN_KUBECONFIG not in written_files(script)
        assert DEPLOYER_KUBECONFIG in written_files(script)
        # where earlier versions wrote it, it is removed
        assert f"rm -f {SUPER_ADMIN_KUBECONFIG}" in script


def test_n11_the_break_glass_certificate_lasts_a_week_and_any_later_update_renews_it(run):
    certs = {r.name.removeprefix("k8s-dev-pki-"): r.inputs for r in run.of_type(LOCALLY_SIGNED)}
    assert certs["super-admin"]["validityPeriodHours"] == 7 * 24
    assert certs["super-admin"]["earlyRenewalHours"] == 6 * 24
    assert certs["admin"]["validityPeriodHours"] == 365 * 24


def test_n12_every_cluster_level_step_runs_as_the_deployer(run):
    cluster_steps = [r for r in run.of_type("command:remote:Command") if r.name.startswith("controller-0-")
                     and re.search(r"-(drain|uncordon|remove)-worker-\d|-(read-pod-cidrs|apply-coredns|dns-check|"
                                   r"apply-nginx|nginx-rollout)$", r.name)]
    assert len(cluster_steps) >= 9
    for step in cluster_steps:
        text = step.inputs["stdin"] + (step.inputs.get("delete") or "")
        assert DEPLOYER_KUBECONFIG in text, step.name
        assert "admin.kubeconfig" not in text, step.name
    rbac = run.named("controller-0-apply-rbac").inputs["stdin"]
    assert '"name": "k8s-from-scratch:deployers"' in rbac and SUPER_ADMIN_KUBECONFIG in rbac


def test_n16_every_certificates_expiry_is_an_output(run):
    expiry = run.outputs["certificateExpiry"]
    names = {r.name.removeprefix("k8s-dev-pki-") for r in run.of_type(LOCALLY_SIGNED)}
    assert set(expiry) == names | {"kubernetes-ca", "etcd-ca", "front-proxy-ca"}
    now = datetime.datetime.now(datetime.timezone.utc)
    days = {name: (datetime.datetime.fromisoformat(v.replace("Z", "+00:00")) - now).days for name, v in expiry.items()}
    assert days["kubernetes-ca"] in (3648, 3649) and days["worker-0"] in (363, 364)
    assert days["super-admin"] in (6, 7)
