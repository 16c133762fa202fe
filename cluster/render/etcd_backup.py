"""etcd snapshots, defragmentation and restore: a timer on every member that saves, verifies, keeps the newest
snapshots within a count and a byte budget and optionally uploads a snapshot to S3; a daily timer that defragments
the member when its database file is largely free pages; and the script that rebuilds a member's data dir from a
snapshot.

Every member takes its own snapshots (through its own client endpoint on 127.0.0.1), so a backup exists as long as
any one member's disk survives. Uploads use the curl Ubuntu ships (`--aws-sigv4`, 7.75 and later) with the instance
role's credentials from IMDSv2: the AWS CLI is not packaged for Ubuntu 24.04 outside snap, and a Python SDK would be
one more thing to install and pin on every member for a single PUT.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence

from cluster.render import shell
from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, write_files_script
from cluster.render.etcd import CLIENT_PORT, DATA_DIR, ETCD_PKI, PEER_PORT, Member, etcdctl_tls, initial_cluster

SNAPSHOT_DIR = "/var/lib/etcd-snapshots"
SBIN_DIR = "/usr/local/sbin"
SNAPSHOT_SCRIPT = f"{SBIN_DIR}/k8s-etcd-snapshot"
RESTORE_SCRIPT = f"{SBIN_DIR}/k8s-etcd-restore"
SNAPSHOT_UNIT = "k8s-etcd-snapshot"
DEFRAG_SCRIPT = f"{SBIN_DIR}/k8s-etcd-defrag"
DEFRAG_UNIT = "k8s-etcd-defrag"
# Each member defragments once a day, DEFRAG_SPACING_MINUTES after the previous member, from DEFRAG_FIRST_HOUR UTC:
# a defragmentation blocks its member, so no two members run one at once.
DEFRAG_FIRST_HOUR = 3
DEFRAG_SPACING_MINUTES = 10
# Worth a defragmentation: a quarter of the file, and at least 64 MiB, is free pages.
DEFRAG_MIN_PERCENT = 25
DEFRAG_MIN_BYTES = 64 * 1024 * 1024
DEFRAG_SECONDS = 600
TIMERS = (f"{SNAPSHOT_UNIT}.timer", f"{DEFRAG_UNIT}.timer")
# A restore moves every revision this far ahead (etcd-io/etcd#16028, the Kubernetes restore procedure): clients'
# watches and caches hold resource versions from after the snapshot, which must never be handed out again.
BUMP_REVISION = 1_000_000_000
# Objects land under this prefix, one folder per member; the instance role may write there and nowhere else.
S3_PREFIX = "etcd-snapshots"
# Bounds: a snapshot of etcd's largest supported database (8 GiB) streams in well under these on any instance.
SAVE_SECONDS = 600
STATUS_SECONDS = 300
UPLOAD_SECONDS = 1800
RESTORE_SECONDS = 900


@dataclass(frozen=True)
class BackupPaths:
    """Where the scripts find things on a member. Tests bind them to a lab's folders; nodes use the defaults."""
    pki_dir: str = ETCD_PKI
    data_dir: str = DATA_DIR
    snapshot_dir: str = SNAPSHOT_DIR
    bin_dir: str = BIN_DIR
    owner: str = "etcd"


def snapshot_script(member: Member, keep: int, bucket: str | None, paths: BackupPaths = BackupPaths(), *,
                    keep_bytes: int = 4 * 1024 ** 3) -> str:
    """Save a snapshot from the member's own endpoint when there is room for twice the database (older snapshots
    make way), verify it, keep the newest ones within `keep` files and `keep_bytes`, upload it when a bucket is
    given. Fails (and the unit shows failed) when any of these fails; a snapshot that does not verify is deleted."""
    return shell.render(
        "etcd/snapshot.sh", SNAPSHOT_DIR=shlex.quote(paths.snapshot_dir), KEEP=keep, KEEP_BYTES=keep_bytes,
        MEMBER=member.name,
        ETCD_TLS=etcdctl_tls(shlex.quote(paths.pki_dir)), SAVE_SECONDS=SAVE_SECONDS,
        SAVE_COMMAND_SECONDS=SAVE_SECONDS - 10, BIN_DIR=shlex.quote(paths.bin_dir), CLIENT_PORT=CLIENT_PORT,
        STATUS_SECONDS=STATUS_SECONDS,
        UPLOAD_FUNCTION=_upload_function(member, bucket) if bucket else "",
        UPLOAD_CALL='upload "$file"' if bucket else "")


def _upload_function(member: Member, bucket: str) -> str:
    """A bash function that PUTs one file to s3://bucket/etcd-snapshots/<member>/ with the instance role.
    The role's keys reach curl through its stdin (`--config -`), never its command line."""
    return shell.render("etcd/snapshot-upload.sh", UPLOAD_SECONDS=UPLOAD_SECONDS, BUCKET=bucket, S3_PREFIX=S3_PREFIX,
                        MEMBER=member.name)


