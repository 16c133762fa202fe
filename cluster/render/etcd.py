"""etcd: one member's flags, unit and files. Mutual TLS for clients and peers, with the etcd CA only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import shlex

from cluster.render.common import BIN_DIR, NodeFile, flags, systemd_unit
from cluster.render.steps import STARTED_DIR

ETCD_PKI = "/etc/etcd/pki"
DATA_DIR = "/var/lib/etcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381
# Flags etcd 3.6 introduced (older members refuse to start with them); the tests that run an older etcd leave them out.
SINCE_ETCD_3_6 = ("feature-gates", "watch-progress-notify-interval")
# Flags a member reads only when it first starts (bootstraps or joins); once it has data they are ignored, so a change
# of membership (which changes --initial-cluster) must not restart the members that run.
BOOTSTRAP_ONLY = ("initial-cluster", "initial-cluster-state", "initial-cluster-token", "initial-advertise-peer-urls")
JOIN_ENV = "/etc/etcd/join.env"
JOIN_DROP_IN = "/etc/systemd/system/etcd.service.d/join.conf"


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


def peer_url(member: Member) -> str:
    return f"https://{member.ip}:{PEER_PORT}"


def client_url(member: Member) -> str:
    return f"https://{member.ip}:{CLIENT_PORT}"


def join_flags(member: Member, cluster_token: str, **paths: str) -> list[tuple[str, str | None]]:
    """The command line of a member joining a running cluster: the initial cluster is what `member add` printed
    (the running members and this one), read from JOIN_ENV by systemd."""
    joining = {"initial-cluster": "${ETCD_JOIN_INITIAL_CLUSTER}", "initial-cluster-state": "existing"}
    return [(k, joining.get(k, v)) for k, v in etcd_flags(member, [member], cluster_token, **paths)]


def running_flags(member: Member, cluster_token: str) -> list[tuple[str, str | None]]:
    """What a member that has data reads from its command line: the flags whose change needs a restart."""
    return [(k, v) for k, v in etcd_flags(member, [member], cluster_token) if k not in BOOTSTRAP_ONLY]


def etcd_unit(member: Member, members: Sequence[Member], cluster_token: str) -> str:
    return _unit(member, etcd_flags(member, members, cluster_token))


def etcd_restart_unit(member: Member, cluster_token: str) -> str:
    """The unit as far as a running member is concerned (its start fingerprint): without the bootstrap-only flags,
    so that adding or removing another member changes nothing a running member would restart for."""
    return _unit(member, running_flags(member, cluster_token))


def _unit(member: Member, options: list[tuple[str, str | None]]) -> str:
    return systemd_unit(
        description=f"etcd member {member.name}",
        documentation="https://etcd.io/docs/",
        exec_start=flags(f"{BIN_DIR}/etcd", options),
        service={"Type": "notify", "User": "etcd", "Group": "etcd", "LimitNOFILE": "65536",
                 # etcd refuses to start on a data dir anyone else can read.
                 "StateDirectory": "etcd", "StateDirectoryMode": "0700"},
    )


def etcd_files(member: Member, members: Sequence[Member], cluster_token: str, tls: EtcdTls) -> list[NodeFile]:
    return [*_tls_files(tls), NodeFile("/etc/systemd/system/etcd.service", etcd_unit(member, members, cluster_token))]


def etcd_restart_files(member: Member, cluster_token: str, tls: EtcdTls) -> list[NodeFile]:
    """The files as far as a running member is concerned: what its start fingerprint covers."""
    return [*_tls_files(tls), NodeFile("/etc/systemd/system/etcd.service", etcd_restart_unit(member, cluster_token))]


def _tls_files(tls: EtcdTls) -> list[NodeFile]:
    return [
        NodeFile(f"{ETCD_PKI}/ca.crt", tls.ca_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.crt", tls.server_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.key", tls.server_key_pem, "0600", "etcd", secret=True),
        NodeFile(f"{ETCD_PKI}/peer.crt", tls.peer_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/peer.key", tls.peer_key_pem, "0600", "etcd", secret=True),
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


def etcd_join_drop_in(member: Member, cluster_token: str) -> str:
    """A systemd drop-in used only while a new member joins a running cluster; the start script removes it once the
    member has data (after which every initial-* flag is ignored)."""
    command = " ".join(flags(f"{BIN_DIR}/etcd", join_flags(member, cluster_token)))
    return f"""[Service]
