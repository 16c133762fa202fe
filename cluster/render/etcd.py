"""etcd: one member's flags, unit and files. Mutual TLS for clients and peers, with the etcd CA only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from cluster.render.common import BIN_DIR, NodeFile, flags, systemd_unit

ETCD_PKI = "/etc/etcd/pki"
DATA_DIR = "/var/lib/etcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381
# Flags etcd 3.6 introduced (older members refuse to start with them); the tests that run an older etcd leave them out.
SINCE_ETCD_3_6 = ("feature-gates", "watch-progress-notify-interval")


@dataclass(frozen=True)
class Member:
    name: str
    ip: str


@dataclass(frozen=True)
class EtcdTls:
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    peer_cert_pem: str
    peer_key_pem: str


def initial_cluster(members: Sequence[Member]) -> str:
    return ",".join(f"{m.name}=https://{m.ip}:{PEER_PORT}" for m in members)


def client_urls(members: Sequence[Member]) -> str:
    """What the API server's --etcd-servers and etcdctl's --endpoints take."""
    return ",".join(f"https://{m.ip}:{CLIENT_PORT}" for m in members)


def etcd_flags(member: Member, members: Sequence[Member], cluster_token: str, *, pki_dir: str = ETCD_PKI,
               data_dir: str = DATA_DIR) -> list[tuple[str, str | None]]:
    """The member's command line. Tests start real etcd processes from exactly this list."""
    return [
        ("name", member.name),
        ("data-dir", data_dir),
        ("listen-client-urls", f"https://{member.ip}:{CLIENT_PORT},https://127.0.0.1:{CLIENT_PORT}"),
        ("advertise-client-urls", f"https://{member.ip}:{CLIENT_PORT}"),
        ("listen-peer-urls", f"https://{member.ip}:{PEER_PORT}"),
        ("initial-advertise-peer-urls", f"https://{member.ip}:{PEER_PORT}"),
        ("initial-cluster", initial_cluster(members)),
        ("initial-cluster-token", cluster_token),
        ("initial-cluster-state", "new"),
        ("client-cert-auth", None),
        ("trusted-ca-file", f"{pki_dir}/ca.crt"),
        ("cert-file", f"{pki_dir}/server.crt"),
        ("key-file", f"{pki_dir}/server.key"),
        ("peer-client-cert-auth", None),
        ("peer-trusted-ca-file", f"{pki_dir}/ca.crt"),
        ("peer-cert-file", f"{pki_dir}/peer.crt"),
        ("peer-key-file", f"{pki_dir}/peer.key"),
        ("listen-metrics-urls", f"http://127.0.0.1:{METRICS_PORT}"),
        ("strict-reconfig-check", None),
        # As kubeadm runs etcd 3.6: a member checks its data against its peers' before it serves (the 3.6 name of
        # --experimental-initial-corrupt-check), and watchers get progress notifications, which the API server's
        # watch cache relies on to serve consistent reads from cache.
        ("feature-gates", "InitialCorruptCheck=true"),
        ("watch-progress-notify-interval", "5s"),
    ]


def etcd_unit(member: Member, members: Sequence[Member], cluster_token: str) -> str:
    return systemd_unit(
        description=f"etcd member {member.name}",
        documentation="https://etcd.io/docs/",
        exec_start=flags(f"{BIN_DIR}/etcd", etcd_flags(member, members, cluster_token)),
        service={"Type": "notify", "User": "etcd", "Group": "etcd", "LimitNOFILE": "65536",
                 # etcd refuses to start on a data dir anyone else can read.
                 "StateDirectory": "etcd", "StateDirectoryMode": "0700"},
    )


def etcd_files(member: Member, members: Sequence[Member], cluster_token: str, tls: EtcdTls) -> list[NodeFile]:
    return [
        NodeFile(f"{ETCD_PKI}/ca.crt", tls.ca_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.crt", tls.server_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.key", tls.server_key_pem, "0600", "etcd", secret=True),
        NodeFile(f"{ETCD_PKI}/peer.crt", tls.peer_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/peer.key", tls.peer_key_pem, "0600", "etcd", secret=True),
        NodeFile("/etc/systemd/system/etcd.service", etcd_unit(member, members, cluster_token)),
    ]


ETCD_USER_SCRIPT = """#!/bin/bash
# The etcd system user owns the data dir and the member's keys.
set -euo pipefail
if ! id etcd >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/etcd --shell /usr/sbin/nologin etcd
fi
install -d -m 0700 -o etcd -g etcd /var/lib/etcd
install -d -m 0755 -o etcd -g etcd /etc/etcd/pki
"""


def etcd_health_script(members: Sequence[Member], timeout_seconds: int = 300) -> str:
    """Run on one member after all have started: every member healthy over mutual TLS, within a bound.
    On failure, print what etcdctl saw and the member's own log tail."""
    endpoints = client_urls(members)
    return f"""#!/bin/bash
# Verification: every etcd member answers a health check over mutual TLS.
set -uo pipefail
deadline=$((SECONDS + {timeout_seconds}))
tls=(--cacert {ETCD_PKI}/ca.crt --cert {ETCD_PKI}/server.crt --key {ETCD_PKI}/server.key)
until out=$({BIN_DIR}/etcdctl --endpoints {endpoints} "${{tls[@]}}" endpoint health 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd is not healthy after {timeout_seconds}s on $(hostname):" >&2
    echo "$out" >&2
    echo "--- last lines of the etcd log on $(hostname):" >&2
    journalctl -u etcd --no-pager -n 30 >&2 || true
    exit 1
  fi
  sleep 5
done
echo "$out"
{BIN_DIR}/etcdctl --endpoints {endpoints} "${{tls[@]}}" member list -w table
"""
