"""CIS Kubernetes Benchmark, control plane and etcd: one row per item the program claims, over the rendered 3/3/3
cluster (tests/render/sample.py), so that a regression names the item.

Benchmark: CIS Kubernetes Benchmark v1.12 as kube-bench encodes it in `cfg/cis-1.12` (the newest kube-bench has;
its `version_mapping` stops at Kubernetes 1.34, so a 1.37 cluster is checked with `--benchmark cis-1.12`).
Flags are read the way kube-bench reads them from `ps -ef`: the first `--flag[=value]` in the command line, a bare
`--flag` meaning true. Items that stay FAIL or manual are listed in docs/security.md.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable

import pytest
import yaml

from cluster.render import apiserver_config, control_plane, etcd
from cluster.render.access import cluster_admins_rbac
from cluster.render.addons import apiserver_to_kubelet_rbac
from cluster.render.common import CA_CERT, PKI_DIR
from infra.certs import CLUSTER_ADMINS_GROUP
from tests.render import sample

# The CIS list of strong ciphers (cis-1.12 master.yaml, 1.2.29).
CIS_STRONG_CIPHERS = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


# --- what a controller and an etcd member receive ----------------------------------------------------------------

def command_line(unit: str) -> str:
    """The unit's ExecStart as `ps -ef` shows the running process: one line, flags separated by spaces."""
    text = sample.units()[unit]
    start = text.split("ExecStart=", 1)[1]
    lines = [start.split("\n", 1)[0]]
    rest = start.split("\n")[1:]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(rest.pop(0).strip())
    return " ".join(line.strip() for line in lines)


def flag(unit: str, name: str) -> str | None:
    """kube-bench's findValue (check/test.go): the first match of `(--name)(=|: *)*([^\\s]*)`; bare flag -> "true"."""
    found = re.search(rf"(--{re.escape(name)})(=|: *)*([^\s]*) *", command_line(unit))
    if not found:
        return None
    return found.group(3) or "true"


def files() -> dict[str, object]:
    """Every file a controller and an etcd member receive, by path."""
    rendered = [f for fs in control_plane.control_plane_files(sample.control_plane_inputs()).values() for f in fs]
    rendered += etcd.etcd_files(sample.ETCD[0], sample.ETCD, "k8s-dev", sample.etcd_tls("etcd-0"))
    return {f.path: f for f in rendered}


def file(path: str):
    return files()[path]


def private_root(path: str) -> bool:
    f = file(path)
    return f.mode == "0600" and f.owner == "root"


def config(path: str) -> dict:
    return yaml.safe_load(file(path).content)


def plugins() -> set[str]:
    return set((flag("kube-apiserver", "enable-admission-plugins") or "").split(","))


def admission_plugin_config(name: str) -> dict:
    return next(p["configuration"] for p in config(apiserver_config.ADMISSION_CONFIG)["plugins"] if p["name"] == name)