EnvironmentFile={JOIN_ENV}
ExecStart=
ExecStart={command}
"""


def etcd_start_script(member: Member, members: Sequence[Member], cluster_token: str, fingerprint: str, *,
                      joins: bool, data_dir: str = DATA_DIR, timeout_seconds: int = 300) -> str:
    """Start, restart or join this member; the node keeps the fingerprint it last started etcd with, so the same
    inputs restart nothing.

    - First creation (no cluster ran before, no data here): start without waiting. A new member becomes ready only
      once a quorum of its peers has started too, and those start after this step; etcd-health checks the cluster.
    - Restart of a member with data (certificate, CA, flags or binary changed): only while every member of the
      cluster is healthy, then wait, within a bound, for this member and every member to be healthy again. The next
      member's start runs after this step, so members restart one at a time and the cluster keeps its quorum.
    - A new member of a running cluster (a raised count: `joins`; or a replaced machine: no data here, and the running
      cluster lists this member's peer address as started): remove any member registered at this
      member's peer address (the machine it replaces), `member add` it from a running member, then start it with
      `--initial-cluster-state=existing` and the initial cluster `member add` printed, and wait as for a restart."""
    others = [m for m in members if m != member] or [member]
    peers = ",".join(client_url(m) for m in others)
    return f"""#!/bin/bash
# Start, restart or join etcd member {member.name}. Verification: after a restart or a join, this member and every
# member of the cluster answer a health check over mutual TLS.
set -uo pipefail
want={shlex.quote(fingerprint)}
# Whether this member is new to a cluster that runs (the program saw the other members' machines, not this one's).
new_member_of_running_cluster={"yes" if joins else "no"}
stamp={STARTED_DIR}/etcd
self={client_url(member)}
peers={peers}
tls=(--cacert {ETCD_PKI}/ca.crt --cert {ETCD_PKI}/server.crt --key {ETCD_PKI}/server.key)
ctl() {{ timeout 30 {BIN_DIR}/etcdctl --dial-timeout 3s --command-timeout 10s "${{tls[@]}}" "$@"; }}
fail() {{
  echo "$1" >&2
  systemctl status etcd --no-pager -l >&2 || true
  journalctl -u etcd --no-pager -n 30 >&2 || true
  exit 1
}}
# wait_healthy WHAT ETCDCTL-ARGS...: until `endpoint health` passes, within the bound.
wait_healthy() {{
  local what=$1 deadline=$((SECONDS + {timeout_seconds})) out
  shift
  until out=$(ctl endpoint health "$@" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what is not healthy after {timeout_seconds}s (seen from $(hostname)): $out"
    sleep 2
  done
  echo "$out"
}}
install -d -m 0755 {STARTED_DIR}
if [ -e {JOIN_DROP_IN} ] && [ -d {data_dir}/member ]; then
  rm -f {JOIN_DROP_IN} {JOIN_ENV}
fi
timeout 60 systemctl daemon-reload
systemctl enable --quiet etcd
if systemctl is-active --quiet etcd && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "etcd: inputs unchanged since it was started, not restarting"
  exit 0
fi
rm -f "$stamp"
# How the running cluster sees this member, for a member without data: `none` (no cluster answers: a first
# creation, or peers still forming one), `unstarted` (listed by name or address without client addresses: a first
# creation in progress), `started` (listed with client addresses: this machine replaces a member that ran) or
# `absent` (a cluster answers without this member: it must join, even if the program knew its machine, say from an
# earlier `pulumi up` that failed before the member was added).
cluster_view() {{
  local members
  # Short bounds: on a first creation nothing answers yet, and this check must not slow the start down.
  members=$(timeout 5 {BIN_DIR}/etcdctl --dial-timeout 1s --command-timeout 2s "${{tls[@]}}" --endpoints "$peers" \
    member list 2>/dev/null) || {{ echo none; return; }}
  awk -F', ' -v url={peer_url(member)} '$4 == url {{view = ($5 == "" ? "unstarted" : "started")}}
    END {{print (view == "" ? "absent" : view)}}' <<<"$members"
}}
view=none
[ -d {data_dir}/member ] || view=$(cluster_view)
if [ ! -d {data_dir}/member ] && [ "$new_member_of_running_cluster" = no ] && \
    {{ [ "$view" = none ] || [ "$view" = unstarted ]; }}; then
  echo "etcd on $(hostname): first start of a new cluster, not waiting (etcd-health checks the whole cluster)"
  timeout 60 systemctl restart --no-block etcd || fail "etcd could not be started on $(hostname)"
  echo "$want" > "$stamp"
  exit 0
fi
if [ ! -d {data_dir}/member ]; then
  echo "etcd on $(hostname): joining the running cluster"
  # A member list answers only with a quorum (it is linearizable), so it is the check that the cluster runs.
  deadline=$((SECONDS + {timeout_seconds}))
  until members=$(ctl --endpoints "$peers" member list 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "no etcd cluster answers at $peers after {timeout_seconds}s: $members"
    sleep 2
  done
  old=$(awk -F', ' -v url={peer_url(member)} '$4 == url {{print $1}}' <<<"$members")
  if [ -n "$old" ]; then
    echo "removing member $old registered at {peer_url(member)} (the machine this one replaces)"
    deadline=$((SECONDS + {timeout_seconds}))
    until out=$(ctl --endpoints "$peers" member remove "$old" 2>&1); do
      [ "$SECONDS" -lt "$deadline" ] || fail "cannot remove member $old: $out"
      sleep 3
    done
  fi
  # etcd (--strict-reconfig-check) refuses a change until every member has been connected for a few seconds (one
  # that has just joined or restarted): retry within the bound.
  deadline=$((SECONDS + {timeout_seconds}))
  until added=$(ctl --endpoints "$peers" member add {member.name} --peer-urls={peer_url(member)} 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "cannot add {member.name} to the etcd cluster: $added"
    sleep 3
  done
  initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\\(.*\\)"$/\\1/p' <<<"$added")
  [ -n "$initial" ] || fail "member add printed no initial cluster: $added"
  echo "ETCD_JOIN_INITIAL_CLUSTER=$initial" > {JOIN_ENV}
  install -d -m 0755 "$(dirname {JOIN_DROP_IN})"
  cat > {JOIN_DROP_IN} <<'DROPIN'
{etcd_join_drop_in(member, cluster_token)}DROPIN
  timeout 60 systemctl daemon-reload
elif systemctl is-active --quiet etcd; then
  # Never take this member down while another is: the cluster must have all its members before a restart.
  wait_healthy "the etcd cluster (before restarting {member.name})" --endpoints "$self,$peers" --cluster
fi
timeout 120 systemctl restart etcd || fail "etcd did not (re)start within 120s on $(hostname)"
wait_healthy "etcd member {member.name}" --endpoints "$self"
wait_healthy "the etcd cluster" --endpoints "$self" --cluster
if [ -e {JOIN_DROP_IN} ]; then
  rm -f {JOIN_DROP_IN} {JOIN_ENV}
  timeout 60 systemctl daemon-reload
fi
echo "$want" > "$stamp"
echo "etcd member {member.name} is healthy on $(hostname), and so is every member"
"""


def etcd_member_remove_script(leaving: Member, via: Member) -> str:
    """Run on `via` (a member that stays) before `leaving`'s machine goes: remove it from the cluster by name or
    peer address; nothing to do when it is not a member."""
    return f"""#!/bin/bash
# Remove etcd member {leaving.name} from the cluster. Verification: it is no longer listed.
set -uo pipefail
tls=(--cacert {ETCD_PKI}/ca.crt --cert {ETCD_PKI}/server.crt --key {ETCD_PKI}/server.key)
ctl() {{ timeout 30 {BIN_DIR}/etcdctl --endpoints {client_url(via)} --dial-timeout 3s --command-timeout 10s \
  "${{tls[@]}}" "$@"; }}
members=$(ctl member list) || {{ echo "cannot list the etcd members from {via.name}" >&2; exit 1; }}
id=$(awk -F', ' '$3 == "{leaving.name}" || $4 == "{peer_url(leaving)}" {{print $1}}' <<<"$members")
if [ -z "$id" ]; then
  echo "{leaving.name} is not an etcd member: nothing to remove"
  exit 0
fi
# etcd (--strict-reconfig-check) refuses a removal until every other member has been connected for a few seconds:
# a member that has just joined or restarted. Retry within a bound.
deadline=$((SECONDS + 120))
until out=$(ctl member remove "$id" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd refused to remove {leaving.name} for 120s: $out" >&2
    exit 1
  fi
  sleep 3
done
echo "$out"
if ctl member list | grep -q ", {leaving.name}, "; then
  echo "{leaving.name} is still listed after member remove" >&2
  exit 1
fi
echo "removed etcd member {leaving.name} ($id)"
"""


def etcd_member_listed_script(member: Member, via: Member) -> str:
    """Verification that `member` is a started member of the cluster, seen from `via`."""
    return f"""#!/bin/bash
# Verification: {member.name} is a started member of the etcd cluster, seen from {via.name}.
set -uo pipefail
tls=(--cacert {ETCD_PKI}/ca.crt --cert {ETCD_PKI}/server.crt --key {ETCD_PKI}/server.key)
members=$(timeout 30 {BIN_DIR}/etcdctl --endpoints {client_url(via)} "${{tls[@]}}" member list) || exit 1
if ! grep -q ", started, {member.name}, {peer_url(member)}, " <<<"$members"; then
  echo "{member.name} is not a started etcd member:" >&2
  echo "$members" >&2
  exit 1
fi
echo "{member.name} is a started etcd member"
"""
