"""The checks `pulumi up` runs on the deployer (and, in the private topology, on a worker): run for real, as the
program ships them, against servers on loopback; and wired into the program where their traffic is admitted."""

import http.server
import json
import re
import shlex
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cluster.remote import run_command
from cluster.render.access import admin_kubeconfig
from cluster.render.deployer_checks import api_check_program, nodeport_check_program, on_node
from infra.certs import KUBERNETES_CA, Host
from infra.security_rules import ingress_rules
from infra.settings import parse_settings
from tests.support.pki import mint_cluster
from simulator.program import run_program

ADMIN = ["100.64.7.0/24"]


def config(**extra):
    return {"adminCidrs": ADMIN, "etcd": {"count": 1}, "controllers": {"count": 1}, "workers": {"count": 3}, **extra}


@contextmanager
def serving(handler_body: bytes, *, tls: ssl.SSLContext | None = None, path_bodies: dict | None = None,
            address: str = "127.0.0.1"):
    """An HTTP(S) server on a loopback address answering every GET with `handler_body` (or per path)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (path_bodies or {}).get(self.path.split("?")[0].rstrip("/"), handler_body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def run_python(program: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True, timeout=120)


def test_the_nodeport_check_passes_when_every_worker_serves_the_welcome_page():
    with serving(b"<h1>Welcome to nginx!</h1>") as a, serving(b"<h1>Welcome to nginx!</h1>") as b:
        result = run_python(nodeport_check_program({"worker-0": f"http://127.0.0.1:{a}/",
                                                    "worker-1": f"http://127.0.0.1:{b}/"}, timeout_seconds=20))
    assert result.returncode == 0, result.stderr
    assert "worker-0: Welcome to nginx!" in result.stdout and "worker-1: Welcome to nginx!" in result.stdout


def test_the_nodeport_check_names_every_worker_that_did_not_answer_within_its_bound():
    with serving(b"<h1>Welcome to nginx!</h1>") as good, serving(b"502 Bad Gateway") as wrong:
        closed = f"http://127.0.0.1:{good}/".replace(str(good), "1")     # port 1: refused on loopback
        result = run_python(nodeport_check_program({"worker-0": f"http://127.0.0.1:{good}/",
                                                    "worker-1": f"http://127.0.0.1:{wrong}/",
                                                    "worker-2": closed}, timeout_seconds=4))
    assert result.returncode == 1
    assert "worker-0" not in result.stderr
    assert re.search(r"worker-1 did not answer 'Welcome to nginx!' at .* within 4s \(last: a page without", result.stderr)
    assert re.search(r"worker-2 did not answer .* within 4s \(last: .*refused", result.stderr)


def test_on_a_node_the_same_program_runs_from_a_bash_script():
    with serving(b"Welcome to nginx!") as port:
        script = on_node(nodeport_check_program({"worker-1": f"http://127.0.0.1:{port}/"}, timeout_seconds=10))
        with tempfile.TemporaryDirectory() as tmp:
            # the node's python3 is whatever python3 is first on PATH; here the suite's own
            (Path(tmp) / "python3").symlink_to(sys.executable)
            result = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, timeout=60,
                                    env={"PATH": f"{tmp}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "worker-1: Welcome to nginx!" in result.stdout


def serving_tls(minted) -> ssl.SSLContext:
    """A server context presenting the API server certificate of `minted`."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert.write_text(minted["kube-apiserver"].cert_pem)
        key.write_text(minted["kube-apiserver"].key_pem)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    return tls


@pytest.fixture(scope="module")
def pki():
    return mint_cluster([Host("etcd-0", "10.43.0.10")], [Host("controller-0", "10.43.0.20")],
                        [Host("worker-0", "10.43.0.30")])


