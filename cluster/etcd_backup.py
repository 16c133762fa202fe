"""EtcdBackups: on every etcd member, the snapshot and defragmentation scripts with their timers and the restore
script, in one step each."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from cluster.etcd import EtcdCluster
from cluster.render import etcd_backup as render
from cluster.render.common import files_digest
from infra.settings import EtcdSnapshotSettings


@dataclass
class EtcdBackupsArgs:
    cluster_name: str
    etcd: EtcdCluster
    schedule: EtcdSnapshotSettings
    bucket: pulumi.Input[str] | None = None     # BackupBucket.bucket when snapshots go to S3


class EtcdBackups(pulumi.ComponentResource):
    installed: list[pulumi.Resource]             # one step per member: files written, timer active

    def __init__(self, name: str, args: EtcdBackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:cluster:EtcdBackups", name, None, opts)
        members = args.etcd.members
        self.installed = []
        for member, host in zip(members, args.etcd.hosts):
            files = pulumi.Output.from_input(args.bucket).apply(
                lambda bucket, m=member: render.backup_files(
                    m, members, args.cluster_name, interval_minutes=args.schedule.interval_minutes,
                    keep=args.schedule.keep, bucket=bucket, keep_bytes=args.schedule.keep_gb * 1024 ** 3))
            # After the cluster is healthy, so the timer's first snapshot finds a member to save.
            self.installed.append(host.step(
                "etcd-snapshots", files.apply(render.install_script), triggers=[files.apply(files_digest)],
                depends_on=[args.etcd.healthy], parent=self))
        self.register_outputs({})
