"""The deployer's AWS permissions cover every resource type and invoke the program declares (in every stack shape
whose types differ, and in an update), and docs/aws-permissions.{md,json} are what infra/deployer_policy.py
renders."""

from __future__ import annotations

import json

import pytest

from infra import deployer_policy
from simulator import docs


def test_every_type_and_invoke_the_program_declares_has_its_aws_permissions():
    types, invokes = docs.declared()
    assert "aws:ec2/getInstance:getInstance" in invokes and "aws:s3/bucket:Bucket" in types, \
        "the shapes cover an update and snapshots to S3"
    for name, permissions in deployer_policy.permissions_for(set(types), set(invokes)):
        if name.startswith("aws:") and name in types:
            assert permissions.create and permissions.read and permissions.delete, f"{name}: create, read, delete"
    with pytest.raises(deployer_policy.Unmapped, match="aws:ec2/volumeAttachment:VolumeAttachment"):
        deployer_policy.permissions_for({*types, "aws:ec2/volumeAttachment:VolumeAttachment"}, set(invokes))


def test_the_aws_permissions_docs_are_what_the_table_renders():
    assert docs.PERMISSIONS.read_text() == docs.permissions_doc(), "regenerate it: python -m simulator.docs"
    assert docs.POLICY.read_text() == docs.policy(), "regenerate it: python -m simulator.docs"
    policy = json.loads(docs.POLICY.read_text())
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"ec2:RunInstances", "elasticloadbalancing:CreateLoadBalancer", "s3:CreateBucket",
            "iam:PassRole"} <= actions
