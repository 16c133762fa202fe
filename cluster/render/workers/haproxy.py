"""haproxy: the node-local TCP proxy over every API server that the kubelet and kube-proxy talk to."""

from __future__ import annotations

from typing import Sequence

from cluster.render.common import NodeFile
from cluster.render.services import Service
from cluster.render.workers.node import PRIVATE, WorkerInputs

HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"


def files(inputs: WorkerInputs) -> list[NodeFile]:
    return [NodeFile(HAPROXY_CONFIG, haproxy_config(inputs.controller_ips), PRIVATE)]


# Debian's package (prepare-os installs it) brings the unit; every service that reaches the API starts after it. A new
# config (other controllers) is reloaded: the kubelets' and kube-proxies' open connections survive it.
SERVICE = Service("haproxy", files=files, reloads=True, report_rank=4)


def haproxy_config(controller_ips: Sequence[str]) -> str:
    servers = "\n".join(f"  server controller-{n} {ip}:6443 check check-ssl verify none"
                        for n, ip in enumerate(controller_ips))
    return f"""# Node-local TCP proxy to every API server: kubelet and kube-proxy use https://127.0.0.1:6443.
# TLS passes through untouched (clients verify the API server certificate, which names 127.0.0.1);
# the health check asks /readyz so that a server that is up but not ready gets no new connections.
# haproxy reads this file as root, then runs as the haproxy user inside an empty chroot, as Debian's default does.
global
  log /dev/log local0 warning
  maxconn 4096
  chroot /var/lib/haproxy
  user haproxy
  group haproxy

defaults
  mode tcp
  log global
  option tcplog
  # A connection a server refuses (an API server restarting, not yet marked down by the checks) is tried again on
  # another server instead of failing the client.
  retries 3
  option redispatch
  timeout connect 5s
  timeout client 4h
  timeout server 4h

frontend kube-apiserver
  bind 127.0.0.1:6443
  default_backend controllers

backend controllers
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  # A server marked down (its /readyz failing: shutting down, or cut off from etcd) loses its open connections too,
  # so long-lived watches move to a ready server instead of waiting out client-go's watch timeout on a stale one.
  default-server inter 5s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}
"""