def kubeconfig_organizations(path: str) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    user = config(path)["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    return [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def rbac_objects() -> list[dict]:
    return [item for manifest in (cluster_admins_rbac(), apiserver_to_kubelet_rbac())
            for item in yaml.safe_load(manifest)["items"]]


def no_wildcards_in_our_rbac() -> bool:
    for obj in rbac_objects():
        for rule in obj.get("rules", []):
            if "*" in rule.get("verbs", []) + rule.get("resources", []) + rule.get("apiGroups", []):
                return False
    return not any(obj["kind"] in ("Role", "ClusterRole") for obj in rbac_objects())


def kube_bench_encryption_providers() -> list[str]:
    """CIS 1.2.28's audit command, run on the rendered file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(file(apiserver_config.ENCRYPTION_CONFIG).content)
        f.flush()
        out = subprocess.run(["sh", "-c", f"grep -A1 'providers:' {f.name} | tail -n1 | grep -o '[A-Za-z]*' "
                              "| sed 's/^/provider=/'"], capture_output=True, text=True, check=True).stdout
    return [line.removeprefix("provider=") for line in out.split()]


KCM = "kube-controller-manager"
ETCD_DATA_SCRIPT = etcd.etcd_user_script()
ADMIN_FILES = (control_plane.ADMIN_KUBECONFIG, control_plane.SUPER_ADMIN_KUBECONFIG)


@dataclass(frozen=True)
class Claim:
    item: str
    where: str
    expectation: str
    holds: Callable[[], bool]


CLAIMS = [
    # 1.1 control plane node files (there are no static pod manifests: 1.1.1-1.1.8 do not apply)
    Claim("1.1.11", "etcd-user step, etcd.service", "data dir 0700",
          lambda: "install -d -m 0700 -o etcd -g etcd /var/lib/etcd" in ETCD_DATA_SCRIPT
          and "StateDirectoryMode=0700" in sample.units()["etcd"]),
    Claim("1.1.12", "etcd-user step, etcd.service", "data dir owned by etcd:etcd, etcd runs as etcd",
          lambda: "-o etcd -g etcd /var/lib/etcd" in ETCD_DATA_SCRIPT and "User=etcd" in sample.units()["etcd"]),
    Claim("1.1.13", "admin.kubeconfig, super-admin.kubeconfig", "mode 0600",
          lambda: all(file(p).mode == "0600" for p in ADMIN_FILES)),
    Claim("1.1.14", "admin.kubeconfig, super-admin.kubeconfig", "owner root",
          lambda: all(file(p).owner == "root" for p in ADMIN_FILES)),
    Claim("1.1.15", "kube-scheduler.kubeconfig", "mode 0600",
          lambda: file("/etc/kubernetes/kube-scheduler.kubeconfig").mode == "0600"),
    Claim("1.1.16", "kube-scheduler.kubeconfig", "owner root",
          lambda: file("/etc/kubernetes/kube-scheduler.kubeconfig").owner == "root"),
    Claim("1.1.17", "kube-controller-manager.kubeconfig", "mode 0600",
          lambda: file("/etc/kubernetes/kube-controller-manager.kubeconfig").mode == "0600"),
    Claim("1.1.18", "kube-controller-manager.kubeconfig", "owner root",
          lambda: file("/etc/kubernetes/kube-controller-manager.kubeconfig").owner == "root"),
    Claim("1.1.19", "/etc/kubernetes/pki/*", "owner root",
          lambda: all(f.owner == "root" for p, f in files().items() if p.startswith(PKI_DIR + "/"))),
    Claim("1.1.20", "/etc/kubernetes/pki/*.crt", "mode 0644 or stricter",
          lambda: all(int(f.mode, 8) & ~0o644 == 0 for p, f in files().items()
                      if p.startswith(PKI_DIR + "/") and p.endswith(".crt"))),
    Claim("1.1.21", "/etc/kubernetes/pki/*.key", "mode 0600",
          lambda: all(f.mode == "0600" for p, f in files().items() if p.startswith(PKI_DIR + "/")
                      and p.endswith(".key"))),
    # 1.2 API server
    Claim("1.2.1", "authentication-config.yaml", "anonymous only for /readyz, /livez, /healthz; no --anonymous-auth",
          lambda: config(apiserver_config.AUTHENTICATION_CONFIG)["anonymous"] == {
              "enabled": True, "conditions": [{"path": "/readyz"}, {"path": "/livez"}, {"path": "/healthz"}]}
          and flag("kube-apiserver", "authentication-config") == apiserver_config.AUTHENTICATION_CONFIG
          and flag("kube-apiserver", "anonymous-auth") is None),
    Claim("1.2.2", "kube-apiserver.service", "no --token-auth-file",
          lambda: flag("kube-apiserver", "token-auth-file") is None),
    Claim("1.2.3", "kube-apiserver.service", "DenyServiceExternalIPs admission",
          lambda: "DenyServiceExternalIPs" in plugins()),
    Claim("1.2.4", "kube-apiserver.service", "--kubelet-client-certificate and --kubelet-client-key",
          lambda: flag("kube-apiserver", "kubelet-client-certificate") == f"{PKI_DIR}/kube-apiserver-kubelet-client.crt"
          and flag("kube-apiserver", "kubelet-client-key") == f"{PKI_DIR}/kube-apiserver-kubelet-client.key"),
    Claim("1.2.5", "kube-apiserver.service", "--kubelet-certificate-authority",
          lambda: flag("kube-apiserver", "kubelet-certificate-authority") == CA_CERT),
    Claim("1.2.6", "kube-apiserver.service", "authorization mode without AlwaysAllow",
          lambda: "AlwaysAllow" not in flag("kube-apiserver", "authorization-mode").split(",")),
    Claim("1.2.7", "kube-apiserver.service", "authorization mode includes Node",
          lambda: "Node" in flag("kube-apiserver", "authorization-mode").split(",")),
    Claim("1.2.8", "kube-apiserver.service", "authorization mode includes RBAC",
          lambda: "RBAC" in flag("kube-apiserver", "authorization-mode").split(",")),
    Claim("1.2.9", "kube-apiserver.service, admission-config.yaml", "EventRateLimit admission, configured",
          lambda: "EventRateLimit" in plugins()
          and flag("kube-apiserver", "admission-control-config-file") == apiserver_config.ADMISSION_CONFIG
          and admission_plugin_config("EventRateLimit")["limits"]),
    Claim("1.2.10", "kube-apiserver.service", "no AlwaysAdmit", lambda: "AlwaysAdmit" not in plugins()),
    Claim("1.2.12", "kube-apiserver.service", "ServiceAccount admission not disabled",
          lambda: flag("kube-apiserver", "disable-admission-plugins") is None),
    Claim("1.2.13", "kube-apiserver.service", "NamespaceLifecycle admission not disabled",
          lambda: flag("kube-apiserver", "disable-admission-plugins") is None),
    Claim("1.2.14", "kube-apiserver.service", "NodeRestriction admission", lambda: "NodeRestriction" in plugins()),
    Claim("1.2.15", "kube-apiserver.service", "--profiling=false",
          lambda: flag("kube-apiserver", "profiling") == "false"),
    Claim("1.2.16", "kube-apiserver.service", "--audit-log-path",
          lambda: flag("kube-apiserver", "audit-log-path") == apiserver_config.AUDIT_LOG),
    Claim("1.2.17", "kube-apiserver.service", "--audit-log-maxage >= 30",
          lambda: int(flag("kube-apiserver", "audit-log-maxage")) >= 30),
    Claim("1.2.18", "kube-apiserver.service", "--audit-log-maxbackup >= 10",
          lambda: int(flag("kube-apiserver", "audit-log-maxbackup")) >= 10),
    Claim("1.2.19", "kube-apiserver.service", "--audit-log-maxsize >= 100",
          lambda: int(flag("kube-apiserver", "audit-log-maxsize")) >= 100),
    Claim("1.2.20", "kube-apiserver.service", "--request-timeout left at its default (60s)",
          lambda: flag("kube-apiserver", "request-timeout") is None),
    Claim("1.2.21", "kube-apiserver.service", "--service-account-lookup not false",
          lambda: flag("kube-apiserver", "service-account-lookup") in (None, "true")),
    Claim("1.2.22", "kube-apiserver.service", "--service-account-key-file",
          lambda: flag("kube-apiserver", "service-account-key-file") == f"{PKI_DIR}/service-account.pub"),
    Claim("1.2.23", "kube-apiserver.service", "--etcd-certfile and --etcd-keyfile",
          lambda: flag("kube-apiserver", "etcd-certfile") and flag("kube-apiserver", "etcd-keyfile")),
    Claim("1.2.24", "kube-apiserver.service", "--tls-cert-file and --tls-private-key-file",
          lambda: flag("kube-apiserver", "tls-cert-file") and flag("kube-apiserver", "tls-private-key-file")),
    Claim("1.2.25", "kube-apiserver.service", "--client-ca-file",
          lambda: flag("kube-apiserver", "client-ca-file") == CA_CERT),
    Claim("1.2.26", "kube-apiserver.service", "--etcd-cafile is the etcd CA",
          lambda: flag("kube-apiserver", "etcd-cafile") == f"{PKI_DIR}/etcd-ca.crt"),
    Claim("1.2.27", "kube-apiserver.service, encryption-config.yaml", "--encryption-provider-config, file 0600 root",
          lambda: flag("kube-apiserver", "encryption-provider-config") == apiserver_config.ENCRYPTION_CONFIG
          and private_root(apiserver_config.ENCRYPTION_CONFIG)),
    Claim("1.2.28", "encryption-config.yaml", "kube-bench's grep finds secretbox as the first provider",
          lambda: kube_bench_encryption_providers() == ["secretbox"]),
    Claim("1.2.29", "kube-apiserver.service", "--tls-cipher-suites only from the CIS list",
          lambda: set(flag("kube-apiserver", "tls-cipher-suites").split(",")) <= CIS_STRONG_CIPHERS),
    Claim("1.2.30", "kube-apiserver.service", "--service-account-extend-token-expiration=false",
          lambda: flag("kube-apiserver", "service-account-extend-token-expiration") == "false"),
    # 1.3 controller manager
    Claim("1.3.1", "kube-controller-manager.service", "--terminated-pod-gc-threshold",
          lambda: 0 < int(flag(KCM, "terminated-pod-gc-threshold")) < 12500),
    Claim("1.3.2", "kube-controller-manager.service", "--profiling=false", lambda: flag(KCM, "profiling") == "false"),
    Claim("1.3.3", "kube-controller-manager.service", "--use-service-account-credentials=true",
          lambda: flag(KCM, "use-service-account-credentials") == "true"),
    Claim("1.3.4", "kube-controller-manager.service", "--service-account-private-key-file",
          lambda: flag(KCM, "service-account-private-key-file") == f"{PKI_DIR}/service-account.key"),
    Claim("1.3.5", "kube-controller-manager.service", "--root-ca-file", lambda: flag(KCM, "root-ca-file") == CA_CERT),
    Claim("1.3.7", "kube-controller-manager.service", "--bind-address=127.0.0.1",
          lambda: flag(KCM, "bind-address") == "127.0.0.1"),
    # 1.4 scheduler
    Claim("1.4.1", "kube-scheduler.yaml, kube-scheduler.service", "enableProfiling: false (and --profiling=false)",
          lambda: config("/etc/kubernetes/kube-scheduler.yaml")["enableProfiling"] is False
          and flag("kube-scheduler", "profiling") == "false"),
    Claim("1.4.2", "kube-scheduler.service", "--bind-address=127.0.0.1",
          lambda: flag("kube-scheduler", "bind-address") == "127.0.0.1"),
    # 2 etcd
    Claim("2.1", "etcd.service", "--cert-file and --key-file",
          lambda: flag("etcd", "cert-file") == "/etc/etcd/pki/server.crt"
          and flag("etcd", "key-file") == "/etc/etcd/pki/server.key"),
    Claim("2.2", "etcd.service", "--client-cert-auth", lambda: flag("etcd", "client-cert-auth") == "true"),
    Claim("2.3", "etcd.service", "no --auto-tls", lambda: flag("etcd", "auto-tls") is None),
    Claim("2.4", "etcd.service", "--peer-cert-file and --peer-key-file",
          lambda: flag("etcd", "peer-cert-file") == "/etc/etcd/pki/peer.crt"
          and flag("etcd", "peer-key-file") == "/etc/etcd/pki/peer.key"),
    Claim("2.5", "etcd.service", "--peer-client-cert-auth", lambda: flag("etcd", "peer-client-cert-auth") == "true"),
    Claim("2.6", "etcd.service", "no --peer-auto-tls", lambda: flag("etcd", "peer-auto-tls") is None),
    Claim("2.7", "etcd.service, /etc/etcd/pki/ca.crt", "etcd trusts its own CA, not the Kubernetes CA",
          lambda: flag("etcd", "trusted-ca-file") == "/etc/etcd/pki/ca.crt"
          and file("/etc/etcd/pki/ca.crt").content != file(CA_CERT).content
          and file("/etc/etcd/pki/ca.crt").content == file(f"{PKI_DIR}/etcd-ca.crt").content),
    # 3 control plane configuration
    Claim("3.1.2", "every kubeconfig", "users and components present certificates, no service-account tokens",
          lambda: all("token" not in config(p)["users"][0]["user"] for p in files() if p.endswith("kubeconfig"))),
    Claim("3.1.3", "kube-apiserver.service", "no bootstrap token authentication",
          lambda: flag("kube-apiserver", "enable-bootstrap-token-auth") is None),
    Claim("3.2.1", "kube-apiserver.service, audit-policy.yaml", "--audit-policy-file, file 0600 root",
          lambda: flag("kube-apiserver", "audit-policy-file") == apiserver_config.AUDIT_POLICY
          and private_root(apiserver_config.AUDIT_POLICY)),
    Claim("3.2.2", "audit-policy.yaml", "Secrets, ConfigMaps, tokens at Metadata before any other rule logs them; "
          "nothing at RequestResponse",
          lambda: audit_level_of("", "secrets", "get", user="system:node:worker-0",
                                 groups=["system:nodes"]) == "Metadata"
          and audit_level_of("", "configmaps", "update") == "Metadata"
          and audit_level_of("authentication.k8s.io", "tokenreviews", "create") == "Metadata"
          and audit_level_of("", "serviceaccounts/token", "create") == "Metadata"
          and all(r["level"] != "RequestResponse" for r in config(apiserver_config.AUDIT_POLICY)["rules"])),
    # 5 policies
    Claim("5.1.1", "apply-rbac step", "cluster-admin bound only to our admins group",
          lambda: [(o["metadata"]["name"], o["subjects"]) for o in rbac_objects()
                   if o["roleRef"]["name"] == "cluster-admin"]
          == [(CLUSTER_ADMINS_GROUP, [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                       "name": CLUSTER_ADMINS_GROUP}])]),
    Claim("5.1.3", "apply-rbac step", "no Role or ClusterRole of ours, so no wildcard of ours",
          no_wildcards_in_our_rbac),
    Claim("5.1.7", "admin.kubeconfig (and the kubeconfig output)", "admin is not system:masters; only super-admin is",
          lambda: kubeconfig_organizations(control_plane.ADMIN_KUBECONFIG) == [CLUSTER_ADMINS_GROUP]
          and kubeconfig_organizations(control_plane.SUPER_ADMIN_KUBECONFIG) == ["system:masters"]),
    Claim("5.2.1", "admission-config.yaml", "PodSecurity enforces baseline by default, warns and audits restricted",
          lambda: "PodSecurity" in plugins() and admission_plugin_config("PodSecurity")["defaults"] == {
              "enforce": "baseline", "enforce-version": "latest", "audit": "restricted",
              "audit-version": "latest", "warn": "restricted", "warn-version": "latest"}),
]


def audit_level_of(group: str, resource: str, verb: str, *, user: str = "someone", groups: tuple = ()) -> str:
    """The level the policy's first matching rule gives a resource request (the API server's own rule order)."""
    subresource = None
    if "/" in resource:
        resource, subresource = resource.split("/", 1)
    for rule in config(apiserver_config.AUDIT_POLICY)["rules"]:
        if rule.get("users") and user not in rule["users"]:
            continue
        if rule.get("userGroups") and not set(groups) & set(rule["userGroups"]):
            continue
        if rule.get("verbs") and verb not in rule["verbs"]:
            continue
        if rule.get("nonResourceURLs"):
            continue
        if rule.get("resources"):
            names = {resource, f"{resource}/{subresource}" if subresource else resource}
            if not any(gr.get("group", "") == group and names & set(gr.get("resources", []))
                       for gr in rule["resources"]):
                continue
        return rule["level"]
    return "None"


def test_every_claimed_item_is_listed_once():
    items = [c.item for c in CLAIMS]
    assert len(items) == len(set(items))


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"CIS-{c.item}")
def test_cis_item(claim: Claim):
    assert claim.holds(), f"CIS {claim.item} ({claim.where}): expected {claim.expectation}"


# --- the new configuration files against the Kubernetes 1.37 types ----------------------------------------------
# The kubernetes Python client has models for API objects (the RBAC below) but none for the API server's own
# configuration files. Those are checked field by field against the Go types at k8s.io/apiserver v0.37.2
# (pkg/apis/apiserver/v1, pkg/apis/audit/v1), k8s.io/pod-security-admission v0.37.2 (admission/api/v1),
# k8s.io/kubernetes v1.37.2 (plugin/pkg/admission/eventratelimit/apis/eventratelimit/v1alpha1) and
# k8s.io/kube-scheduler v0.37.2 (config/v1): an unknown or misspelt field fails here as it would fail the API
# server's strict decoding; the values are checked against the rules of the matching validation packages.

ANY = object()
STRINGS = [str]
TYPE_META = {"apiVersion": str, "kind": str}

AUTHENTICATION_CONFIGURATION = {**TYPE_META, "jwt": [ANY],
                                "anonymous": {"enabled": bool, "conditions": [{"path": str}]}}
ADMISSION_CONFIGURATION = {**TYPE_META, "plugins": [{"name": str, "path": str, "configuration": ANY}]}
EVENT_RATE_LIMIT_CONFIGURATION = {**TYPE_META,
                                  "limits": [{"type": str, "qps": int, "burst": int, "cacheSize": int}]}
POD_SECURITY_CONFIGURATION = {
    **TYPE_META,
    "defaults": {k: str for k in ("enforce", "enforce-version", "audit", "audit-version", "warn", "warn-version")},
    "exemptions": {"usernames": STRINGS, "namespaces": STRINGS, "runtimeClasses": STRINGS},
}
AUDIT_POLICY = {**TYPE_META, "metadata": ANY, "omitStages": STRINGS, "omitManagedFields": bool, "rules": [{
    "level": str, "users": STRINGS, "userGroups": STRINGS, "verbs": STRINGS, "namespaces": STRINGS,
    "nonResourceURLs": STRINGS, "omitStages": STRINGS, "omitManagedFields": bool,
    "resources": [{"group": str, "resources": STRINGS, "resourceNames": STRINGS}],
}]}
AES = {"keys": [{"name": str, "secret": str}]}
ENCRYPTION_CONFIGURATION = {**TYPE_META, "resources": [{"resources": STRINGS, "providers": [{
    "aesgcm": AES, "aescbc": AES, "secretbox": AES, "identity": {}, "kms": ANY}]}]}
KUBE_SCHEDULER_CONFIGURATION = {**TYPE_META, "clientConnection": {"kubeconfig": str},
                                "leaderElection": {"leaderElect": bool}, "enableProfiling": bool}


def schema_errors(value, schema, path: str = "") -> list[str]:
    if schema is ANY:
        return []
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{path or '.'}: expected an object, got {value!r}"]
        errors = [f"{path}.{k}: unknown field" for k in value if k not in schema]
        return errors + [e for k in value if k in schema for e in schema_errors(value[k], schema[k], f"{path}.{k}")]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        return [e for i, item in enumerate(value) for e in schema_errors(item, schema[0], f"{path}[{i}]")]
    if schema is int and isinstance(value, bool) or not isinstance(value, schema):
        return [f"{path}: expected {schema.__name__}, got {value!r}"]
    return []


def new_config_files() -> dict[str, tuple[dict, str, str]]:
    """path -> (schema, apiVersion, kind)."""
    return {
        apiserver_config.AUTHENTICATION_CONFIG: (AUTHENTICATION_CONFIGURATION, "apiserver.config.k8s.io/v1",
                                                 "AuthenticationConfiguration"),
        apiserver_config.ADMISSION_CONFIG: (ADMISSION_CONFIGURATION, "apiserver.config.k8s.io/v1",
                                            "AdmissionConfiguration"),
        apiserver_config.AUDIT_POLICY: (AUDIT_POLICY, "audit.k8s.io/v1", "Policy"),
        apiserver_config.ENCRYPTION_CONFIG: (ENCRYPTION_CONFIGURATION, "apiserver.config.k8s.io/v1",
                                             "EncryptionConfiguration"),
        "/etc/kubernetes/kube-scheduler.yaml": (KUBE_SCHEDULER_CONFIGURATION, "kubescheduler.config.k8s.io/v1",
                                                "KubeSchedulerConfiguration"),
    }


@pytest.mark.parametrize("path", sorted(new_config_files()))
def test_config_file_has_only_fields_of_its_kubernetes_type(path):
    schema, api_version, kind = new_config_files()[path]
    doc = config(path)
    assert (doc["apiVersion"], doc["kind"]) == (api_version, kind)
    assert schema_errors(doc, schema) == []


def test_every_api_server_policy_file_is_private_to_root():
    for path in (apiserver_config.AUTHENTICATION_CONFIG, apiserver_config.ADMISSION_CONFIG,
                 apiserver_config.AUDIT_POLICY, apiserver_config.ENCRYPTION_CONFIG):
        assert private_root(path), path
        assert path in {f.path for f in control_plane.control_plane_files(sample.control_plane_inputs())
                        ["kube-apiserver"]}, f"{path} must restart the API server when it changes"


def test_admission_plugin_configurations_follow_their_types_and_validation():
    plugins_configured = {p["name"]: p for p in config(apiserver_config.ADMISSION_CONFIG)["plugins"]}
    assert set(plugins_configured) <= plugins(), "a configuration for a plugin that is not enabled"
    rate = plugins_configured["EventRateLimit"]["configuration"]
    assert (rate["apiVersion"], rate["kind"]) == ("eventratelimit.admission.k8s.io/v1alpha1", "Configuration")
    assert schema_errors(rate, EVENT_RATE_LIMIT_CONFIGURATION) == []
    # eventratelimit/apis/eventratelimit/validation: limits not empty, known types, qps and burst positive
    assert rate["limits"]
    for limit in rate["limits"]:
        assert limit["type"] in {"Server", "Namespace", "User", "SourceAndObject"}
        assert limit["qps"] > 0 and limit["burst"] > 0 and limit.get("cacheSize", 0) >= 0
    pod_security = plugins_configured["PodSecurity"]["configuration"]
    assert (pod_security["apiVersion"], pod_security["kind"]) == ("pod-security.admission.config.k8s.io/v1",
                                                                  "PodSecurityConfiguration")
    assert schema_errors(pod_security, POD_SECURITY_CONFIGURATION) == []
    defaults = pod_security["defaults"]
    for mode in ("enforce", "audit", "warn"):
        assert defaults[mode] in {"privileged", "baseline", "restricted"}
        assert defaults[f"{mode}-version"] == "latest" or re.fullmatch(r"v1\.\d+", defaults[f"{mode}-version"])
    assert pod_security["exemptions"]["namespaces"] == ["kube-system"]


def test_audit_policy_follows_the_audit_validation_rules():
    """k8s.io/apiserver pkg/apis/audit/validation: known levels and stages; a rule names resources or non-resource
    URLs, never both; non-resource URLs are paths with `*` only at the end."""
    policy = config(apiserver_config.AUDIT_POLICY)
    stages = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
    assert set(policy["omitStages"]) <= stages
    for rule in policy["rules"]:
        assert rule["level"] in {"None", "Metadata", "Request", "RequestResponse"}, rule
        assert set(rule.get("omitStages", [])) <= stages
        if rule.get("nonResourceURLs"):
            assert not rule.get("resources") and not rule.get("namespaces"), rule
            for url in rule["nonResourceURLs"]:
                assert url.startswith("/") and "*" not in url[:-1], url
    assert policy["rules"][-1] == {"level": "Metadata"}, "a catch-all rule last: nothing goes unlogged by accident"
    assert audit_level_of("", "pods", "create") == "Request"
    assert audit_level_of("coordination.k8s.io", "leases", "update") == "None"


def test_authentication_config_follows_its_validation():
    """k8s.io/apiserver pkg/apis/apiserver/validation: conditions only with anonymous enabled; the anonymous
    authenticator matches the request path exactly, so each health path is listed as the probes send it."""
    anonymous = config(apiserver_config.AUTHENTICATION_CONFIG)["anonymous"]
    assert anonymous["enabled"] is True and anonymous["conditions"]
    assert sorted(c["path"] for c in anonymous["conditions"]) == ["/healthz", "/livez", "/readyz"]
    assert "/readyz" in control_plane.apiserver_ready_script(), "the readiness check uses an admitted path"


def test_rbac_objects_load_with_the_kubernetes_client_models():
    from kubernetes import client

    class Response:
        def __init__(self, obj):
            self.data = json.dumps(obj)

    api = client.ApiClient()
    bindings = [api.deserialize(Response(o), "V1ClusterRoleBinding") for o in rbac_objects()]
    assert {b.role_ref.name for b in bindings} == {"cluster-admin", "system:kubelet-api-admin"}
    assert all(b.role_ref.kind == "ClusterRole" and b.subjects for b in bindings)


def test_the_retired_wildcard_role_is_removed_after_its_replacement_is_applied():
    script = control_plane.rbac_apply_script({"a": cluster_admins_rbac(), "b": apiserver_to_kubelet_rbac()})
    assert script.index("delete --ignore-not-found") > script.rindex("apply --server-side")
    assert "clusterrole/system:kube-apiserver-to-kubelet" in script
    assert "--kubeconfig /etc/kubernetes/super-admin.kubeconfig" in script
