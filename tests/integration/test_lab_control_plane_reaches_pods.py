"""The API servers reach pods, on the lab (the session's lab of tests/integration/conftest.py): metrics-server, an
aggregated API the program installs, answers `kubectl top nodes` for every node; and a validating webhook with
`failurePolicy: Fail`, served by a pod (agnhost's webhook, the conformance image), denies a request through every API
server the first time it is asked, once its pod is Ready.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from cluster.render import metrics_server
from infra.certs import KUBERNETES_CA, SERVER, CertSpec, service_dns_names
from locallab import conformance
from locallab.conformance_images import REFERENCES
from tests.support.pki import mint

pytestmark = pytest.mark.integration

WORKERS = [f"worker-{i}" for i in range(3)]
CONTROLLERS = [f"controller-{i}" for i in range(3)]
WEBHOOK_NAMESPACE = "lab-webhook"
GUARDED_NAMESPACE = "lab-webhook-guarded"         # the webhook judges ConfigMaps here and nowhere else
WEBHOOK_PORT = 8443
DENIED_DATA = {"webhook-e2e-test": "webhook-disallow"}   # what agnhost's /configmaps handler refuses
DENIAL = "the configmap contains unwanted key and value"


def kubectl_ok(lab, *args: str, stdin: str | None = None) -> str:
    result = lab.kubectl(*args, stdin=stdin)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_the_programs_metrics_check_ran_and_kubectl_top_lists_every_node(lab):
    check = next(r for r in lab.first_report.rows if r.step == "controller-0-metrics-check")
    assert check.status == "replayed" and "has metrics of every node" in check.output, check
    apiservice = json.loads(kubectl_ok(lab, "get", "apiservice", metrics_server.APISERVICE, "-o", "json"))
    assert {c["type"]: c["status"] for c in apiservice["status"]["conditions"]}["Available"] == "True"
    assert "insecureSkipTLSVerify" not in apiservice["spec"]
    top = kubectl_ok(lab, "top", "nodes", "--no-headers").splitlines()
    assert sorted(line.split()[0] for line in top) == WORKERS, top
    for line in top:    # NAME CPU(cores) CPU% MEMORY(bytes) MEMORY%: real samples, not <unknown>
        name, cpu, _, memory, _ = line.split()
        assert cpu.endswith("m") and memory.endswith("Mi"), line
    pods = kubectl_ok(lab, "top", "pods", "-n", metrics_server.NAMESPACE, "--no-headers").splitlines()
    assert len(pods) == 2 and all(line.startswith(metrics_server.NAME) for line in pods), pods
    namespace = json.loads(kubectl_ok(lab, "get", "namespace", metrics_server.NAMESPACE, "-o", "json"))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _webhook_objects(ca_pem: str, cert_pem: str, key_pem: str) -> tuple[list[dict], dict]:
    """The webhook's namespace, secret, Service and Deployment (agnhost webhook, restricted), and its
    ValidatingWebhookConfiguration for ConfigMaps in GUARDED_NAMESPACE."""
    labels = {"app": "lab-webhook"}
    meta = {"namespace": WEBHOOK_NAMESPACE}
    restricted = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
    workload = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WEBHOOK_NAMESPACE, "labels": restricted}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GUARDED_NAMESPACE, "labels": restricted}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "webhook-tls", **meta}, "type": "kubernetes.io/tls",
         "stringData": {"tls.crt": cert_pem, "tls.key": key_pem}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "webhook", **meta},
         "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": WEBHOOK_PORT}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "webhook", **meta}, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "webhook", "image": REFERENCES["agnhost"],
                    "args": ["webhook", "--tls-cert-file=/certs/tls.crt", "--tls-private-key-file=/certs/tls.key",
                             f"--port={WEBHOOK_PORT}", "-v=4"],
                    "ports": [{"containerPort": WEBHOOK_PORT}],
                    "readinessProbe": {"httpGet": {"scheme": "HTTPS", "port": WEBHOOK_PORT, "path": "/readyz"},
                                       "periodSeconds": 1},
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "certs", "mountPath": "/certs", "readOnly": True}]}],
                "volumes": [{"name": "certs", "secret": {"secretName": "webhook-tls", "defaultMode": 0o444}}]}}}},
    ]
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "lab-deny-configmaps"},
        "webhooks": [{
            "name": "deny-configmaps.lab.k8s-from-scratch.io",
            "clientConfig": {"service": {"name": "webhook", "namespace": WEBHOOK_NAMESPACE, "path": "/configmaps"},
                             "caBundle": base64.b64encode(ca_pem.encode()).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GUARDED_NAMESPACE}},
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10}],
    }
    return workload, configuration


def _configmap(name: str, data: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": GUARDED_NAMESPACE}, "data": data})


@pytest.fixture(scope="module")
def webhook(lab):
    """The webhook's pod Ready and its configuration in place; removed afterwards (configuration first)."""
    directory, _ = conformance.ensure_conformance_build()
    conformance.push_images(conformance.Target.of(lab.state_dir), directory)
    tls = mint([CertSpec("webhook", KUBERNETES_CA, "webhook", None, SERVER,
                         service_dns_names("webhook", WEBHOOK_NAMESPACE))])
    workload, configuration = _webhook_objects(tls[KUBERNETES_CA].cert_pem, tls["webhook"].cert_pem,
                                               tls["webhook"].key_pem)
    kubectl_ok(lab, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": workload}))
    # In place before the pod is Ready, so that every API server has it by then: the first request it judges is
    # then the test's, not a race with the API servers' watch of webhook configurations.
    kubectl_ok(lab, "apply", "-f", "-", stdin=json.dumps(configuration))
    try:
        rollout = lab.kubectl("-n", WEBHOOK_NAMESPACE, "rollout", "status", "deployment/webhook", "--timeout=180s")
        assert rollout.returncode == 0, rollout.stdout + rollout.stderr + lab.kubectl(
            "-n", WEBHOOK_NAMESPACE, "describe", "pods").stdout
        yield
    finally:
        lab.kubectl("delete", "validatingwebhookconfiguration", configuration["metadata"]["name"],
                    "--ignore-not-found")
        lab.kubectl("delete", "namespace", GUARDED_NAMESPACE, WEBHOOK_NAMESPACE, "--wait=false")


def _create_through(lab, controller: str, name: str, data: dict[str, str]) -> tuple[int, str]:
    """Create a ConfigMap through one controller's own API server (its admin kubeconfig on 127.0.0.1), once."""
    result = lab.on(controller, f"/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.kubeconfig create -f - "
                                f"<<'EOF'\n{_configmap(name, data)}\nEOF")
    return result.returncode, result.stdout + result.stderr


def test_a_fail_closed_validating_webhook_served_by_a_pod_judges_through_every_api_server_at_the_first_try(
        lab, webhook):
    started = time.monotonic()
    for controller in CONTROLLERS:
        code, output = _create_through(lab, controller, f"denied-via-{controller}", DENIED_DATA)
        assert code != 0 and f'denied the request: {DENIAL}' in output, (controller, output)
        code, output = _create_through(lab, controller, f"allowed-via-{controller}", {"harmless": "yes"})
        assert code == 0, (controller, output)
    print(f"\nsix requests judged by the webhook through three API servers in {time.monotonic() - started:.1f}s")
    stored = kubectl_ok(lab, "-n", GUARDED_NAMESPACE, "get", "configmaps", "-o", "name").split()
    assert sorted(n for n in stored if "-via-" in n) == [f"configmap/allowed-via-{c}" for c in CONTROLLERS]
