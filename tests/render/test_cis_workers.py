"""The CIS Kubernetes Benchmark items this program claims on workers and for its add-on and smoke-test pods, one
row each over the files every worker of the 3/3/3 sample receives, so that a regression names the item.

Item numbers are those of CIS Kubernetes Benchmark v1.12 as kube-bench encodes it (cfg/cis-1.12/node.yaml and
policies.yaml); kube-bench finds these files at the paths it searches (/var/lib/kubelet/config.yaml,
/etc/systemd/system/kubelet.service, /var/lib/kubelet/kubeconfig). The items that stay FAIL are in docs/security.md's
"Workers" table. The Pod Security and config-schema checks at the end ask the Kubernetes libraries of
the release the cluster runs (tests/render/kubecheck).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from cluster.render import addons
from cluster.render.workers import cni, prepare_os
from cluster.render.workers import kube_proxy as kube_proxy_render
from cluster.render.workers import kubelet as kubelet_render
from cluster.render.common import CA_CERT, NodeFile
from tests.render import sample

ABSENT = "(absent)"
KUBELET_UNIT = "/etc/systemd/system/kubelet.service"
PROXY_KUBECONFIG = "/var/lib/kube-proxy/kubeconfig"
WORKER_UNITS = [KUBELET_UNIT, "/etc/systemd/system/kube-proxy.service", "/etc/systemd/system/containerd.service",
                "/etc/systemd/system/k8s-cni-config.service"]
WORKER_CONFIGS = [kubelet_render.KUBELET_CONFIG, kube_proxy_render.KUBE_PROXY_CONFIG, "/etc/containerd/config.toml",
                  "/etc/crictl.yaml", "/etc/haproxy/haproxy.cfg", cni.CNI_TEMPLATE]
# cfg/cis-1.12/node.yaml 4.2.12: the suites the benchmark accepts.
CIS_STRONG_CIPHERS = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
# What the kubelet checks with protectKernelDefaults (k8s.io/component-helpers node/util/sysctl, v0.37.2).
KUBELET_KERNEL_DEFAULTS = {"vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10",
                           "kernel.panic_on_oops": "1", "kernel.keys.root_maxkeys": "1000000",
                           "kernel.keys.root_maxbytes": "25000000"}

Files = dict[str, NodeFile]


def dig(doc: dict, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return ABSENT
        doc = doc[key]
    return doc


def mode(path: str) -> Callable[[Files], Any]:
    return lambda f: f[path].mode


def owner(path: str) -> Callable[[Files], Any]:
    return lambda f: f[path].owner


def kubelet(*keys: str) -> Callable[[Files], Any]:
    return lambda f: dig(json.loads(f[kubelet_render.KUBELET_CONFIG].content), *keys)


def kube_proxy(*keys: str) -> Callable[[Files], Any]:
    return lambda f: dig(json.loads(f[kube_proxy_render.KUBE_PROXY_CONFIG].content), *keys)


def exec_start_flags(unit: str) -> Callable[[Files], Any]:
    return lambda f: sorted(re.findall(r"--([\w-]+)", f[unit].content.split("ExecStart=", 1)[1].split("\n\n")[0]))


def sysctls_set_by_prepare_os(_: Files) -> dict[str, str]:
    text = prepare_os.os_prep_script().split("/etc/sysctl.d/90-kubernetes.conf <<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    found = dict(line.split(" = ") for line in text.splitlines())
    return {k: v for k, v in found.items() if k in KUBELET_KERNEL_DEFAULTS}


@dataclass(frozen=True)
class Claim:
    item: str                          # CIS Kubernetes Benchmark item (v1.12 unless the text says otherwise)
    where: str                         # the file the item is about
    what: str                          # the exact field, flag or mode
    actual: Callable[[Files], Any]
    expected: Any


WORKER_CLAIMS = [
    Claim("4.1.1", KUBELET_UNIT, "mode", mode(KUBELET_UNIT), "0600"),
    Claim("4.1.2", KUBELET_UNIT, "owner", owner(KUBELET_UNIT), "root"),
    Claim("4.1.3", PROXY_KUBECONFIG, "mode", mode(PROXY_KUBECONFIG), "0600"),
    Claim("4.1.4", PROXY_KUBECONFIG, "owner", owner(PROXY_KUBECONFIG), "root"),
    Claim("4.1.5", kubelet_render.KUBELET_KUBECONFIG, "mode", mode(kubelet_render.KUBELET_KUBECONFIG), "0600"),
    Claim("4.1.6", kubelet_render.KUBELET_KUBECONFIG, "owner", owner(kubelet_render.KUBELET_KUBECONFIG), "root"),
    Claim("4.1.7", CA_CERT, "mode (644 or stricter)", mode(CA_CERT), "0644"),
    Claim("4.1.8", CA_CERT, "owner", owner(CA_CERT), "root"),
    Claim("4.1.9", kubelet_render.KUBELET_CONFIG, "mode", mode(kubelet_render.KUBELET_CONFIG), "0600"),
    Claim("4.1.9 (every worker config)", "configs", "modes",
          lambda f: {p: f[p].mode for p in WORKER_CONFIGS}, {p: "0600" for p in WORKER_CONFIGS}),
    Claim("4.1.10", kubelet_render.KUBELET_CONFIG, "owner", owner(kubelet_render.KUBELET_CONFIG), "root"),
    Claim("4.1.2 (every worker unit)", "units", "owners",
          lambda f: {u: f[u].owner for u in WORKER_UNITS}, {u: "root" for u in WORKER_UNITS}),
    Claim("1.1.9/1.1.10 (CNI files, on workers)", cni.CNI_TEMPLATE, "mode and owner",
          lambda f: (f[cni.CNI_TEMPLATE].mode, f[cni.CNI_TEMPLATE].owner), ("0600", "root")),
    Claim("1.1.9 (CNI files, on workers)", cni.CNI_CONFIG_SYNC, "writes the conflist under umask 077",
          lambda f: "\numask 077\n" in f[cni.CNI_CONFIG_SYNC].content, True),
    Claim("4.2.1", kubelet_render.KUBELET_CONFIG, "authentication.anonymous.enabled",
          kubelet("authentication", "anonymous", "enabled"), False),
    Claim("4.2.2", kubelet_render.KUBELET_CONFIG, "authorization.mode", kubelet("authorization", "mode"), "Webhook"),
    Claim("4.2.3", kubelet_render.KUBELET_CONFIG, "authentication.x509.clientCAFile",
          kubelet("authentication", "x509", "clientCAFile"), CA_CERT),
    Claim("4.2.4", kubelet_render.KUBELET_CONFIG, "readOnlyPort", kubelet("readOnlyPort"), 0),
    # Deprecated and without effect in 1.37 (kubelet config/v1beta1 types.go); unset means the 4h default.
    Claim("4.2.5", kubelet_render.KUBELET_CONFIG, "streamingConnectionIdleTimeout not 0",
          kubelet("streamingConnectionIdleTimeout"), ABSENT),
    Claim("4.2.6", kubelet_render.KUBELET_CONFIG, "makeIPTablesUtilChains", kubelet("makeIPTablesUtilChains"), True),
    Claim("4.2.7", KUBELET_UNIT, "no --hostname-override", exec_start_flags(KUBELET_UNIT),
          ["config", "kubeconfig", "node-ip", "v"]),
    Claim("4.2.7 (kube-proxy)", kube_proxy_render.KUBE_PROXY_CONFIG, "no hostnameOverride",
          kube_proxy("hostnameOverride"), ABSENT),
    Claim("4.2.8", kubelet_render.KUBELET_CONFIG, "eventRecordQPS", kubelet("eventRecordQPS"), 50),
    Claim("4.2.9", kubelet_render.KUBELET_CONFIG, "tlsCertFile, tlsPrivateKeyFile",
          lambda f: (kubelet("tlsCertFile")(f), kubelet("tlsPrivateKeyFile")(f)),
          ("/var/lib/kubelet/kubelet.crt", "/var/lib/kubelet/kubelet.key")),
    Claim("4.2.9 (the files exist)", kubelet_render.KUBELET_CONFIG, "tls files are delivered",
          lambda f: {kubelet("tlsCertFile")(f), kubelet("tlsPrivateKeyFile")(f)} <= set(f), True),
    # The benchmark's test passes on "not set to false"; the kubelet does not rotate (no CSR signer): docs/security.md.
    Claim("4.2.10", kubelet_render.KUBELET_CONFIG, "rotateCertificates not set to false", kubelet("rotateCertificates"),
          ABSENT),
    Claim("4.2.11", kubelet_render.KUBELET_CONFIG, "no featureGates (RotateKubeletServerCertificate not false)",
          kubelet("featureGates"), ABSENT),
    Claim("4.2.12", kubelet_render.KUBELET_CONFIG, "tlsCipherSuites", kubelet("tlsCipherSuites"), CIS_STRONG_CIPHERS),
    Claim("4.2.13", kubelet_render.KUBELET_CONFIG, "podPidsLimit", kubelet("podPidsLimit"), 4096),
    Claim("4.2.14", kubelet_render.KUBELET_CONFIG, "seccompDefault", kubelet("seccompDefault"), True),
    Claim("4.2.6 of v1.8 (protect-kernel-defaults)", kubelet_render.KUBELET_CONFIG, "protectKernelDefaults",
          kubelet("protectKernelDefaults"), True),
    Claim("4.2.6 of v1.8 (protect-kernel-defaults)", "prepare-os", "sysctls the kubelet checks",
          sysctls_set_by_prepare_os, KUBELET_KERNEL_DEFAULTS),
    Claim("4.3.1", kube_proxy_render.KUBE_PROXY_CONFIG, "metricsBindAddress (default 127.0.0.1:10249)",
          kube_proxy("metricsBindAddress"), ABSENT),
]


@pytest.mark.parametrize("index", range(len(sample.WORKERS)), ids=[w.name for w in sample.WORKERS])
@pytest.mark.parametrize("claim", WORKER_CLAIMS, ids=[f"{c.item} {c.what}" for c in WORKER_CLAIMS])
def test_worker_claim(claim, index):
    files = sample.worker_files_by_path(index)
    got = claim.actual(files)
    assert got == claim.expected, \
        f"CIS {claim.item} on {sample.WORKERS[index].name}: {claim.where} {claim.what} is {got!r}, " \
        f"want {claim.expected!r}"


# --- add-on and smoke-test pods ------------------------------------------------------------------------------------

def objects() -> list[dict]:
    dns_check = addons.dns_check_script(image="busybox:1.37", kubernetes_service_ip="10.32.0.1",
                                        external_name="sts.amazonaws.com")
    docs = re.findall(r"<<'K8S_FROM_SCRATCH_EOF'[^\n]*\n(.*?)\nK8S_FROM_SCRATCH_EOF", dns_check, re.S)
    return [*json.loads(sample.coredns())["items"], *json.loads(sample.nginx())["items"],
            *json.loads(sample.metrics_server_manifest())["items"], *(json.loads(d) for d in docs)]


def pods() -> dict[str, dict]:
    """name -> {metadata, spec, namespace} for every pod template and pod this program creates."""
    found = {}
    for o in objects():
        if o["kind"] == "Deployment":
            found[o["metadata"]["name"]] = {"namespace": o["metadata"]["namespace"], **o["spec"]["template"]}
        elif o["kind"] == "Pod":
            found[o["metadata"]["name"]] = {"namespace": o["metadata"]["namespace"], "metadata": o["metadata"],
                                            "spec": o["spec"]}
    return found


def namespaces() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects() if o["kind"] == "Namespace"}


POD_CLAIMS = [
    ("5.6.4 (5.7.4 of v1.8)", "the default namespace is not used", lambda: sorted({p["namespace"] for p in pods().values()}),
     ["dns-check", "kube-system", "metrics-server", "smoke-test"]),
    ("5.6.1", "own namespaces enforce, warn and audit `restricted`",
     lambda: {n: {k: v for k, v in ns["metadata"]["labels"].items() if k.startswith("pod-security")}
              for n, ns in namespaces().items()},
     {n: {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
      for n in ("dns-check", "metrics-server", "smoke-test")}),
    ("5.6.2", "seccompProfile RuntimeDefault", lambda: {n: p["spec"]["securityContext"]["seccompProfile"]["type"]
                                                        for n, p in pods().items()},
     {"coredns": "RuntimeDefault", "nginx": "RuntimeDefault", "dns-check": "RuntimeDefault",
      "metrics-server": "RuntimeDefault"}),
    ("5.1.6", "no service account token where none is used",
     lambda: {n: p["spec"].get("automountServiceAccountToken", ABSENT) for n, p in pods().items()},
     {"coredns": ABSENT, "nginx": False, "dns-check": False, "metrics-server": ABSENT}),
    ("5.2.7", "runAsNonRoot", lambda: {n: p["spec"]["securityContext"]["runAsNonRoot"] for n, p in pods().items()},
     {"coredns": True, "nginx": True, "dns-check": True, "metrics-server": True}),
]


@pytest.mark.parametrize("item, what, actual, expected", POD_CLAIMS, ids=[f"{c[0]} {c[1]}" for c in POD_CLAIMS])
def test_pod_claim(item, what, actual, expected):
    got = actual()
    assert got == expected, f"CIS {item}: {what} is {got!r}, want {expected!r}"


def test_nginx_smoke_test_still_answers_on_node_port_30080():
    service = next(o for o in json.loads(sample.nginx())["items"] if o["kind"] == "Service")
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": addons.NGINX_PORT, "nodePort": 30080}]
    deployment = next(o for o in json.loads(sample.nginx())["items"] if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": addons.NGINX_PORT}]
    assert f"listen {addons.NGINX_PORT};" in addons.NGINX_CONF


# --- the Kubernetes libraries themselves -----------------------------------------------------------------------------

KUBECHECK_SOURCE = Path(__file__).parent / "kubecheck"
KUBECHECK_GO = (1, 26)          # the `go` line of kubecheck/go.mod (what k8s.io/* v0.37 require)


@pytest.fixture(scope="session")
def kubecheck(tmp_path_factory) -> Path:
    """Build tests/render/kubecheck (Go, against the Kubernetes libraries of the release the cluster runs)."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (needed to build tests/render/kubecheck)")
    version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if found < KUBECHECK_GO:
        pytest.skip(f"tests/render/kubecheck needs Go {'.'.join(map(str, KUBECHECK_GO))} or newer, found {version}")
    binary = tmp_path_factory.mktemp("kubecheck") / "kubecheck"
    result = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=KUBECHECK_SOURCE, capture_output=True,
                            text=True, timeout=1200, env={**os.environ, "GOTOOLCHAIN": "local"})
    assert result.returncode == 0, result.stderr
    return binary


