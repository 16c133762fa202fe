"""The workers' node-local API proxy (cluster/render/workers/haproxy.py), run for real: Debian's haproxy with the
rendered config in a network namespace of its own, in front of two stand-in API servers (TLS, `/readyz` that can be
made to fail, and a streaming `/watch` like a watch request) at the controllers' addresses inside that namespace.

Review r2 N13: a server whose /readyz fails for a reason other than its shutdown (cut off from etcd, say) must lose
its open connections, so that long-lived watches reconnect to a ready server instead of staying on a stale one.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time

import pytest

from cluster.render.workers import haproxy
from locallab.netns import Lab, can_run
from tests.support.pki import mint_cluster
from infra.certs import Host

pytestmark = pytest.mark.integration

CONTROLLERS = ["10.43.0.20", "10.43.0.21"]

# A stand-in API server: /readyz answers 200 unless the file given as argv[3] exists; /watch streams a line a second.
SERVER = r"""
import http.server, os, ssl, sys, threading, time
address, certfile, unready = sys.argv[1], sys.argv[2], sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def do_GET(self):
        if self.path.startswith("/readyz"):
            body = b"ok" if not os.path.exists(unready) else b"etcd failed"
            self.send_response(200 if not os.path.exists(unready) else 500)
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            return
        self.send_response(200); self.send_header("Content-Type", "text/plain"); self.end_headers()
        try:
            while True:
                self.wfile.write(f"event from {address}\n".encode()); self.wfile.flush(); time.sleep(1)
        except OSError:
            pass
server = http.server.ThreadingHTTPServer((address, 6443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(certfile)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving", flush=True)
server.serve_forever()
"""


@pytest.fixture
def proxy(tmp_path):
    reason = can_run() or (None if shutil.which("haproxy") else "haproxy is not installed (Debian: haproxy)")
    if reason:
        pytest.skip(reason)
    minted = mint_cluster([], [Host(f"controller-{i}", ip) for i, ip in enumerate(CONTROLLERS)], [])
    pem = tmp_path / "apiserver.pem"
    pem.write_text(minted["kube-apiserver"].cert_pem + minted["kube-apiserver"].key_pem)
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy.haproxy_config(CONTROLLERS))
    processes = []
    with Lab("apiproxy") as lab:
        lab.add_host("worker", "10.43.0.30")
        for ip in CONTROLLERS:
            lab.exec("worker", "ip", "addr", "add", f"{ip}/32", "dev", "lo")
            server = lab.popen("worker", "python3", "-c", SERVER, ip, str(pem), str(tmp_path / f"{ip}.unready"),
                               stdout=subprocess.PIPE, text=True)
            processes.append(server)
            assert server.stdout.readline().strip() == "serving"
        proxy_process = lab.popen("worker", "haproxy", "-db", "-f", str(config), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        processes.append(proxy_process)
        try:
            yield lab, tmp_path
        finally:
            for p in processes:
                p.kill()
                p.wait()


WATCH = r"""
import socket, ssl, sys, time
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
deadline = time.monotonic() + 60
while True:
    try:
        raw = socket.create_connection(("127.0.0.1", 6443), timeout=5)
        break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.5)
conn = context.wrap_socket(raw)
conn.sendall(b"GET /watch HTTP/1.1\r\nHost: kubernetes\r\n\r\n")
conn.settimeout(float(sys.argv[1]))
started = time.monotonic()
try:
    for line in conn.makefile("rb"):
        line = line.decode().strip()
        if line.startswith("event from"):
            print(line, flush=True)
except (OSError, ssl.SSLError) as err:
    print(f"error {err}", flush=True)
print(f"closed after {time.monotonic() - started:.1f}s", flush=True)
"""


def test_n13_a_server_marked_down_loses_its_open_watches(proxy):
    lab, state = proxy
    watch = lab.popen("worker", "python3", "-c", WATCH, "60", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
    try:
        first = ""
        while not first.startswith("event from"):
            first = watch.stdout.readline().strip()
            assert first or watch.poll() is None, watch.stderr.read()
        server = first.removeprefix("event from ")
        assert server in CONTROLLERS
        (state / f"{server}.unready").touch()           # its /readyz fails from now on, and it keeps serving
        marked_down_by = time.monotonic() + 2 * 5 + 5 + 10    # fall 2, inter 5s, a check just missed, a margin
        lines = []
        while time.monotonic() < marked_down_by:
            line = watch.stdout.readline().strip()
            lines.append(line)
            if line.startswith("closed") or not line:
                break
        assert any(line.startswith("closed") for line in lines) or watch.poll() is not None, (
            f"the watch on {server} stayed open after haproxy marked it down: {lines[-3:]}")
    finally:
        watch.kill()
        watch.wait()
