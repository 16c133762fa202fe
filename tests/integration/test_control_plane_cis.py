"""The rendered control plane run for real: etcd, kube-apiserver, kube-controller-manager and kube-scheduler started
from the exact command lines of their units, with the files the `control-plane-files` step writes (written by that
very script), then the CIS claims observed from outside: anonymous access only to health endpoints, the admin group
powerless until `apply-rbac` (run as the break-glass identity) binds it, Pod Security and DenyServiceExternalIPs
admission, Secrets encrypted with secretbox, the audit log, profiling off, the cipher suites.

Everything runs in a private mount and network namespace (`unshare`, no named namespace, so nothing collides with
the other integration tests): tmpfs over /etc/kubernetes, /etc/etcd, /etc/systemd/system, /var/lib/etcd,
/var/log/kubernetes and /usr/local/bin; the member and the controller use 10.43.0.10 and 10.43.0.20 on that
namespace's loopback (the API server refuses to advertise a 127.x address).

Binaries: the pinned releases built from their Go modules (tests/support/binaries.py, cached by the lab's build).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cluster.render import access, addons, control_plane, etcd
from cluster.render.common import write_files_script
from infra.certs import ETCD_CA, FRONT_PROXY_CA, FRONT_PROXY_CLIENT, KUBERNETES_CA, Host
from tests.support.binaries import binaries_or_reason
from tests.support.pki import mint_cluster
from simulator.realistic_tls import private_key_outputs

pytestmark = pytest.mark.integration

BINARIES = ("etcd", "etcdctl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
MEMBER = etcd.Member("etcd-0", "10.43.0.10")
CONTROLLER = Host("controller-0", "10.43.0.20")


def find_binaries() -> dict[str, str]:
    found, _ = binaries_or_reason(BINARIES)
    return {name: str(path) for name, path in found.items()}


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for private mount and network namespaces"
    for tool in ("unshare", "ip", "curl", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    _, reason = binaries_or_reason(BINARIES)
    return reason


def command_line(unit_text: str) -> str:
    start = unit_text.split("ExecStart=", 1)[1].split("\n")
    lines = [start[0]]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(start[len(lines)].strip())
    return " ".join(line.strip() for line in lines)


def prepare(work: Path) -> None:
    pki = mint_cluster([Host(MEMBER.name, MEMBER.ip)], [CONTROLLER], [])
    sa = private_key_outputs({"algorithm": "RSA", "rsaBits": 2048})
    inputs = control_plane.ControlPlaneInputs(
        cluster_name="cis", node_name=CONTROLLER.name, node_ip=CONTROLLER.ip, etcd_servers=etcd.client_urls([MEMBER]),
        service_cidr="10.32.0.0/24", pod_cidr="10.200.0.0/16", pod_cidr_mask_size=24,
        ca_pem=pki[KUBERNETES_CA].cert_pem, etcd_ca_pem=pki[ETCD_CA].cert_pem,
        apiserver_cert_pem=pki["kube-apiserver"].cert_pem, apiserver_key_pem=pki["kube-apiserver"].key_pem,
        kubelet_client_cert_pem=pki["kube-apiserver-kubelet-client"].cert_pem,
        kubelet_client_key_pem=pki["kube-apiserver-kubelet-client"].key_pem,
        etcd_client_cert_pem=pki["kube-apiserver-etcd-client"].cert_pem,
        etcd_client_key_pem=pki["kube-apiserver-etcd-client"].key_pem,
        service_account_key_pem=sa["privateKeyPem"], service_account_pub_pem=sa["publicKeyPem"],
        controller_manager_cert_pem=pki["kube-controller-manager"].cert_pem,
        controller_manager_key_pem=pki["kube-controller-manager"].key_pem,
        scheduler_cert_pem=pki["kube-scheduler"].cert_pem, scheduler_key_pem=pki["kube-scheduler"].key_pem,
        admin_cert_pem=pki["admin"].cert_pem, admin_key_pem=pki["admin"].key_pem,
        super_admin_cert_pem=pki["super-admin"].cert_pem, super_admin_key_pem=pki["super-admin"].key_pem,
        deployer_cert_pem=pki["deployer"].cert_pem, deployer_key_pem=pki["deployer"].key_pem,
        front_proxy_ca_pem=pki[FRONT_PROXY_CA].cert_pem, front_proxy_client_cert_pem=pki[FRONT_PROXY_CLIENT].cert_pem,
        front_proxy_client_key_pem=pki[FRONT_PROXY_CLIENT].key_pem,
        encryption_key_b64=base64.b64encode(os.urandom(32)).decode(), holds_break_glass=True)
    tls = etcd.EtcdTls(pki[ETCD_CA].cert_pem, pki["etcd-0-server"].cert_pem, pki["etcd-0-server"].key_pem,
                       pki["etcd-0-peer"].cert_pem, pki["etcd-0-peer"].key_pem)
    by_path = {}
    for f in [f for fs in control_plane.control_plane_files(inputs).values() for f in fs] + \
            etcd.etcd_files(MEMBER, [MEMBER], "cis", tls):
        by_path.setdefault(f.path, f)
    (work / "write-files.sh").write_text(write_files_script(list(by_path.values())))
    (work / "rbac.sh").write_text(control_plane.rbac_apply_script(
        {"the cluster-admins binding": access.cluster_admins_rbac(), "the deployers binding": access.deployers_rbac(),
         "the API server's kubelet access": addons.apiserver_to_kubelet_rbac()}))
    (work / "apiserver-ready.sh").write_text(control_plane.apiserver_ready_script(120))
    units = dict(control_plane.control_plane_units(inputs), etcd=etcd.etcd_unit(MEMBER, [MEMBER], "cis"))
    for name, text in units.items():
        (work / f"{name}.cmd").write_text(command_line(text) + "\n")
    for name in ("admin", "super-admin", "deployer", FRONT_PROXY_CLIENT):
        (work / f"{name}.crt").write_text(pki[name].cert_pem)
        (work / f"{name}.key").write_text(pki[name].key_pem)
    (work / "bin").mkdir()
    for name, path in find_binaries().items():
        shutil.copy(path, work / "bin" / name)
    (work / "observe.py").write_text(OBSERVE)
    (work / "run.sh").write_text(RUN.replace("@WORK@", str(work)))


RUN = """#!/bin/bash
# Inside `unshare --mount --propagation private --net`.
set -uo pipefail
W=@WORK@
for d in /etc/kubernetes /etc/etcd /etc/systemd/system /var/log/kubernetes /var/lib/etcd /usr/local/bin; do
  mkdir -p "$d" && mount -t tmpfs tmpfs "$d"