def restore_script(member: Member, members: Sequence[Member], cluster_name: str,
                   paths: BackupPaths = BackupPaths()) -> str:
    """`k8s-etcd-restore SNAPSHOT`: run on every member with the same snapshot file. Stops etcd, rebuilds the data
    dir as this member of a new cluster with the same members, keeps the old data dir aside, starts etcd.
    The cluster token is derived from the snapshot's digest, so every member agrees on it without being told."""
    return shell.render(
        "etcd/restore.sh", MEMBER=member.name, DATA_DIR=shlex.quote(paths.data_dir), STATUS_SECONDS=STATUS_SECONDS,
        BIN_DIR=shlex.quote(paths.bin_dir), CLUSTER_NAME=cluster_name, RESTORE_SECONDS=RESTORE_SECONDS,
        INITIAL_CLUSTER=initial_cluster(members), MEMBER_IP=member.ip, PEER_PORT=PEER_PORT,
        OWNER=shlex.quote(paths.owner), BUMP_REVISION=BUMP_REVISION, TIMERS=" ".join(TIMERS))


def defrag_script(member: Member, paths: BackupPaths = BackupPaths(), *, min_percent: int = DEFRAG_MIN_PERCENT,
                  min_bytes: int = DEFRAG_MIN_BYTES) -> str:
    """Defragment the member when enough of its database file is free pages and every member is healthy."""
    return shell.render(
        "etcd/defrag.sh", MEMBER=member.name, ETCD_TLS=etcdctl_tls(shlex.quote(paths.pki_dir)),
        BIN_DIR=shlex.quote(paths.bin_dir), CLIENT_PORT=CLIENT_PORT, DEFRAG_SECONDS=DEFRAG_SECONDS,
        DEFRAG_COMMAND_SECONDS=DEFRAG_SECONDS - 10, MIN_PERCENT=min_percent, MIN_BYTES=min_bytes,
        DATA_DIR=shlex.quote(paths.data_dir))


def defrag_service() -> str:
    return f"""[Unit]
Description=Defragmentation of the local etcd member when its database file is largely free pages
Documentation=https://etcd.io/docs/v3.6/op-guide/maintenance/#defragmentation
After=etcd.service

[Service]
Type=oneshot
ExecStart={DEFRAG_SCRIPT}
TimeoutStartSec={DEFRAG_SECONDS + 60}
"""


def defrag_timer(index: int) -> str:
    """Daily, the member at `index` DEFRAG_SPACING_MINUTES after the one before it."""
    minutes = DEFRAG_FIRST_HOUR * 60 + index * DEFRAG_SPACING_MINUTES
    return f"""[Unit]
Description=Defragment the local etcd member daily at {minutes // 60:02d}:{minutes % 60:02d} UTC when worthwhile

[Timer]
OnCalendar=*-*-* {minutes // 60:02d}:{minutes % 60:02d}:00 UTC

[Install]
WantedBy=timers.target
"""


def snapshot_service() -> str:
    return f"""[Unit]
Description=Snapshot of the local etcd member, verified, with retention
Documentation=https://etcd.io/docs/v3.6/op-guide/recovery/
After=etcd.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={SNAPSHOT_SCRIPT}
# The script bounds each command; this bounds the whole run.
TimeoutStartSec={SAVE_SECONDS + STATUS_SECONDS + UPLOAD_SECONDS + 60}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
"""


def snapshot_timer(interval_minutes: int) -> str:
    return f"""[Unit]
Description=Snapshot the local etcd member every {interval_minutes} minutes

[Timer]
OnBootSec=10min
OnUnitActiveSec={interval_minutes}min
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
"""


def backup_files(member: Member, members: Sequence[Member], cluster_name: str, *, interval_minutes: int, keep: int,
                 bucket: str | None, keep_bytes: int = 4 * 1024 ** 3) -> list[NodeFile]:
    return [
        NodeFile(SNAPSHOT_SCRIPT, snapshot_script(member, keep, bucket, keep_bytes=keep_bytes), "0700"),
        NodeFile(RESTORE_SCRIPT, restore_script(member, members, cluster_name), "0700"),
        NodeFile(DEFRAG_SCRIPT, defrag_script(member), "0700"),
        NodeFile(f"{UNIT_DIR}/{SNAPSHOT_UNIT}.service", snapshot_service()),
        NodeFile(f"{UNIT_DIR}/{SNAPSHOT_UNIT}.timer", snapshot_timer(interval_minutes)),
        NodeFile(f"{UNIT_DIR}/{DEFRAG_UNIT}.service", defrag_service()),
        NodeFile(f"{UNIT_DIR}/{DEFRAG_UNIT}.timer", defrag_timer(members.index(member))),
    ]


def install_script(files: Sequence[NodeFile]) -> str:
    """The member's one backup step: write the files, then (re)arm the timer."""
    return write_files_script(files).removesuffix("exit 0\n") + enable_timer_script()


def enable_timer_script() -> str:
    """Verification: the snapshot and defragmentation timers are active and listed with their next run."""
    return shell.render("etcd/snapshot-timer.sh", SNAPSHOT_DIR=SNAPSHOT_DIR, TIMERS=" ".join(TIMERS))
