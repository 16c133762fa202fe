"""etcd snapshots under mocks: one backup step per member after the cluster is healthy; with `etcdSnapshots.s3`,
a closed, versioned, encrypted bucket and a role that only etcd members hold and that may only put snapshots."""

import base64
import json
import re

import pytest

from cluster.render.etcd_backup import S3_PREFIX, SNAPSHOT_DIR
from infra.settings import SettingsError, parse_settings
from simulator.program import ClusterMocks, run_program

ADMIN = ["100.64.7.0/24"]
REMOTE = "command:remote:Command"
INSTANCE = "aws:ec2/instance:Instance"
BUCKET_ARN = "arn:aws:s3:::k8s-dev-etcd-0123456789"


def bucket_outputs(args):
    """What AWS answers for the bucket (the stock mock echoes inputs, and a bucket's name is chosen by AWS)."""
    if args.typ == "aws:s3/bucket:Bucket":
        return {"bucket": "k8s-dev-etcd-0123456789", "arn": BUCKET_ARN}
    if args.typ == "aws:iam/role:Role":
        return {"name": f"{args.name}-0123456", "arn": f"arn:aws:iam::123456789012:role/{args.name}"}
    if args.typ == "aws:iam/instanceProfile:InstanceProfile":
        return {"name": f"{args.name}-0123456"}
    return {}


@pytest.fixture(scope="module")
def with_s3():
    return run_program({"adminCidrs": ADMIN, "etcdSnapshots": {"s3": True, "keep": 5, "intervalMinutes": 15}},
                       mocks=ClusterMocks(extra_outputs=bucket_outputs))


@pytest.fixture(scope="module")
def local_only():
    return run_program({"adminCidrs": ADMIN})


def backup_steps(run):
    return {c.name: c for c in run.of_type(REMOTE) if c.name.endswith("-etcd-snapshots")}


def test_every_member_gets_one_backup_step_after_the_cluster_is_healthy(local_only):
    steps = backup_steps(local_only)
    assert set(steps) == {f"etcd-{i}-etcd-snapshots" for i in range(3)}
    health = local_only.named("etcd-0-etcd-health", REMOTE)
    component = local_only.named("k8s-dev-etcd-backups")
    for name, step in steps.items():
        assert step.depends_on_urn(health.urn), name
        assert step.parent == component.urn, name
        script = step.inputs["stdin"]
        assert "/usr/local/sbin/k8s-etcd-snapshot" in script and "/usr/local/sbin/k8s-etcd-restore" in script
        assert "systemctl enable --quiet k8s-etcd-snapshot.timer k8s-etcd-defrag.timer" in script
        assert SNAPSHOT_DIR in script


def test_by_default_nothing_is_uploaded_and_no_node_has_a_role(local_only):
    assert not local_only.of_type("aws:s3/bucket:Bucket")
    assert not local_only.of_type("aws:iam/role:Role")
    assert not local_only.of_type("aws:iam/instanceProfile:InstanceProfile")
    assert all(not i.inputs.get("iamInstanceProfile") for i in local_only.of_type(INSTANCE))
    for step in backup_steps(local_only).values():
        assert "s3." not in step.inputs["stdin"] and "169.254.169.254" not in step.inputs["stdin"]


def test_the_bucket_is_versioned_encrypted_closed_expiring_and_outlives_the_stack(with_s3):
    [bucket] = with_s3.of_type("aws:s3/bucket:Bucket")
    # D10: `etcdSnapshots.s3` turned off, a destroy or a new cluster name leave the bucket and its versions
    assert bucket.retain_on_delete is True and bucket.inputs["forceDestroy"] is False
    children = [r for r in with_s3.resources if r.type.startswith("aws:s3/")]
    assert len(children) == 5 and all(r.retain_on_delete for r in children)
    assert bucket.inputs["bucketPrefix"] == "k8s-dev-etcd-"
    # N10: snapshots expire, and so do the versions an expiry or an overwrite leaves behind
    [lifecycle] = with_s3.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    [rule] = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": f"{S3_PREFIX}/"}
    assert rule["expiration"] == {"days": 30} and rule["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    assert lifecycle.inputs["bucket"] == bucket.id
    [block] = with_s3.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.inputs[k] is True for k in
               ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    [versioning] = with_s3.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    [encryption] = with_s3.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    for child in (block, versioning, encryption):
        assert child.inputs["bucket"] == bucket.id


def test_the_role_may_only_put_objects_under_the_snapshot_prefix(with_s3):
    [role] = with_s3.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    policies = with_s3.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) == 1
    assert not with_s3.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    statements = json.loads(policies[0].inputs["policy"])["Statement"]
    assert statements == [{"Sid": "PutEtcdSnapshots", "Effect": "Allow", "Action": "s3:PutObject",
                           "Resource": f"{BUCKET_ARN}/{S3_PREFIX}/*"}]


def test_only_etcd_instances_carry_the_instance_profile(with_s3):
    [profile] = with_s3.of_type("aws:iam/instanceProfile:InstanceProfile")
    etcd = [i for i in with_s3.of_type(INSTANCE) if "-etcd-" in i.name]
    others = [i for i in with_s3.of_type(INSTANCE) if "-etcd-" not in i.name]
    assert len(etcd) == 3 and len(others) == 6
    assert all(i.inputs["iamInstanceProfile"] == profile.outputs["name"] for i in etcd)
    assert all(not i.inputs.get("iamInstanceProfile") for i in others)


