"""The AWS permissions the deployer needs, per resource type and invoke the program declares (pure data).

One row per Pulumi type: the IAM actions pulumi-aws (terraform-provider-aws underneath) calls to create, read,
update, delete and tag it, for the arguments this program sets. docs/aws-permissions.md is rendered from this table
and the types the program declares under mocks (simulator/docs.py); a test fails when the program declares a type or
calls an invoke this table does not map.

Sources, per row: the actions the pike project maps to each Terraform resource (JamesWoolfenden/pike,
src/mapping/aws/<resource|data>/<service>/<terraform name>.json at 085701b), narrowed to what the arguments this
program sets call and checked against terraform-provider-aws (internal/service/<service>/<file>.go) where named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PIKE = "pike src/mapping/aws/{kind}/{service}/{name}.json"
PROVIDER = "terraform-provider-aws internal/service/{path}"


@dataclass(frozen=True)
class Permissions:
    terraform: str                 # the Terraform resource or data source pulumi-aws wraps
    create: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    source: str = ""

    @property
    def actions(self) -> set[str]:
        return {*self.create, *self.read, *self.update, *self.delete, *self.tag}


EC2_TAGS = ("ec2:CreateTags", "ec2:DeleteTags")
ELB_TAGS = ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags", "elasticloadbalancing:DescribeTags")
LOCAL = Permissions("none: computed on the deployer", source="no AWS call")

RESOURCES: dict[str, Permissions] = {
    "aws:ec2/vpc:Vpc": Permissions(
        "aws_vpc", create=("ec2:CreateVpc", "ec2:ModifyVpcAttribute"),
        # Read also looks up the VPC's default network ACL, main route table and default security group.
        read=("ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:DescribeNetworkAcls", "ec2:DescribeRouteTables",
              "ec2:DescribeSecurityGroups"),
        update=("ec2:ModifyVpcAttribute",), delete=("ec2:DeleteVpc",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_vpc") + "; "
        + PROVIDER.format(path="ec2/vpc_.go")),
    "aws:ec2/subnet:Subnet": Permissions(
        "aws_subnet", create=("ec2:CreateSubnet", "ec2:ModifySubnetAttribute"), read=("ec2:DescribeSubnets",),
        update=("ec2:ModifySubnetAttribute",), delete=("ec2:DeleteSubnet", "ec2:DescribeNetworkInterfaces"),
        tag=EC2_TAGS, source=PIKE.format(kind="resource", service="ec2", name="aws_subnet")),
    "aws:ec2/internetGateway:InternetGateway": Permissions(
        "aws_internet_gateway", create=("ec2:CreateInternetGateway", "ec2:AttachInternetGateway"),
        read=("ec2:DescribeInternetGateways",), update=("ec2:AttachInternetGateway", "ec2:DetachInternetGateway"),
        delete=("ec2:DetachInternetGateway", "ec2:DeleteInternetGateway"), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_internet_gateway")),
    "aws:ec2/routeTable:RouteTable": Permissions(
        "aws_route_table", create=("ec2:CreateRouteTable",), read=("ec2:DescribeRouteTables",),
        delete=("ec2:DeleteRouteTable",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_route_table")),
    "aws:ec2/route:Route": Permissions(
        "aws_route", create=("ec2:CreateRoute",), read=("ec2:DescribeRouteTables",),
        update=("ec2:ReplaceRoute",), delete=("ec2:DeleteRoute",),
        source=PIKE.format(kind="resource", service="ec2", name="aws_route") + "; "
        + PROVIDER.format(path="ec2/vpc_route.go") + " (targets are updated by ReplaceRoute)"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Permissions(
        "aws_route_table_association", create=("ec2:AssociateRouteTable",), read=("ec2:DescribeRouteTables",),
        update=("ec2:ReplaceRouteTableAssociation",), delete=("ec2:DisassociateRouteTable",),
        source=PIKE.format(kind="resource", service="ec2", name="aws_route_table_association")),
    "aws:ec2/eip:Eip": Permissions(
        "aws_eip", create=("ec2:AllocateAddress",), read=("ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"),
        delete=("ec2:ReleaseAddress", "ec2:DisassociateAddress"), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_eip") + "; "
        + PROVIDER.format(path="ec2/ec2_eip.go") + " (the PTR record is read with DescribeAddressesAttribute)"),
    "aws:ec2/natGateway:NatGateway": Permissions(
        "aws_nat_gateway", create=("ec2:CreateNatGateway",), read=("ec2:DescribeNatGateways",),
        delete=("ec2:DeleteNatGateway",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_nat_gateway")),
    "aws:ec2/securityGroup:SecurityGroup": Permissions(
        "aws_security_group",
        # A new group's default allow-all egress rule is revoked right after creation (the rules are resources
        # of their own); delete waits for, and removes, network interfaces the group still holds.
        create=("ec2:CreateSecurityGroup", "ec2:RevokeSecurityGroupEgress"), read=("ec2:DescribeSecurityGroups",),
        delete=("ec2:DeleteSecurityGroup", "ec2:DescribeNetworkInterfaces"), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_security_group") + "; "
        + PROVIDER.format(path="ec2/vpc_security_group.go")),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Permissions(
        "aws_vpc_security_group_ingress_rule", create=("ec2:AuthorizeSecurityGroupIngress",),
        read=("ec2:DescribeSecurityGroupRules",), update=("ec2:ModifySecurityGroupRules",),
        delete=("ec2:RevokeSecurityGroupIngress",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_vpc_security_group_ingress_rule") + "; "
        + PROVIDER.format(path="ec2/vpc_security_group_ingress_rule.go") + " (updates: ModifySecurityGroupRules)"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": Permissions(
        "aws_vpc_security_group_egress_rule", create=("ec2:AuthorizeSecurityGroupEgress",),
        read=("ec2:DescribeSecurityGroupRules",), update=("ec2:ModifySecurityGroupRules",),
        delete=("ec2:RevokeSecurityGroupEgress",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_vpc_security_group_egress_rule") + "; "
        + PROVIDER.format(path="ec2/vpc_security_group_egress_rule.go")),
    "aws:ec2/subnetCidrReservation:SubnetCidrReservation": Permissions(
        "aws_ec2_subnet_cidr_reservation", create=("ec2:CreateSubnetCidrReservation",),
        read=("ec2:GetSubnetCidrReservations",), delete=("ec2:DeleteSubnetCidrReservation",),
        source=PIKE.format(kind="resource", service="ec2", name="aws_ec2_subnet_cidr_reservation")),
    "aws:ec2/keyPair:KeyPair": Permissions(
        "aws_key_pair", create=("ec2:ImportKeyPair",), read=("ec2:DescribeKeyPairs",), delete=("ec2:DeleteKeyPair",),
        tag=EC2_TAGS, source=PIKE.format(kind="resource", service="ec2", name="aws_key_pair")
        + " (the program always brings the public key: ImportKeyPair, never CreateKeyPair)"),
    "aws:ec2/instance:Instance": Permissions(
        "aws_instance",
        create=("ec2:RunInstances", "ec2:DescribeImages", "ec2:DescribeKeyPairs", "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups", "iam:PassRole"),
        read=("ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceAttribute",
              "ec2:DescribeVolumes", "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeNetworkInterfaces",
              "ec2:DescribeTags"),
        # Instance type: stop, modify, start. Root volume size: ModifyVolume. Source/dest check, user data and
        # groups: ModifyInstanceAttribute. etcdSnapshots.s3 switched on or off: the instance profile association.
        update=("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances",
                "ec2:ModifyInstanceMetadataOptions", "ec2:ModifyVolume", "ec2:DescribeVolumesModifications",
                "ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation",
                "ec2:DisassociateIamInstanceProfile", "ec2:DescribeIamInstanceProfileAssociations", "iam:PassRole"),
        delete=("ec2:TerminateInstances",), tag=EC2_TAGS,
        source=PIKE.format(kind="resource", service="ec2", name="aws_instance") + "; "
        + PROVIDER.format(path="ec2/ec2_instance.go") + " (readBlockDevicesFromInstance: DescribeVolumes)"),
    "aws:lb/loadBalancer:LoadBalancer": Permissions(
        "aws_lb",
        # The first load balancer of an account creates ELB's service-linked role.
        create=("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "iam:CreateServiceLinkedRole"),
        read=("elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes"),
        update=("elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetSubnets"),
        # Delete waits until the load balancer's network interfaces are gone.
        delete=("elasticloadbalancing:DeleteLoadBalancer", "ec2:DescribeNetworkInterfaces"), tag=ELB_TAGS,
        source=PIKE.format(kind="resource", service="elasticloadbalancing", name="aws_lb") + " (its classic-ELB "
        "and security-group actions left out: a network load balancer without groups); "
        + PROVIDER.format(path="elbv2/load_balancer.go")),
    "aws:lb/targetGroup:TargetGroup": Permissions(
        "aws_lb_target_group",
        create=("elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes"),
        read=("elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes"),
        update=("elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes"),
        delete=("elasticloadbalancing:DeleteTargetGroup",), tag=ELB_TAGS,
        source=PIKE.format(kind="resource", service="elasticloadbalancing", name="aws_lb_target_group") + "; "
        + PROVIDER.format(path="elbv2/target_group.go") + " (health checks: ModifyTargetGroup)"),
    "aws:lb/listener:Listener": Permissions(
        "aws_lb_listener", create=("elasticloadbalancing:CreateListener",),
        read=("elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerAttributes"),
        update=("elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyListenerAttributes"),
        delete=("elasticloadbalancing:DeleteListener",), tag=ELB_TAGS,
        source=PIKE.format(kind="resource", service="elasticloadbalancing", name="aws_lb_listener")),
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": Permissions(
        "aws_lb_target_group_attachment", create=("elasticloadbalancing:RegisterTargets",),
        read=("elasticloadbalancing:DescribeTargetHealth",), delete=("elasticloadbalancing:DeregisterTargets",),
        source=PIKE.format(kind="resource", service="elasticloadbalancing", name="aws_lb_target_group_attachment")),
    "aws:s3/bucket:Bucket": Permissions(
        "aws_s3_bucket", create=("s3:CreateBucket", "s3:PutBucketTagging"),
        # Read fetches every sub-configuration a bucket can carry.
        read=("s3:ListBucket", "s3:GetBucketTagging", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketCORS",
              "s3:GetBucketWebsite", "s3:GetBucketVersioning", "s3:GetAccelerateConfiguration",
              "s3:GetBucketRequestPayment", "s3:GetBucketLogging", "s3:GetLifecycleConfiguration",
              "s3:GetReplicationConfiguration", "s3:GetEncryptionConfiguration",
              "s3:GetBucketObjectLockConfiguration"),
        update=("s3:PutBucketTagging",),
        # forceDestroy: every version of every object is deleted before the bucket.
        delete=("s3:DeleteBucket", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"),
        tag=("s3:PutBucketTagging", "s3:GetBucketTagging"),
        source=PIKE.format(kind="resource", service="s3", name="aws_s3_bucket") + "; "
        + PROVIDER.format(path="s3/bucket.go") + " (force_destroy empties every object version first)"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Permissions(
        "aws_s3_bucket_public_access_block", create=("s3:PutBucketPublicAccessBlock",),
        read=("s3:GetBucketPublicAccessBlock",), update=("s3:PutBucketPublicAccessBlock",),
        delete=("s3:PutBucketPublicAccessBlock",),
        source=PIKE.format(kind="resource", service="s3", name="aws_s3_bucket_public_access_block")
        + " (DeletePublicAccessBlock is authorized by s3:PutBucketPublicAccessBlock)"),
    "aws:s3/bucketVersioning:BucketVersioning": Permissions(
        "aws_s3_bucket_versioning", create=("s3:PutBucketVersioning",), read=("s3:GetBucketVersioning",),
        update=("s3:PutBucketVersioning",), delete=("s3:PutBucketVersioning",),
        source=PIKE.format(kind="resource", service="s3", name="aws_s3_bucket_versioning")
        + " (delete suspends versioning)"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Permissions(
        "aws_s3_bucket_server_side_encryption_configuration", create=("s3:PutEncryptionConfiguration",),
        read=("s3:GetEncryptionConfiguration",), update=("s3:PutEncryptionConfiguration",),
        delete=("s3:PutEncryptionConfiguration",),
        source=PIKE.format(kind="resource", service="s3", name="aws_s3_bucket_server_side_encryption_configuration")
        + " (DeleteBucketEncryption is authorized by s3:PutEncryptionConfiguration)"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Permissions(
        "aws_s3_bucket_lifecycle_configuration", create=("s3:PutLifecycleConfiguration",),
        read=("s3:GetLifecycleConfiguration",), update=("s3:PutLifecycleConfiguration",),
        delete=("s3:PutLifecycleConfiguration",),
        source=PIKE.format(kind="resource", service="s3", name="aws_s3_bucket_lifecycle_configuration")
        + " (DeleteBucketLifecycle is authorized by s3:PutLifecycleConfiguration)"),
    "aws:iam/role:Role": Permissions(
        "aws_iam_role", create=("iam:CreateRole", "iam:TagRole"),
        read=("iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"),
        update=("iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:TagRole", "iam:UntagRole"),
        # Delete first takes the role out of its instance profiles.
        delete=("iam:DeleteRole", "iam:ListInstanceProfilesForRole", "iam:RemoveRoleFromInstanceProfile"),
        tag=("iam:TagRole", "iam:UntagRole"),
        source=PIKE.format(kind="resource", service="iam", name="aws_iam_role") + "; "
        + PROVIDER.format(path="iam/role.go")),
    "aws:iam/rolePolicy:RolePolicy": Permissions(
        "aws_iam_role_policy", create=("iam:PutRolePolicy",), read=("iam:GetRolePolicy",),
        update=("iam:PutRolePolicy",), delete=("iam:DeleteRolePolicy",),
        source=PIKE.format(kind="resource", service="iam", name="aws_iam_role_policy")),
    "aws:iam/instanceProfile:InstanceProfile": Permissions(
        "aws_iam_instance_profile",
        create=("iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:PassRole", "iam:TagInstanceProfile"),
        read=("iam:GetInstanceProfile",),
        update=("iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:PassRole"),
        delete=("iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"),
        tag=("iam:TagInstanceProfile", "iam:UntagInstanceProfile"),
        source=PIKE.format(kind="resource", service="iam", name="aws_iam_instance_profile")),
    # Providers that never call AWS: keys and certificates are made on the deployer, steps run over SSH.
    "tls:index/privateKey:PrivateKey": LOCAL,
    "tls:index/selfSignedCert:SelfSignedCert": LOCAL,
    "tls:index/certRequest:CertRequest": LOCAL,
    "tls:index/locallySignedCert:LocallySignedCert": LOCAL,
    "random:index/randomBytes:RandomBytes": LOCAL,
    "command:remote:Command": Permissions("none: a script over SSH", source="no AWS call"),
    "command:local:Command": Permissions("none: a command on the deployer", source="no AWS call"),
    # The bootstrapped mark on a node's primary interface (cluster/remote.py): a tag as a resource of its own.
    "aws:ec2/tag:Tag": Permissions(
        "aws_ec2_tag", create=("ec2:CreateTags",), read=("ec2:DescribeTags",), update=("ec2:CreateTags",),
        delete=("ec2:DeleteTags",), source=PIKE.format(kind="resource", service="ec2", name="aws_ec2_tag")),
}

INVOKES: dict[str, Permissions] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": Permissions(
        "aws_availability_zones", read=("ec2:DescribeAvailabilityZones",),
        source=PIKE.format(kind="data", service="ec2", name="aws_availability_zones")),
    "aws:ec2/getAmi:getAmi": Permissions(
        "aws_ami", read=("ec2:DescribeImages",), source=PIKE.format(kind="data", service="ec2", name="aws_ami")),
    "aws:ec2/getInstances:getInstances": Permissions(
        "aws_instances", read=("ec2:DescribeInstances",),
        source=PIKE.format(kind="data", service="ec2", name="aws_instances")),
    "aws:ec2/getInstance:getInstance": Permissions(
        "aws_instance (data source)",
        read=("ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceAttribute",
              "ec2:DescribeVolumes", "ec2:DescribeInstanceCreditSpecifications"),
        source=PROVIDER.format(path="ec2/ec2_instance_data_source.go") + " (the instance type, three attributes, "
        "its volumes, and a T instance's credit specification)"),
    # What the program asks AWS before it declares anything (infra/aws_facts.py).
    "aws:ec2/getInstanceType:getInstanceType": Permissions(
        "aws_ec2_instance_type", read=("ec2:DescribeInstanceTypes",),
        source=PIKE.format(kind="data", service="ec2", name="aws_ec2_instance_type")),
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": Permissions(
        "aws_ec2_instance_type_offerings", read=("ec2:DescribeInstanceTypeOfferings",),
        source=PIKE.format(kind="data", service="ec2", name="aws_ec2_instance_type_offerings")),
    "aws:ec2/getNetworkInterfaces:getNetworkInterfaces": Permissions(
        "aws_network_interfaces", read=("ec2:DescribeNetworkInterfaces",),
        source=PIKE.format(kind="data", service="ec2", name="aws_network_interfaces")),
    # The deployer's live read of every node's pod range (cluster/podnet.py): kubectl against the cluster's API.
    "command:local:run": Permissions("none: a command on the deployer", source="no AWS call"),
    "aws:ec2/getEips:getEips": Permissions(
        "aws_eips", read=("ec2:DescribeAddresses",),
        source=PIKE.format(kind="data", service="ec2", name="aws_eips")),
    "aws:ec2/getKeyPair:getKeyPair": Permissions(
        "aws_key_pair (data source)", read=("ec2:DescribeKeyPairs",),
        source=PIKE.format(kind="data", service="ec2", name="aws_key_pair")),
    "aws:lb/getLoadBalancer:getLoadBalancer": Permissions(
        "aws_lb (data source)",
        read=("elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
              "elasticloadbalancing:DescribeTags"),
        source=PIKE.format(kind="data", service="elbv2", name="aws_lb")),
    "aws:lb/getTargetGroup:getTargetGroup": Permissions(
        "aws_lb_target_group (data source)",
        read=("elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
              "elasticloadbalancing:DescribeTags"),
        source=PIKE.format(kind="data", service="elbv2", name="aws_lb_target_group")),
    "aws:servicequotas/getServiceQuota:getServiceQuota": Permissions(
        "aws_servicequotas_service_quota",
        # The account's value, and AWS's default when the account never changed it.
        read=("servicequotas:GetServiceQuota", "servicequotas:GetAWSDefaultServiceQuota"),
        source=PIKE.format(kind="data", service="servicequotas", name="aws_servicequotas_service_quota") + "; "
        + PROVIDER.format(path="servicequotas/service_quota_data_source.go")),
}

# The provider itself, when it starts: it asks STS who the credentials belong to (allowed for every principal).
PROVIDER_CALLS = ("sts:GetCallerIdentity",)

# iam:PassRole only for roles handed to EC2 (the etcd members' snapshot role), and the service-linked role only
# for Elastic Load Balancing.
CONDITIONS = {
    "iam:PassRole": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    "iam:CreateServiceLinkedRole": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
}


SIDS = {"ec2": "EC2", "elasticloadbalancing": "ElasticLoadBalancing", "s3": "S3", "iam": "IAM",
        "servicequotas": "ServiceQuotas"}


class Unmapped(KeyError):
    pass


def permissions_for(types: set[str], invokes: set[str]) -> list[tuple[str, Permissions]]:
    """(type or invoke, its row) for everything given; Unmapped names what the table does not cover."""
    missing = sorted((types - RESOURCES.keys()) | (invokes - INVOKES.keys()))
    if missing:
        raise Unmapped(f"no AWS permissions mapped for {', '.join(missing)}: add a row to infra/deployer_policy.py")
    return [(t, RESOURCES[t]) for t in sorted(types)] + [(i, INVOKES[i]) for i in sorted(invokes)]


def policy_document(types: set[str], invokes: set[str]) -> dict:
    """An IAM policy allowing what these types and invokes need: one statement per service, and one per
    conditioned action."""
    actions = {a for _, row in permissions_for(types, invokes) for a in row.actions}
    statements = []
    for service in sorted({a.split(":")[0] for a in actions - CONDITIONS.keys()}):
        statements.append({"Sid": SIDS[service], "Effect": "Allow", "Resource": "*",
                           "Action": sorted(a for a in actions - CONDITIONS.keys() if a.startswith(service + ":"))})
    for action in sorted(actions & CONDITIONS.keys()):
        statements.append({"Sid": action.split(":")[1], "Effect": "Allow", "Action": action, "Resource": "*",
                           "Condition": CONDITIONS[action]})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(types: set[str], invokes: set[str]) -> str:
    return json.dumps(policy_document(types, invokes), indent=2) + "\n"