done
ip link set lo up
ip addr add 10.43.0.10/32 dev lo
ip addr add 10.43.0.20/32 dev lo
bash "$W/write-files.sh" >/dev/null
chmod 0700 /var/lib/etcd
cp "$W"/bin/* /usr/local/bin/
$(cat "$W/etcd.cmd") >"$W/etcd.log" 2>&1 &
$(cat "$W/kube-apiserver.cmd") >"$W/kube-apiserver.log" 2>&1 &
bash "$W/apiserver-ready.sh" >"$W/ready.log" 2>&1 || { echo '{"ready": false}'; exit 0; }
$(cat "$W/kube-controller-manager.cmd") >"$W/kube-controller-manager.log" 2>&1 &
$(cat "$W/kube-scheduler.cmd") >"$W/kube-scheduler.log" 2>&1 &
python3 "$W/observe.py" "$W"
kill $(jobs -p) 2>/dev/null
"""

# Runs inside the namespaces with the standard library only; prints one JSON object of observations.
OBSERVE = r'''
import json, os, subprocess, sys, time
W = sys.argv[1]
API = "https://127.0.0.1:6443"
seen = {"ready": True}

def call(path, who=None, method="GET", body=None, headers=False, send=()):
    cmd = ["curl", "-s", "-o", f"{W}/body", "-D", f"{W}/headers", "-w", "%{http_code}", "--cacert",
           "/etc/kubernetes/pki/ca.crt", "-X", method, API + path]
    for header in send:
        cmd += ["-H", header]
    if who:
        cmd += ["--cert", f"{W}/{who}.crt", "--key", f"{W}/{who}.key"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    code = int(subprocess.run(cmd, capture_output=True, text=True).stdout or 0)
    text = open(f"{W}/body").read()
    return (code, text, open(f"{W}/headers").read()) if headers else (code, text)

deadline = time.time() + 120
while call("/api/v1/namespaces/default/serviceaccounts/default", "super-admin")[0] != 200 and time.time() < deadline:
    time.sleep(2)   # the controller-manager creates it; pods are admitted only once it exists
for path in ("/readyz", "/livez", "/healthz", "/api", "/version", "/api/v1/namespaces"):
    seen[f"anonymous {path}"] = call(path)[0]
seen["admin before rbac"] = call("/api/v1/namespaces", "admin")[0]
seen["super-admin"] = call("/api/v1/namespaces", "super-admin")[0]
seen["apiserver pprof"] = call("/debug/pprof/", "super-admin")[0]
old_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:kube-apiserver-to-kubelet"},
            "rules": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["*"]}]}
old_binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "system:kube-apiserver-to-kubelet"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "system:kube-apiserver-to-kubelet"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "kube-apiserver-kubelet-client"}]}
seen["retired objects created"] = [call("/apis/rbac.authorization.k8s.io/v1/clusterroles", "super-admin", "POST", old_role)[0],
                                   call("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "super-admin", "POST", old_binding)[0]]
runs = [subprocess.run(["bash", f"{W}/rbac.sh"], capture_output=True, text=True) for _ in range(2)]
seen["rbac runs"] = [r.returncode for r in runs]
seen["rbac output"] = runs[0].stdout + runs[0].stderr
seen["admin after rbac"] = call("/api/v1/namespaces", "admin")[0]
seen["retired objects after rbac"] = [
    call("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-apiserver-to-kubelet", "admin")[0],
    call("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:kube-apiserver-to-kubelet", "admin")[0]]
review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
          "spec": {"user": "kube-apiserver-kubelet-client",
                   "resourceAttributes": {"verb": "create", "resource": "nodes", "subresource": "proxy"}}}
code, text = call("/apis/authorization.k8s.io/v1/subjectaccessreviews", "admin", "POST", review)
seen["kubelet client may exec"] = code == 201 and json.loads(text)["status"].get("allowed") is True
privileged = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged"},
              "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
seen["privileged pod in default"] = call("/api/v1/namespaces/default/pods", "admin", "POST", privileged)[:2]
seen["privileged pod in kube-system"] = call("/api/v1/namespaces/kube-system/pods", "admin", "POST", privileged)[0]
plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
code, _, headers = call("/api/v1/namespaces/default/pods", "admin", "POST", plain, headers=True)
seen["baseline pod"] = [code, [h for h in headers.splitlines() if h.lower().startswith("warning")]]
service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external"},
           "spec": {"ports": [{"port": 80}], "externalIPs": ["10.43.0.99"]}}
seen["service with externalIPs"] = call("/api/v1/namespaces/default/services", "admin", "POST", service)[:2]
secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cis"}, "stringData": {"k": "TOPSECRETVALUE"}}
code, text = call("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", "admin")
data = json.loads(text).get("data", {}) if code == 200 else {}
seen["aggregation layer published"] = {k: v for k, v in data.items() if k.startswith("requestheader-")
                                       and not k.endswith("-ca-file")}
seen["aggregation layer CA is the front-proxy CA"] = (
    data.get("requestheader-client-ca-file", "").strip() == open("/etc/kubernetes/pki/front-proxy-ca.crt").read().strip())
def who_am_i(cert):
    code, text = call("/apis/authentication.k8s.io/v1/selfsubjectreviews", cert, "POST",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                      send=("X-Remote-User: alice", "X-Remote-Group: k8s-from-scratch:cluster-admins"))
    return [code, json.loads(text).get("status", {}).get("userInfo", {}).get("username")] if code == 201 else [code]
seen["front proxy speaks for the user in its headers"] = who_am_i("front-proxy-client")
seen["a cluster CA certificate cannot"] = who_am_i("admin")
seen["secret created"] = call("/api/v1/namespaces/default/secrets", "admin", "POST", secret)[0]
raw = subprocess.run(["/usr/local/bin/etcdctl", "--endpoints", "https://10.43.0.10:2379", "--cacert",
                      "/etc/etcd/pki/ca.crt", "--cert", "/etc/etcd/pki/server.crt", "--key", "/etc/etcd/pki/server.key",
                      "get", "/registry/secrets/default/cis", "--print-value-only"], capture_output=True).stdout
seen["secret in etcd"] = raw[:26].decode("latin-1")
seen["secret value in etcd"] = b"TOPSECRETVALUE" in raw
def handshake(cipher):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:6443", "-tls1_2", "-cipher", cipher],
                          input="", capture_output=True, text=True).returncode == 0
seen["tls ECDHE-ECDSA-AES128-GCM-SHA256"] = handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
seen["tls ECDHE-ECDSA-AES128-SHA"] = handshake("ECDHE-ECDSA-AES128-SHA")
time.sleep(2)
log = "/var/log/kubernetes/audit/audit.log"
text = open(log).read()
entries = [json.loads(line) for line in text.splitlines()]
seen["audit mode"] = oct(os.stat(log).st_mode & 0o777)
seen["audit secret levels"] = sorted({e["level"] for e in entries if e.get("objectRef", {}).get("resource") == "secrets"})
seen["audit holds secret value"] = "TOPSECRETVALUE" in text
seen["audit pod create levels"] = sorted({e["level"] for e in entries if e.get("objectRef", {}).get("resource") == "pods"
                                          and e["verb"] == "create"})
seen["audit health probes"] = sum(e.get("requestURI", "").startswith(("/readyz", "/livez", "/healthz")) for e in entries)
seen["audit stages"] = sorted({e["stage"] for e in entries})
# Review r2 N12: the people's admin group revoked (its binding deleted) leaves the program's own identity working.
seen["deployer after rbac"] = call("/api/v1/namespaces", "deployer")[0]
seen["cluster-admins binding deleted"] = call(
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/k8s-from-scratch:cluster-admins", "super-admin", "DELETE")[0]
time.sleep(1)
seen["admin after revocation"] = call("/api/v1/namespaces", "admin")[0]
seen["deployer after revocation"] = call("/api/v1/namespaces", "deployer")[0]
role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "deployer-check"},
        "rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["list", "watch"]}]}
seen["deployer applies a ClusterRole after revocation"] = call(
    "/apis/rbac.authorization.k8s.io/v1/clusterroles", "deployer", "POST", role)[0]
for port, name in ((10257, "kube-controller-manager"), (10259, "kube-scheduler")):
    def get(path, cert=()):
        return subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", *cert,
                               f"https://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    seen[f"{name} healthz"] = get("/healthz")
    seen[f"{name} pprof"] = get("/debug/pprof/", ("--cert", f"{W}/super-admin.crt", "--key", f"{W}/super-admin.key"))
print(json.dumps(seen))
'''


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    reason = why_not()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("control-plane-cis")
    prepare(work)
    result = subprocess.run(["timeout", "600", "unshare", "--mount", "--propagation", "private", "--net", "bash",
                             str(work / "run.sh")], capture_output=True, text=True)
    logs = "".join(f"\n--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-15:])
                   for p in sorted(work.glob("*.log")))
    last = (result.stdout.strip().splitlines() or ["{}"])[-1]
    seen = json.loads(last) if last.startswith("{") else {}
    assert seen.get("ready"), f"the control plane did not come up: {result.stdout}{result.stderr}{logs}"
    return seen


def test_anonymous_requests_reach_only_the_health_endpoints(observed):
    """CIS 1.2.1 by AuthenticationConfiguration."""
    assert [observed[f"anonymous {p}"] for p in ("/readyz", "/livez", "/healthz")] == [200, 200, 200]
    assert [observed[f"anonymous {p}"] for p in ("/api", "/version", "/api/v1/namespaces")] == [401, 401, 401]


def test_admin_group_is_powerless_until_the_break_glass_identity_binds_it(observed):
    """CIS 5.1.7: the admin is not system:masters; apply-rbac runs as super-admin, idempotently."""
    assert observed["admin before rbac"] == 403 and observed["super-admin"] == 200
    assert observed["rbac runs"] == [0, 0], observed["rbac output"]
    assert observed["admin after rbac"] == 200


def test_the_kubelet_client_reaches_kubelets_through_the_built_in_role_and_the_wildcard_role_is_gone(observed):
    """CIS 5.1.3, upgrade case included: an earlier version's role and binding are removed."""
    assert observed["retired objects created"] == [201, 201]
    assert observed["kubelet client may exec"] is True
    assert observed["retired objects after rbac"] == [404, 404]


def test_pod_security_default_enforces_baseline_warns_restricted_and_exempts_kube_system(observed):
    """CIS 5.2.1."""
    code, body = observed["privileged pod in default"]
    assert code == 403 and 'violates PodSecurity "baseline:latest"' in json.loads(body)["message"]
    code, warnings = observed["baseline pod"]
    assert code == 201 and any('would violate PodSecurity \\"restricted:latest\\"' in w for w in warnings), warnings
    assert observed["privileged pod in kube-system"] == 201


def test_services_with_external_ips_are_refused(observed):
    """CIS 1.2.3."""
    code, body = observed["service with externalIPs"]
    assert code == 403 and "Use of external IPs is denied" in json.loads(body)["message"]


def test_secrets_are_stored_encrypted_with_secretbox(observed):
    """CIS 1.2.27, 1.2.28."""
    assert observed["secret created"] == 201
    assert observed["secret in etcd"] == "k8s:enc:secretbox:v1:key1:" and not observed["secret value in etcd"]


def test_the_audit_log_records_by_the_policy(observed):
    """CIS 1.2.16, 3.2.1, 3.2.2."""
    assert observed["audit mode"] == "0o600"
    assert observed["audit secret levels"] == ["Metadata"] and not observed["audit holds secret value"]
    assert observed["audit pod create levels"] == ["Request"]
    assert observed["audit health probes"] == 0 and "RequestReceived" not in observed["audit stages"]


def test_profiling_is_off_and_the_components_are_healthy(observed):
    """CIS 1.2.15, 1.3.2, 1.4.1."""
    assert observed["apiserver pprof"] == 404
    for name in ("kube-controller-manager", "kube-scheduler"):
        assert observed[f"{name} healthz"] == "200" and observed[f"{name} pprof"] == "404", name


def test_the_aggregation_layer_trusts_the_front_proxy_ca_and_only_it(observed):
    """The API server proxies to aggregated APIs (metrics-server) as front-proxy-client and publishes the request
    header settings they read; a certificate of the cluster CA sending the same headers is still itself."""
    assert observed["aggregation layer published"] == {
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-username-headers": '["X-Remote-User"]'}
    assert observed["aggregation layer CA is the front-proxy CA"] is True
    assert observed["front proxy speaks for the user in its headers"] == [201, "alice"]
    assert observed["a cluster CA certificate cannot"] == [201, "admin"]


def test_only_strong_tls_cipher_suites_are_accepted(observed):
    """CIS 1.2.29."""
    assert observed["tls ECDHE-ECDSA-AES128-GCM-SHA256"] is True
    assert observed["tls ECDHE-ECDSA-AES128-SHA"] is False


def test_n12_revoking_the_admin_group_leaves_the_programs_own_identity_working(observed):
    """Review r2 N12: the program's steps run as the deployer, bound by a binding of its own."""
    assert observed["deployer after rbac"] == 200
    assert observed["cluster-admins binding deleted"] == 200
    assert observed["admin after revocation"] == 403
    assert observed["deployer after revocation"] == 200
    assert observed["deployer applies a ClusterRole after revocation"] == 201
