"""etcd: one member's flags, unit and files. Mutual TLS for clients and peers, with the etcd CA only."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence

from cluster.render import shell
from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, flags, systemd_unit
from cluster.render.services import Service, Skew
from cluster.render.steps import NO_SWITCH, STARTED_DIR

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
    return [*_tls_files(tls), NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", etcd_unit(member, members, cluster_token))]


def etcd_restart_files(member: Member, cluster_token: str, tls: EtcdTls) -> list[NodeFile]:
    """The files as far as a running member is concerned: what its start fingerprint covers."""
    return [*_tls_files(tls), NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", etcd_restart_unit(member, cluster_token))]


def _tls_files(tls: EtcdTls) -> list[NodeFile]:
    return [
        NodeFile(f"{ETCD_PKI}/ca.crt", tls.ca_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.crt", tls.server_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/server.key", tls.server_key_pem, "0600", "etcd", secret=True),
        NodeFile(f"{ETCD_PKI}/peer.crt", tls.peer_cert_pem, "0644", "etcd"),
        NodeFile(f"{ETCD_PKI}/peer.key", tls.peer_key_pem, "0600", "etcd", secret=True),
    ]


@dataclass(frozen=True)
class EtcdInputs:
    """One member's renderer inputs."""
    member: Member
    members: Sequence[Member]
    cluster_token: str
    tls: EtcdTls


def member_files(inputs: EtcdInputs) -> list[NodeFile]:
    return etcd_files(inputs.member, inputs.members, inputs.cluster_token, inputs.tls)


def member_restart_files(inputs: EtcdInputs) -> list[NodeFile]:
    return etcd_restart_files(inputs.member, inputs.cluster_token, inputs.tls)


# First in the skew order. A member restarts for its keys, its CA, the flags it reads once it has data (not the
# membership flags: adding a member restarts none of the others) or a new release, one member at a time
# (cluster/etcd.py), with its own start script.
SERVICE = Service("etcd", files=member_files, restart_files=member_restart_files, artifacts=("etcd",),
                  skew=Skew.ETCD)


def etcd_user_script() -> str:
    """The etcd system user, which owns the data dir and the member's keys."""
    return shell.render("etcd/user.sh", DATA_DIR=DATA_DIR, PKI_DIR=ETCD_PKI)


def etcd_health_script(members: Sequence[Member], timeout_seconds: int = 300) -> str:
    """Run on one member after all have started: every member healthy over mutual TLS, within a bound.
    On failure, print what etcdctl saw and the member's own log tail."""
    return shell.render("etcd/health.sh", TIMEOUT_SECONDS=timeout_seconds, ETCD_TLS=etcdctl_tls(), BIN_DIR=BIN_DIR,
                        ENDPOINTS=client_urls(members))


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
                      new_machine: bool, data_dir: str = DATA_DIR, timeout_seconds: int = 300,
                      switch: str = NO_SWITCH) -> str:
    """Start, restart or join this member; the node keeps the fingerprint it last started etcd with, so the same
    inputs restart nothing.

    - First creation (no cluster ran before, no data here, no cluster answers): start without waiting. A new member
      becomes ready only once a quorum of its peers has started too, and those start after this step; etcd-health
      checks the cluster.
    - Restart of a member with data (certificate, CA, flags or binary changed): only while every member of the
      cluster is healthy, then wait, within a bound, for this member and every member to be healthy again. The next
      member's start runs after this step, so members restart one at a time and the cluster keeps its quorum.
    - A member without data on a new machine of a cluster that ran (`new_machine`: a raised count, or a replaced
      machine; or a cluster answers that does not list this member as unstarted): wait, within the bound, for a
      quorum to answer, or fail without starting anything (never a new cluster in an old member's place); remove
      any member registered at this member's peer address (the machine it replaces); `member add --learner` it from
      a running member (a learner does not count towards the quorum while it catches up), start it with
      `--initial-cluster-state=existing` and the initial cluster `member add` printed, promote it once it has caught
      up, and wait as for a restart."""
    others = [m for m in members if m != member] or [member]
    return shell.render(
        "etcd/start.sh", MEMBER=member.name, WANT=shlex.quote(fingerprint),
        NEW_MACHINE="yes" if new_machine else "no",
        STARTED_DIR=STARTED_DIR, SELF=client_url(member), PEERS=",".join(client_url(m) for m in others),
        ETCD_TLS=etcdctl_tls(), BIN_DIR=BIN_DIR, TIMEOUT_SECONDS=timeout_seconds, JOIN_DROP_IN=JOIN_DROP_IN,
        JOIN_ENV=JOIN_ENV, DATA_DIR=data_dir, PEER_URL=peer_url(member),
        DROP_IN=etcd_join_drop_in(member, cluster_token), SWITCH=switch)


def etcd_member_remove_script(leaving: Member, via: Member) -> str:
    """Run on `via` (a member that stays) before `leaving`'s machine goes: remove it from the cluster by name or
    peer address; nothing to do when it is not a member."""
    return shell.render("etcd/member-remove.sh", LEAVING=leaving.name, LEAVING_PEER_URL=peer_url(leaving),
                        ETCD_TLS=etcdctl_tls(), BIN_DIR=BIN_DIR, VIA=via.name, VIA_URL=client_url(via))


def etcd_member_listed_script(member: Member, via: Member) -> str:
    """Verification that `member` is a started member of the cluster, seen from `via`."""
    return shell.render("etcd/member-listed.sh", MEMBER=member.name, PEER_URL=peer_url(member), VIA=via.name,
                        VIA_URL=client_url(via), ETCD_TLS=etcdctl_tls(), BIN_DIR=BIN_DIR)


def etcdctl_tls(pki_dir: str = ETCD_PKI) -> str:
    """The bash array of etcdctl's mutual TLS options (`"${tls[@]}"`), with the member's own keys."""
    return shell.render("lib/etcd-tls.sh", PKI_DIR=pki_dir)
