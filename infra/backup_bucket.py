"""BackupBucket: where etcd members upload their snapshots (setting `etcdSnapshots.s3`), and the instance role that
lets them. The bucket is versioned, encrypted and closed to the public; the role may put objects under the
snapshot prefix and do nothing else (no read, no list, no delete: a compromised member cannot read or erase the
history, and versioning keeps an overwritten object)."""

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


class BackupBucket(pulumi.ComponentResource):
    bucket: pulumi.Output[str]                   # its name
    instance_profile_name: pulumi.Output[str]    # for the etcd instances

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-from-scratch:infra:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # AWS names the bucket from this prefix plus a random suffix: bucket names are global. No dots, so the
        # virtual-hosted https name the members upload to matches S3's wildcard certificate.
        bucket = aws.s3.Bucket(f"{name}", bucket_prefix=f"{args.cluster_name}-etcd-", force_destroy=True,
                               tags=args.tags, opts=child)
        aws.s3.BucketPublicAccessBlock(f"{name}-no-public-access", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True}],
            opts=child)

        role = aws.iam.Role(f"{name}-etcd-role", assume_role_policy=EC2_TRUST_POLICY, tags=args.tags, opts=child)
        aws.iam.RolePolicy(f"{name}-put-snapshots", role=role.id, policy=bucket.arn.apply(put_snapshots_policy),
                           opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-etcd", role=role.name, tags=args.tags, opts=child)

        self.bucket = bucket.bucket
        self.instance_profile_name = profile.name
        self.register_outputs({"bucket": self.bucket})
