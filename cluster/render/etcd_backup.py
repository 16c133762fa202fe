"""etcd snapshots and restore: a timer on every member that saves, verifies, keeps the newest N and optionally
uploads a snapshot to S3, and the script that rebuilds a member's data dir from a snapshot.

Every member takes its own snapshots (through its own client endpoint on 127.0.0.1), so a backup exists as long as
any one member's disk survives. Uploads use the curl Ubuntu ships (`--aws-sigv4`, 7.75 and later) with the instance
role's credentials from IMDSv2: the AWS CLI is not packaged for Ubuntu 24.04 outside snap, and a Python SDK would be
one more thing to install and pin on every member for a single PUT.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence

from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, write_files_script
from cluster.render.etcd import CLIENT_PORT, DATA_DIR, ETCD_PKI, PEER_PORT, Member, initial_cluster

SNAPSHOT_DIR = "/var/lib/etcd-snapshots"
SBIN_DIR = "/usr/local/sbin"
SNAPSHOT_SCRIPT = f"{SBIN_DIR}/k8s-etcd-snapshot"
RESTORE_SCRIPT = f"{SBIN_DIR}/k8s-etcd-restore"
SNAPSHOT_UNIT = "k8s-etcd-snapshot"
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


def snapshot_script(member: Member, keep: int, bucket: str | None, paths: BackupPaths = BackupPaths()) -> str:
    """Save a snapshot from the member's own endpoint, verify it, keep the newest `keep`, upload it when a bucket
    is given. Fails (and the unit shows failed) when any of these fails; a snapshot that does not verify is deleted."""
    q = shlex.quote
    upload = _upload_function(member, bucket) if bucket else ""
    upload_call = 'upload "$file"\n' if bucket else ""
    return f"""#!/bin/bash
# Verification: every snapshot is read back by `etcdutl snapshot status` before it counts; one that is not is removed.
set -euo pipefail
umask 077
dir={q(paths.snapshot_dir)}
keep={keep}
install -d -m 0700 "$dir"
file="$dir/{member.name}-$(date -u +%Y%m%dT%H%M%SZ).db"
# etcdctl writes "$file.part" and renames it when complete; neither may survive a failed run.
trap 'rm -f "$file.part"' EXIT
tls=(--cacert {q(paths.pki_dir)}/ca.crt --cert {q(paths.pki_dir)}/server.crt --key {q(paths.pki_dir)}/server.key)
timeout {SAVE_SECONDS} {q(paths.bin_dir)}/etcdctl --endpoints https://127.0.0.1:{CLIENT_PORT} "${{tls[@]}}" \\
  --dial-timeout 10s --command-timeout {SAVE_SECONDS - 10}s snapshot save "$file"
if ! status=$(timeout {STATUS_SECONDS} {q(paths.bin_dir)}/etcdutl snapshot status "$file" -w json 2>&1); then
  echo "snapshot $file does not verify, removed: $status" >&2
  rm -f "$file"
  exit 1
fi
chmod 0600 "$file"
echo "saved $file: $status"
{upload}
# Newest first (the names sort by time); everything after the first $keep goes.
mapfile -t snapshots < <(find "$dir" -maxdepth 1 -type f -name '{member.name}-*.db' -printf '%f\\n' | sort -r)
for old in "${{snapshots[@]:keep}}"; do
  rm -f "${{dir:?}}/$old"
  echo "removed $dir/$old (keeping the newest $keep)"
done
{upload_call}"""


def _upload_function(member: Member, bucket: str) -> str:
    """A bash function that PUTs one file to s3://bucket/etcd-snapshots/<member>/ with the instance role.
    The role's keys reach curl through its stdin (`--config -`), never its command line."""
    return f"""
imds=http://169.254.169.254/latest
# Options for curl on its stdin: header and credential values stay out of every command line.
imds_get() {{
  printf 'header = "X-aws-ec2-metadata-token: %s"\\n' "$imds_token" |
    curl -sS --fail --max-time 10 --config - "$imds/$1"
}}
upload() {{
  local file=$1 role credentials key secret session region digest
  imds_token=$(curl -sS --fail --max-time 10 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token")
  region=$(imds_get meta-data/placement/region)
  role=$(imds_get meta-data/iam/security-credentials/)
  credentials=$(imds_get "meta-data/iam/security-credentials/$role")
  {{ read -r key; read -r secret; read -r session; }} < <(python3 -c '
import json, sys
c = json.load(sys.stdin)
print(c["AccessKeyId"]); print(c["SecretAccessKey"]); print(c["Token"])' <<<"$credentials")
  # S3 checks the payload against this digest; curl signs it as given.
  digest=$(sha256sum "$file" | cut -d' ' -f1)
  printf 'user = "%s:%s"\\nheader = "x-amz-security-token: %s"\\n' "$key" "$secret" "$session" |
    curl -sS --fail --max-time {UPLOAD_SECONDS} --retry 3 --config - --aws-sigv4 "aws:amz:$region:s3" \\
      -H "x-amz-content-sha256: $digest" --upload-file "$file" \\
      "https://{bucket}.s3.$region.amazonaws.com/{S3_PREFIX}/{member.name}/$(basename "$file")"
  echo "uploaded $file to s3://{bucket}/{S3_PREFIX}/{member.name}/"
}}"""


