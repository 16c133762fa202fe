"""How the Pulumi engine and the providers change what this program declares: one table of the input properties
that force a replacement, per resource type the program uses, each row with its source. Pure data, no pulumi import.

The change simulator (simulator/change_sim.py) classifies every resource of a setting change with this table, and
the "Changing a running cluster" section of docs/operations.md is rendered from the simulator's results; neither
keeps a list of its own.

Property names are the camelCase input names the engine (and the mocks) see. A path `a.b` is field `b` of the
object input `a`. `*` means every input: the provider has no update for that type, so any change replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TF_AWS = "terraform-provider-aws"
TF_TLS = "terraform-provider-tls"


@dataclass(frozen=True)
class ReplaceRule:
    type: str                       # Pulumi type token
    replace_on: tuple[str, ...]     # inputs whose change forces a replacement
    source: str                     # where the rule is written down
    # List inputs for which only a removed element forces a replacement (an added one is an update).
    replace_when_shrunk: tuple[str, ...] = ()
    # Mutually exclusive inputs: switching from one to another forces a replacement, a new value of the same one
    # does not.
    replace_when_switched: tuple[str, ...] = ()
    # The input the provider fills with "<resource name>-<7 random characters>" when the program leaves it unset,
    # and the longest value AWS accepts (the bridge fails, it does not truncate, when the name would not fit).
    autoname: tuple[str, int] | None = None
    # Outputs that get new values when the resource is created again (besides its id): whatever holds them in its
    # inputs changes too.
    new_on_create: tuple[str, ...] = ()


REPLACE_RULES: tuple[ReplaceRule, ...] = (
    # --- network ------------------------------------------------------------------------------------------------
    ReplaceRule("aws:ec2/vpc:Vpc", ("cidrBlock", "instanceTenancy", "ipv4IpamPoolId", "ipv4NetmaskLength"),
                f"{TF_AWS} internal/service/ec2/vpc_.go: cidr_block ForceNew"),
    ReplaceRule("aws:ec2/subnet:Subnet", ("vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId",
                                          "outpostArn", "ipv6Native"),
                f"{TF_AWS} internal/service/ec2/vpc_subnet.go: vpc_id, cidr_block, availability_zone ForceNew; "
                "map_public_ip_on_launch is modified in place"),
    ReplaceRule("aws:ec2/internetGateway:InternetGateway", (),
                f"{TF_AWS} internal/service/ec2/vpc_internet_gateway.go: vpc_id is updated by detach and attach"),
    ReplaceRule("aws:ec2/routeTable:RouteTable", ("vpcId",),
                f"{TF_AWS} internal/service/ec2/vpc_route_table.go: vpc_id ForceNew"),
    ReplaceRule("aws:ec2/route:Route", ("routeTableId", "destinationCidrBlock", "destinationIpv6CidrBlock",
                                        "destinationPrefixListId"),
                f"{TF_AWS} internal/service/ec2/vpc_route.go: route_table_id and destinations ForceNew; "
                "targets (gateway_id, nat_gateway_id, network_interface_id) are updated by ReplaceRoute"),
    ReplaceRule("aws:ec2/routeTableAssociation:RouteTableAssociation", ("subnetId", "gatewayId"),
                f"{TF_AWS} internal/service/ec2/vpc_route_table_association.go: subnet_id, gateway_id ForceNew; "
                "route_table_id is updated by ReplaceRouteTableAssociation"),
    ReplaceRule("aws:ec2/eip:Eip", ("domain", "address", "publicIpv4Pool", "customerOwnedIpv4Pool",
                                    "networkBorderGroup", "ipamPoolId"),
                f"{TF_AWS} internal/service/ec2/ec2_eip.go: domain, address, pools ForceNew",
                new_on_create=("publicIp", "allocationId")),
    ReplaceRule("aws:ec2/natGateway:NatGateway", ("allocationId", "subnetId", "connectivityType", "privateIp"),
                f"{TF_AWS} internal/service/ec2/vpc_nat_gateway.go: allocation_id, subnet_id, "
                "connectivity_type, private_ip ForceNew"),
    ReplaceRule("aws:ec2/securityGroup:SecurityGroup", ("name", "namePrefix", "description", "vpcId"),
                f"{TF_AWS} internal/service/ec2/vpc_security_group.go: name, name_prefix, description, vpc_id "
                "ForceNew", autoname=("name", 255)),
    ReplaceRule("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", ("securityGroupId",),
                f"{TF_AWS} internal/service/ec2/vpc_security_group_ingress_rule.go: security_group_id "
                "RequiresReplace, and ModifyPlan replaces a rule whose kind of source changes (\"you cannot change "
                "the rule's source type\"); ports, protocol, source and description go through "
                "ModifySecurityGroupRules", replace_when_switched=("cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId")),
    ReplaceRule("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", ("securityGroupId",),
                f"{TF_AWS} internal/service/ec2/vpc_security_group_egress_rule.go (shares the ingress rule's "
                "schema and plan): security_group_id RequiresReplace, a new kind of destination replaces",
                replace_when_switched=("cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId")),
    ReplaceRule("aws:ec2/subnetCidrReservation:SubnetCidrReservation", ("*",),
                f"{TF_AWS} internal/service/ec2/vpc_subnet_cidr_reservation.go: every argument ForceNew, no Update"),
    # --- instances ----------------------------------------------------------------------------------------------
    ReplaceRule("aws:ec2/keyPair:KeyPair", ("keyName", "keyNamePrefix", "publicKey"),
                f"{TF_AWS} internal/service/ec2/ec2_key_pair.go: key_name, key_name_prefix, public_key ForceNew",
                autoname=("keyName", 255), new_on_create=("keyName",)),
    ReplaceRule("aws:ec2/instance:Instance",
                ("ami", "availabilityZone", "keyName", "subnetId", "privateIp", "associatePublicIpAddress",
                 "placementGroup", "tenancy", "hostId", "cpuCoreCount", "cpuThreadsPerCore", "ebsOptimized",
                 "hibernation", "ipv6AddressCount", "ipv6Addresses", "launchTemplate", "networkInterfaces",
                 "privateDnsNameOptions", "ebsBlockDevices", "ephemeralBlockDevices", "securityGroups",
                 "rootBlockDevice.encrypted", "rootBlockDevice.kmsKeyId", "userDataReplaceOnChange"),
                f"{TF_AWS} internal/service/ec2/ec2_instance.go: ami, key_name, subnet_id, private_ip, "
                "associate_public_ip_address, root_block_device.encrypted ForceNew; instance_type, "
                "root volume size and type, vpc_security_group_ids, source_dest_check, metadata_options and "
                "user_data (without user_data_replace_on_change, per the pulumi-aws SDK doc) are updated in place",
                new_on_create=("arn", "primaryNetworkInterfaceId", "publicIp", "publicDns", "privateDns")),
    ReplaceRule("aws:ec2/tag:Tag", ("resourceId", "key"),
                f"{TF_AWS} internal/service/ec2/tag.go: resource_id and key ForceNew; value is updated by "
                "CreateTags"),
    # --- load balancer ------------------------------------------------------------------------------------------
    ReplaceRule("aws:lb/loadBalancer:LoadBalancer", ("name", "namePrefix", "internal", "loadBalancerType",
                                                     "customerOwnedIpv4Pool"),
                f"{TF_AWS} internal/service/elbv2/load_balancer.go: name, name_prefix, internal, "
                "load_balancer_type ForceNew; a network load balancer cannot drop a subnet (customizeDiffNLB "
                "forces a new one), adding one is SetSubnets", replace_when_shrunk=("subnets",),
                autoname=("name", 32), new_on_create=("arn", "dnsName", "arnSuffix", "zoneId")),
    ReplaceRule("aws:lb/targetGroup:TargetGroup", ("name", "namePrefix", "port", "protocol", "vpcId", "targetType",
                                                   "protocolVersion", "ipAddressType"),
                f"{TF_AWS} internal/service/elbv2/target_group.go: name, name_prefix, port, protocol, vpc_id, "
                "target_type ForceNew; health check and deregistration delay are modified in place",
                autoname=("name", 32), new_on_create=("arn", "arnSuffix")),
    ReplaceRule("aws:lb/listener:Listener", ("loadBalancerArn",),
                f"{TF_AWS} internal/service/elbv2/listener.go: load_balancer_arn ForceNew; port, protocol and "
                "default actions go through ModifyListener", new_on_create=("arn",)),
    ReplaceRule("aws:lb/targetGroupAttachment:TargetGroupAttachment", ("*",),
                f"{TF_AWS} internal/service/elbv2/target_group_attachment.go: every argument ForceNew, no Update"),
    # --- etcd snapshot bucket and the etcd members' role (etcdSnapshots.s3) ---------------------------------------
    ReplaceRule("aws:s3/bucket:Bucket", ("bucket", "bucketPrefix", "objectLockEnabled"),
                f"{TF_AWS} internal/service/s3/bucket.go: bucket, bucket_prefix, object_lock_enabled ForceNew; "
                "force_destroy only changes state", new_on_create=("arn", "bucket")),
    ReplaceRule("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", ("bucket",),
                f"{TF_AWS} internal/service/s3/bucket_public_access_block.go: bucket ForceNew"),
    ReplaceRule("aws:s3/bucketVersioning:BucketVersioning", ("bucket", "expectedBucketOwner"),
                f"{TF_AWS} internal/service/s3/bucket_versioning.go: bucket, expected_bucket_owner ForceNew"),
    ReplaceRule("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                ("bucket", "expectedBucketOwner"),
                f"{TF_AWS} internal/service/s3/bucket_server_side_encryption_configuration.go: bucket, "
                "expected_bucket_owner ForceNew"),
    ReplaceRule("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", ("bucket", "expectedBucketOwner"),
                f"{TF_AWS} internal/service/s3/bucket_lifecycle_configuration.go: bucket, expected_bucket_owner "
                "RequiresReplace; the rules are put again in place"),
    ReplaceRule("aws:iam/role:Role", ("name", "namePrefix", "path"),
                f"{TF_AWS} internal/service/iam/role.go: name, name_prefix, path ForceNew; the trust policy is updated "
                "in place", autoname=("name", 64), new_on_create=("arn", "name", "uniqueId")),
    ReplaceRule("aws:iam/rolePolicy:RolePolicy", ("name", "namePrefix", "role"),
                f"{TF_AWS} internal/service/iam/role_policy.go: name, name_prefix, role ForceNew; the policy is "
                "put again in place", autoname=("name", 128)),
    ReplaceRule("aws:iam/instanceProfile:InstanceProfile", ("name", "namePrefix", "path"),
                f"{TF_AWS} internal/service/iam/instance_profile.go: name, name_prefix, path ForceNew; the role is "
                "swapped in place", autoname=("name", 128), new_on_create=("arn", "name", "uniqueId")),
    # --- PKI and secrets ----------------------------------------------------------------------------------------
    ReplaceRule("tls:index/privateKey:PrivateKey", ("*",),
                f"{TF_TLS} internal/provider/resource_private_key.go: algorithm, rsa_bits, ecdsa_curve "
                "RequiresReplace (the only arguments)",
                new_on_create=("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8", "publicKeyPem",
                               "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256")),
    ReplaceRule("tls:index/selfSignedCert:SelfSignedCert",
                ("privateKeyPem", "subject", "validityPeriodHours", "allowedUses", "dnsNames", "ipAddresses",
                 "uris", "isCaCertificate", "maxPathLength", "setSubjectKeyId", "setAuthorityKeyId"),
                f"{TF_TLS} internal/provider/resource_self_signed_cert.go: every certificate argument "
                "RequiresReplace; early_renewal_hours only changes state", new_on_create=("certPem",)),
    ReplaceRule("tls:index/certRequest:CertRequest",
                ("privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"),
                f"{TF_TLS} internal/provider/resource_cert_request.go: every argument RequiresReplace",
                new_on_create=("certRequestPem",)),
    ReplaceRule("tls:index/locallySignedCert:LocallySignedCert",
                ("certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "allowedUses",
                 "isCaCertificate", "maxPathLength", "setSubjectKeyId"),
                f"{TF_TLS} internal/provider/resource_locally_signed_cert.go: every certificate argument "
                "RequiresReplace; early_renewal_hours only changes state", new_on_create=("certPem",)),
    ReplaceRule("random:index/randomBytes:RandomBytes", ("length", "keepers"),
                "terraform-provider-random internal/provider/resource_bytes.go: length and keepers "
                "RequiresReplace", new_on_create=("base64", "hex")),
    # --- remote and local steps ---------------------------------------------------------------------------------
    ReplaceRule("command:remote:Command", ("triggers",),
                "pulumi-command 1.2.1 SDK pulumi_command/remote/command.py: replace_on_changes=['triggers[*]']; "
                "any other change (connection, stdin) is an update, which re-runs `create` when no `update` is "
                "given (provider commandController.go Update)", new_on_create=("stdout", "stderr")),
    ReplaceRule("command:local:Command", ("triggers",),
                "pulumi-command 1.2.1 SDK pulumi_command/local/command.py: replace_on_changes=['triggers[*]']; "
                "other changes are updates that re-run `create`", new_on_create=("stdout", "stderr")),
)

RULES: dict[str, ReplaceRule] = {rule.type: rule for rule in REPLACE_RULES}

# The bridge under pulumi-aws replaces delete-first when the program set the autonamed property itself: two
# resources cannot hold one explicit name (pulumi-terraform-bridge pkg/tfbridge/schema.go
# nameRequiresDeleteBeforeReplace). Otherwise the engine replaces create-first unless the resource has
# `deleteBeforeReplace` (Pulumi docs, resource option deleteBeforeReplace).
EXPLICIT_NAME_DELETES_FIRST = "pulumi-terraform-bridge pkg/tfbridge/schema.go nameRequiresDeleteBeforeReplace"

# An instance type change is stop, modify, start: an instance without an Elastic IP gets a new public address when it
# starts again (EC2 User Guide, "Public IPv4 addresses": released when the instance is stopped).
UPDATE_CHANGES_OUTPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "aws:ec2/instance:Instance": {"instanceType": ("publicIp", "publicDns"), "userData": ("publicIp", "publicDns")},
}


def _get(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Inputs that differ, as paths: a top-level key, or `key.field` inside an object input."""
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{sub}" for sub in changed_paths(a, b)]
        else:
            changed.append(key)
    return changed


def replacing_paths(type_: str, changed: list[str], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Which of these changed inputs force a replacement of a resource of this type."""
    rule = RULES.get(type_)
    if rule is None:
        raise KeyError(f"no replace rule for {type_}: add one to infra/lifecycle.py with its source")
    if "*" in rule.replace_on:
        return list(changed)
    forcing = []
    for path in changed:
        top = path.split(".", 1)[0]
        if path in rule.replace_on or top in rule.replace_on:
            forcing.append(path)
        elif top in rule.replace_when_shrunk and not set(old.get(top) or []) <= set(new.get(top) or []):
            forcing.append(path)
        elif top in rule.replace_when_switched and (
                {k for k in rule.replace_when_switched if old.get(k)} != {k for k in rule.replace_when_switched
                                                                           if new.get(k)}):
            forcing.append(path)
    return forcing