def test_the_api_check_reaches_the_api_with_the_exported_kubeconfig(pki):
    """As through the load balancer: the server's address (127.0.0.2 here, the load balancer's name on AWS) is not
    a name of its certificate; the kubeconfig's tls-server-name is."""
    tls = serving_tls(pki)
    version = json.dumps({"major": "1", "minor": "37", "gitVersion": "v1.37.2", "gitCommit": "0" * 40,
                          "gitTreeState": "clean", "buildDate": "2026-11-12T00:00:00Z", "goVersion": "go1.26",
                          "compiler": "gc", "platform": "linux/amd64"}).encode()
    with serving(b"ok", tls=tls, path_bodies={"/version": version, "/readyz": b"ok"},
                 address="127.0.0.2") as port:
        kubeconfig = admin_kubeconfig(cluster_name="k8s-dev", endpoint=f"https://127.0.0.2:{port}",
                                      ca_pem=pki[KUBERNETES_CA].cert_pem, cert_pem=pki["admin"].cert_pem,
                                      key_pem=pki["admin"].key_pem)
        result = run_python(api_check_program(kubeconfig, timeout_seconds=15))
    assert result.returncode == 0, result.stderr
    assert f"https://127.0.0.2:{port}/readyz: ok; version v1.37.2" in result.stdout
    from cryptography import x509
    sans = x509.load_pem_x509_certificate(pki["kube-apiserver"].cert_pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "127.0.0.2" not in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def test_the_api_check_refuses_a_server_the_cluster_ca_did_not_sign_and_says_what_it_waited_for(pki):
    other = mint_cluster([Host("etcd-0", "10.43.0.10")], [Host("controller-0", "10.43.0.20")], [])
    tls = serving_tls(other)
    with serving(b"ok", tls=tls) as port:
        kubeconfig = admin_kubeconfig(cluster_name="k8s-dev", endpoint=f"https://127.0.0.1:{port}",
                                      ca_pem=pki[KUBERNETES_CA].cert_pem, cert_pem=pki["admin"].cert_pem,
                                      key_pem=pki["admin"].key_pem)
        result = run_python(api_check_program(kubeconfig, timeout_seconds=3))
    assert result.returncode == 1
    assert f"the API does not answer through the load balancer https://127.0.0.1:{port} within 3s" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "SSLError" in result.stderr


def test_public_topology_fetches_from_the_deployer_with_the_programs_own_interpreter():
    run = run_program(config())
    (fetch,) = [c for c in run.of_type("command:local:Command") if c.name.endswith("-fetch-from-every-worker")]
    assert fetch.inputs["create"] == f"{shlex.quote(sys.executable)} -"
    urls = run.outputs["nginxUrls"]
    assert json.dumps(urls) in fetch.inputs["stdin"]
    assert fetch.parent.endswith("k8s-from-scratch:cluster:SmokeTest::k8s-dev-smoke-test")


def test_private_topology_fetches_from_a_worker_which_the_workers_group_admits():
    run = run_program(config(topology="private"))
    fetch = run.named("worker-0-fetch-from-every-worker")
    assert "http://10.43.128.31:30080/" in fetch.inputs["stdin"] and "python3 -" in fetch.inputs["stdin"]
    assert not [c for c in run.of_type("command:local:Command") if "fetch" in c.name]
    rules = ingress_rules(parse_settings({"adminCidrs": ADMIN, "topology": "private"}))
    assert [r for r in rules if r.group == "workers" and r.source_group == "workers" and r.protocol == "-1"]
    assert fetch.parent.endswith("k8s-from-scratch:cluster:SmokeTest::k8s-dev-smoke-test")


def test_the_load_balancer_check_carries_the_kubeconfig_as_a_secret_with_logging_off():
    run = run_program(config())
    (check,) = [c for c in run.of_type("command:local:Command") if c.name.endswith("-api-through-load-balancer")]
    assert check.inputs["create"] == f"{shlex.quote(sys.executable)} -"
    assert "stdin" in check.secret_inputs and check.inputs["logging"] == "none"
    assert "client-key-data" in check.inputs["stdin"]
    assert check.parent.endswith("k8s-from-scratch:infra:ApiLoadBalancer::k8s-dev-api")
    assert check.aliases, "moved under the load balancer component: its old top-level identity is an alias"


def test_a_step_that_outlives_its_bound_is_killed_and_says_which_step_on_which_host():
    """The command line every remote step runs (here without its `sudo`: the suite may run as any user)."""
    line = run_command("worker-1", "install-containerd", 2).removeprefix("sudo ")
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", line], input="echo started\nsleep 60\necho never\n", capture_output=True,
                            text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 124 and result.stdout == "started\n"
    assert result.stderr.strip() == "k8s-from-scratch: step install-containerd on worker-1 did not finish within 2s"
    ok = subprocess.run(["bash", "-c", line], input="exit 3\n", capture_output=True, text=True, timeout=60)
    assert ok.returncode == 3 and ok.stderr == "", "a failing step keeps its own exit code and says nothing more"


# --- the live read of the nodes' pod ranges (cluster/podnet.py live_ranges) ----------------------------------------
def test_the_live_read_lists_every_nodes_range_through_the_api_with_the_exported_kubeconfig(pki):
    from cluster.render import podcidrs
    nodes = {"kind": "NodeList", "apiVersion": "v1", "items": [
        {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec,
         "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
        for name, created, spec, ip in (
            ("worker-1", "2026-12-01T10:00:05Z", {"podCIDR": "10.200.7.0/24"}, "10.43.0.31"),
            ("worker-0", "2026-12-01T09:00:00Z", {"podCIDR": "10.200.0.0/24"}, "10.43.0.30"),
            ("worker-2", "2026-12-01T10:00:09Z", {}, "10.43.0.32"))]}     # registered, no range yet
    with serving(b"{}", tls=serving_tls(pki), path_bodies={"/api/v1/nodes": json.dumps(nodes).encode()},
                 address="127.0.0.2") as port:
        kubeconfig = admin_kubeconfig(cluster_name="k8s-dev", endpoint=f"https://127.0.0.2:{port}",
                                      ca_pem=pki[KUBERNETES_CA].cert_pem, cert_pem=pki["admin"].cert_pem,
                                      key_pem=pki["admin"].key_pem)
        result = run_python(podcidrs.live_read_program(kubeconfig, 10))
    assert result.returncode == 0, result.stderr
    ranges, unavailable = podcidrs.parse_live_output(result.stdout)
    assert unavailable is None
    assert ranges == {"worker-0": podcidrs.NodePodRange("worker-0", "10.43.0.30", "10.200.0.0/24", "2026-12-01T09:00:00Z"),
                      "worker-1": podcidrs.NodePodRange("worker-1", "10.43.0.31", "10.200.7.0/24", "2026-12-01T10:00:05Z")}


def test_a_live_read_the_api_does_not_answer_is_an_answer_within_its_bound(pki):
    """A first creation (nothing listens yet), or a deployer outside adminCidrs: the update goes on."""
    from cluster.render import podcidrs
    kubeconfig = admin_kubeconfig(cluster_name="k8s-dev", endpoint="https://127.0.0.1:9", ca_pem=pki[KUBERNETES_CA].cert_pem,
                                  cert_pem=pki["admin"].cert_pem, key_pem=pki["admin"].key_pem)
    started = time.monotonic()
    result = run_python(podcidrs.live_read_program(kubeconfig, 3))
    assert result.returncode == 0, result.stderr
    assert podcidrs.parse_live_output(result.stdout)[0] == {}
    assert "Connection refused" in podcidrs.parse_live_output(result.stdout)[1]
    assert time.monotonic() - started < 30
    assert pki["admin"].key_pem.splitlines()[1] not in result.stdout + result.stderr