def restore_script(member: Member, members: Sequence[Member], cluster_name: str,
                   paths: BackupPaths = BackupPaths()) -> str:
    """`k8s-etcd-restore SNAPSHOT`: run on every member with the same snapshot file. Stops etcd, rebuilds the data
    dir as this member of a new cluster with the same members, keeps the old data dir aside, starts etcd.
    The cluster token is derived from the snapshot's digest, so every member agrees on it without being told."""
    q = shlex.quote
    return f"""#!/bin/bash
# Rebuild this etcd member ({member.name}) from a snapshot. Run it on every member with the same snapshot file;
# the cluster is back once a majority has started. Verification: the snapshot must pass `etcdutl snapshot status`.
set -euo pipefail
umask 077
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 SNAPSHOT   (a file saved by k8s-etcd-snapshot; the same one on every member)" >&2
  exit 2
fi
snapshot=$1
data={q(paths.data_dir)}
timeout {STATUS_SECONDS} {q(paths.bin_dir)}/etcdutl snapshot status "$snapshot" -w table
token="{cluster_name}-restore-$(sha256sum "$snapshot" | cut -c1-16)"
echo "stopping etcd on {member.name}"
timeout 120 systemctl stop etcd
restoring="$data.restoring"
rm -rf "$restoring"
timeout {RESTORE_SECONDS} {q(paths.bin_dir)}/etcdutl snapshot restore "$snapshot" \\
  --name {member.name} \\
  --initial-cluster {initial_cluster(members)} \\
  --initial-advertise-peer-urls https://{member.ip}:{PEER_PORT} \\
  --initial-cluster-token "$token" \\
  --data-dir "$restoring"
if [ -e "$data" ]; then
  aside="$data.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$data" "$aside"
  echo "the previous data dir is kept at $aside; delete it once the cluster is healthy"
fi
mv "$restoring" "$data"
chown -R {q(paths.owner)}: "$data"
chmod 0700 "$data"
# Without --no-block, the first member would wait for a quorum that only the next members' restores can bring.
timeout 60 systemctl start --no-block etcd
echo "restored {member.name} from $snapshot (cluster token $token); etcd is starting"
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
                 bucket: str | None) -> list[NodeFile]:
    return [
        NodeFile(SNAPSHOT_SCRIPT, snapshot_script(member, keep, bucket), "0700"),
        NodeFile(RESTORE_SCRIPT, restore_script(member, members, cluster_name), "0700"),
        NodeFile(f"{UNIT_DIR}/{SNAPSHOT_UNIT}.service", snapshot_service()),
        NodeFile(f"{UNIT_DIR}/{SNAPSHOT_UNIT}.timer", snapshot_timer(interval_minutes)),
    ]


def install_script(files: Sequence[NodeFile]) -> str:
    """The member's one backup step: write the files, then (re)arm the timer."""
    return write_files_script(files).removesuffix("exit 0\n") + ENABLE_TIMER_SCRIPT


ENABLE_TIMER_SCRIPT = f"""# Verification: the snapshot timer is active and listed with its next run.
install -d -m 0700 -o root -g root {SNAPSHOT_DIR}
systemctl daemon-reload
systemctl enable {SNAPSHOT_UNIT}.timer
# A changed interval takes effect now, not at the next boot.
systemctl restart {SNAPSHOT_UNIT}.timer
systemctl is-active --quiet {SNAPSHOT_UNIT}.timer
systemctl list-timers --no-pager {SNAPSHOT_UNIT}.timer
"""