def test_members_upload_to_the_bucket_with_the_settings_schedule(with_s3):
    for name, step in backup_steps(with_s3).items():
        member = name.removesuffix("-etcd-snapshots")
        script = step.inputs["stdin"]
        # The files travel base64-encoded inside the step; decode the snapshot script and timer.
        decoded = [base64.b64decode(b).decode() for b in re.findall(r"<<'K8S_FROM_SCRATCH_EOF'\n(.*?)\n", script)]
        snapshot = next(d for d in decoded if "snapshot save" in d)
        timer = next(d for d in decoded if "[Timer]" in d)
        assert f"https://k8s-dev-etcd-0123456789.s3.$region.amazonaws.com/{S3_PREFIX}/{member}/" in snapshot
        assert "keep=5" in snapshot
        assert "OnUnitActiveSec=15min" in timer


@pytest.mark.parametrize("value, message", [
    ("hourly", "setting 'etcdSnapshots' = 'hourly' is invalid: expected an object such as"),
    ({"intervalMinutes": 1}, "setting 'etcdSnapshots.intervalMinutes' = 1 is invalid: expected a whole number from 5 to 10080"),
    ({"keep": 0}, "setting 'etcdSnapshots.keep' = 0 is invalid: expected a whole number from 1 to 1000"),
    ({"s3": "yes"}, "setting 'etcdSnapshots.s3' = 'yes' is invalid: expected true or false"),
    ({"bucket": "mine"}, "setting 'etcdSnapshots.bucket' = 'mine' is invalid: unknown key; allowed keys are "
                         "intervalMinutes, keep, keepGb, s3, s3KeepDays, s3NoncurrentDays"),
    ({"s3KeepDays": 0}, "setting 'etcdSnapshots.s3KeepDays' = 0 is invalid: expected a whole number from 1 to 3650"),
])
def test_bad_snapshot_settings_are_refused_naming_key_value_and_what_is_allowed(value, message):
    with pytest.raises(SettingsError) as err:
        parse_settings({"adminCidrs": ADMIN, "etcdSnapshots": value})
    assert str(err.value).startswith(message), str(err.value)


def test_partial_snapshot_settings_keep_the_other_defaults():
    s = parse_settings({"adminCidrs": ADMIN, "etcdSnapshots": {"s3": True}}).etcd_snapshots
    assert (s.interval_minutes, s.keep, s.s3, s.s3_keep_days, s.s3_noncurrent_days) == (60, 24, True, 30, 7)


def test_turning_uploads_off_leaves_the_bucket_and_its_snapshots_in_aws():
    """D10: the engine drops a retained resource from the stack without deleting it (step.go DeleteStep.Apply)."""
    from moto import mock_aws

    from simulator.change_sim import plan_case, replay_operations
    plan = plan_case("snapshots-off")
    [bucket] = [op for op in plan.ops("k8s-dev-etcd-snapshots", "delete") if op.change.type == "aws:s3/bucket:Bucket"]
    assert bucket.status == "retained"
    with mock_aws():
        aws = replay_operations(plan)
        [kept] = aws.s3.list_buckets()["Buckets"]
        assert kept["Name"].startswith("k8s-dev-etcd-")
        # still closed, versioned, encrypted and expiring: what configures it is kept with it
        assert aws.s3.get_bucket_versioning(Bucket=kept["Name"])["Status"] == "Enabled"
        assert aws.s3.get_bucket_lifecycle_configuration(Bucket=kept["Name"])["Rules"]
        assert aws.s3.get_public_access_block(Bucket=kept["Name"])["PublicAccessBlockConfiguration"]
        assert not aws.iam.list_instance_profiles()["InstanceProfiles"] and not aws.iam.list_roles()["Roles"]


def test_aws_accepts_the_bucket_the_role_and_etcd_instances_carrying_its_profile(with_s3):
    """Replayed into moto: the bucket and its settings, the role and its policy, and instances launched with the
    profile (moto refuses a profile that does not exist)."""
    import boto3
    from moto import mock_aws

    from simulator.aws_replay import AwsReplay
    from simulator.program import REGION

    with mock_aws():
        aws = AwsReplay()
        aws.replay(with_s3)
        [bucket] = aws.s3.list_buckets()["Buckets"]
        name = bucket["Name"]
        assert name.startswith("k8s-dev-etcd-") and len(name) <= 63
        assert aws.s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        [rule] = aws.s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert rule["Expiration"] == {"Days": 30} and rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
        assert aws.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
        [profile] = aws.iam.list_instance_profiles()["InstanceProfiles"]
        [role] = profile["Roles"]
        [policy_name] = aws.iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        document = aws.iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)["PolicyDocument"]
        assert document["Statement"][0]["Resource"] == f"arn:aws:s3:::{name}/{S3_PREFIX}/*"
        ec2 = boto3.client("ec2", region_name=REGION)
        with_profile = {tag["Value"] for r in ec2.describe_instances()["Reservations"] for inst in r["Instances"]
                        if inst.get("IamInstanceProfile") for tag in inst["Tags"] if tag["Key"] == "Name"}
        assert with_profile == {f"k8s-dev-etcd-{i}" for i in range(3)}


def test_the_bucket_name_is_an_output_only_when_snapshots_go_to_s3(with_s3, local_only):
    assert with_s3.outputs["etcdSnapshotBucket"] == "k8s-dev-etcd-0123456789"
    assert "etcdSnapshotBucket" not in local_only.outputs