def test_add_on_and_smoke_pods_meet_the_restricted_pod_security_standard(kubecheck):
    payload = [{"name": n, "metadata": p["metadata"], "spec": p["spec"]} for n, p in pods().items()]
    result = subprocess.run([str(kubecheck), "pod-security", "restricted"], input=json.dumps(payload),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(result.stdout.splitlines()) == ["coredns: allowed", "dns-check: allowed", "metrics-server: allowed",
                                                  "nginx: allowed"]


def test_the_pod_security_check_can_fail(kubecheck):
    nginx = pods()["nginx"]
    spec = json.loads(json.dumps(nginx["spec"]))
    del spec["securityContext"]["seccompProfile"]
    result = subprocess.run([str(kubecheck), "pod-security", "restricted"],
                            input=json.dumps([{"name": "nginx", "metadata": {}, "spec": spec}]),
                            capture_output=True, text=True)
    assert result.returncode == 1 and "nginx: forbidden: seccompProfile" in result.stdout


@pytest.mark.parametrize("kind, render", [("kubelet-config", kubelet_render.kubelet_config),
                                          ("kube-proxy-config", kube_proxy_render.kube_proxy_config)])
def test_component_configs_decode_strictly_into_the_release_types(kubecheck, kind, render):
    """Every field exists in the KubeletConfiguration / KubeProxyConfiguration of the release (no typo, nothing
    removed)."""
    text = render(sample.worker_inputs())
    ok = subprocess.run([str(kubecheck), kind], input=text, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    typo = subprocess.run([str(kubecheck), kind], input=text.replace('"clientConnection"', '"clientConection"')
                          .replace('"seccompDefault"', '"seccompDefaults"'), capture_output=True, text=True)
    assert typo.returncode == 1 and "unknown field" in typo.stderr


# --- the other new files, parsed -----------------------------------------------------------------------------------

def test_crictl_config_names_containerd_for_runtime_and_images():
    config = yaml.safe_load(sample.worker_files_by_path()["/etc/crictl.yaml"].content)
    assert config == {"runtime-endpoint": "unix:///run/containerd/containerd.sock",
                      "image-endpoint": "unix:///run/containerd/containerd.sock", "timeout": 10}


def test_containerd_unit_is_upstreams_without_an_open_file_limit():
    unit = sample.worker_files_by_path()["/etc/systemd/system/containerd.service"].content
    assert "LimitNOFILE" not in unit
    for line in ("After=network.target dbus.service", "Type=notify", "Delegate=yes", "KillMode=process",
                 "LimitNPROC=infinity", "LimitCORE=infinity", "TasksMax=infinity", "OOMScoreAdjust=-999",
                 "ExecStartPre=-/sbin/modprobe overlay"):
        assert line in unit.splitlines(), line


def test_haproxy_runs_unprivileged_in_a_chroot():
    config = sample.worker_files_by_path()["/etc/haproxy/haproxy.cfg"].content
    global_section = config.split("\nglobal\n", 1)[1].split("\n\n", 1)[0].split("\n")
    assert {"  chroot /var/lib/haproxy", "  user haproxy", "  group haproxy"} <= set(global_section)


def test_kubelet_cipher_suites_are_names_the_kubelet_resolves(kubecheck):
    text = kubelet_render.kubelet_config(sample.worker_inputs())
    assert subprocess.run([str(kubecheck), "kubelet-config"], input=text, capture_output=True, text=True).returncode == 0
    wrong = subprocess.run([str(kubecheck), "kubelet-config"], capture_output=True, text=True,
                           input=text.replace("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM"))
    assert wrong.returncode == 1 and "TLS_ECDHE_RSA_WITH_AES_128_GCM not supported" in wrong.stderr
