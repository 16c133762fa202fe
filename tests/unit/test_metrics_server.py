"""metrics-server under mocks: on by default, applied by a secret step, checked after the pod network; off, no
trace of it (no certificate, no step)."""

import pytest

from simulator.program import run_program, stack_config

REMOTE = "command:remote:Command"
CERT = "tls:index/locallySignedCert:LocallySignedCert"


@pytest.fixture(scope="module")
def run():
    return run_program(stack_config())


def test_its_manifest_travels_only_as_secret_stdin_and_its_trigger_stays_secret(run):
    applied = run.named("controller-0-apply-metrics-server", REMOTE)
    assert {"stdin", "triggers"} <= {path.split("[")[0] for path in applied.secret_inputs}
    assert applied.inputs["logging"] == "none"
    assert '"kind": "APIService"' in applied.inputs["stdin"]
    assert applied.depends_on_urn(run.named("controller-0-apply-rbac", REMOTE).urn)


def test_the_check_runs_after_the_pod_network_and_again_when_it_is_applied_again(run):
    check = run.named("controller-0-metrics-check", REMOTE)
    applied = run.named("controller-0-apply-metrics-server", REMOTE)
    assert check.depends_on_urn(applied.urn)
    for worker in ("worker-0", "worker-1", "worker-2"):
        assert check.depends_on_urn(run.named(f"{worker}-pod-network", REMOTE).urn)
    assert applied.id in check.inputs["triggers"]
    assert "worker-0 worker-1 worker-2" in check.inputs["stdin"]


def test_turned_off_it_has_no_certificate_and_no_step():
    run = run_program(stack_config(metricsServer=False))
    assert "k8s-dev-pki-metrics-server" not in {r.name for r in run.of_type(CERT)}
    assert not [r.name for r in run.of_type(REMOTE) if "metrics" in r.name]
    assert "k8s-dev-pki-front-proxy-client" in {r.name for r in run.of_type(CERT)}   # the aggregation layer stays
