"""metrics-server's manifest: verified TLS both ways, and the objects an aggregated API needs."""

from __future__ import annotations

import base64
import json

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cluster.render import metrics_server
from infra.certs import KUBERNETES_CA, METRICS_SERVER
from tests.render import sample


def items() -> dict[str, dict]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in json.loads(sample.metrics_server_manifest())["items"]}


def test_the_api_servers_verify_metrics_server_with_the_cluster_ca():
    apiservice = items()["APIService/v1beta1.metrics.k8s.io"]["spec"]
    assert "insecureSkipTLSVerify" not in apiservice
    ca = x509.load_pem_x509_certificate(base64.b64decode(apiservice["caBundle"]))
    assert ca == x509.load_pem_x509_certificate(sample.pki()[KUBERNETES_CA].cert_pem.encode())
    secret = items()["Secret/metrics-server-tls"]
    serving = x509.load_pem_x509_certificate(secret["stringData"]["tls.crt"].encode())
    serving.verify_directly_issued_by(ca)
    # The API server dials the Service's endpoints and checks the name <service>.<namespace>.svc.
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert f"{apiservice['service']['name']}.{apiservice['service']['namespace']}.svc" in names
    assert list(serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    assert secret["stringData"]["tls.key"] == sample.pki()[METRICS_SERVER].key_pem


def test_metrics_server_verifies_every_kubelet_at_its_internal_ip_with_the_cluster_ca():
    args = items()["Deployment/metrics-server"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if "insecure" in a]
    assert "--kubelet-preferred-address-types=InternalIP" in args
    assert f"--kubelet-certificate-authority={metrics_server.CLUSTER_CA_IN_POD}" in args
    ca = x509.load_pem_x509_certificate(sample.pki()[KUBERNETES_CA].cert_pem.encode())
    for worker in sample.WORKERS:
        kubelet = x509.load_pem_x509_certificate(sample.pki()[worker.name].cert_pem.encode())
        kubelet.verify_directly_issued_by(ca)
        ips = kubelet.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress)
        assert worker.ip in {str(ip) for ip in ips}


def test_it_is_an_aggregated_api_with_the_rights_one_needs_and_no_more():
    objects = items()
    assert objects["RoleBinding/metrics-server-auth-reader"]["metadata"]["namespace"] == "kube-system"
    assert objects["RoleBinding/metrics-server-auth-reader"]["roleRef"]["name"] == \
        "extension-apiserver-authentication-reader"
    assert objects["ClusterRoleBinding/metrics-server:system:auth-delegator"]["roleRef"]["name"] == \
        "system:auth-delegator"
    reads = objects["ClusterRole/system:metrics-server"]["rules"]
    assert {v for r in reads for v in r["verbs"]} == {"get", "list", "watch"}
    assert objects["Namespace/metrics-server"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    service = objects["Service/metrics-server"]["spec"]
    pod = objects["Deployment/metrics-server"]["spec"]["template"]
    assert service["selector"] == pod["metadata"]["labels"]
    assert objects["PodDisruptionBudget/metrics-server"]["spec"]["minAvailable"] == 1


def test_one_replica_has_no_disruption_budget_that_would_block_every_drain():
    one = json.loads(metrics_server.manifest(image="i", replicas=1, ca_pem="ca", cert_pem="c", key_pem="k"))
    assert "PodDisruptionBudget" not in {o["kind"] for o in one["items"]}
