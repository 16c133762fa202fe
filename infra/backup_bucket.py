"""BackupBucket: where etcd members upload their snapshots (setting `etcdSnapshots.s3`), and the instance role that
lets them. The bucket is versioned, encrypted, closed to the public, expires old snapshots and versions, and is kept
when the stack lets go of it; the role may put objects under the snapshot prefix and do nothing else (no read, no
list, no delete: a compromised member cannot read or erase the history, and versioning keeps an overwritten
object)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from cluster.render.etcd_backup import S3_PREFIX

EC2_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})


def put_snapshots_policy(bucket_arn: str) -> str:
    """The only permission etcd instances get: write objects under the snapshot prefix."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PutEtcdSnapshots", "Effect": "Allow", "Action": "s3:PutObject",
                       "Resource": f"{bucket_arn}/{S3_PREFIX}/*"}],
    })


@dataclass
class BackupBucketArgs:
    cluster_name: str
    tags: dict[str, str]
    keep_days: int = 30            # snapshots expire this many days after upload
    noncurrent_days: int = 7       # an overwritten or expired version is kept this much longer


class BackupBucket(pulumi.ComponentResource):
    bucket: pulumi.Output[str]                   # its name
    instance_profile_name: pulumi.Output[str]    # for the etcd instances

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # What keeps the bucket private, versioned, encrypted and expiring stays with it when the stack lets go.
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        # AWS names the bucket from this prefix plus a random suffix: bucket names are global. No dots, so the
        # virtual-hosted https name the members upload to matches S3's wildcard certificate.
        # The backups outlive the stack: turning `etcdSnapshots.s3` off, a destroy or a new cluster name drops the
        # bucket from the stack and leaves it, and every version in it, in place (the engine calls no Delete,
        # step.go DeleteStep.Apply 661-662); its lifecycle then empties it. Without force_destroy a delete by hand
        # needs the bucket emptied first (docs/recovery.md).
        bucket = aws.s3.Bucket(f"{name}", bucket_prefix=f"{args.cluster_name}-etcd-", force_destroy=False,
                               tags=args.tags, opts=kept)
        aws.s3.BucketPublicAccessBlock(f"{name}-no-public-access", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=kept)
        aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=kept)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True}],
            opts=kept)

        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry", bucket=bucket.id,
            rules=[{"id": "expire-snapshots", "status": "Enabled", "filter": {"prefix": f"{S3_PREFIX}/"},
                    "expiration": {"days": args.keep_days},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1}}],
            opts=kept)

        role = aws.iam.Role(f"{name}-etcd-role", assume_role_policy=EC2_TRUST_POLICY, tags=args.tags, opts=child)
        aws.iam.RolePolicy(f"{name}-put-snapshots", role=role.id, policy=bucket.arn.apply(put_snapshots_policy),
                           opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-etcd", role=role.name, tags=args.tags, opts=child)

        self.bucket = bucket.bucket
        self.instance_profile_name = profile.name
        self.register_outputs({"bucket": self.bucket})
