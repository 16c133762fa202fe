"""Replay the AWS resources a program run declared into moto, an in-process AWS emulator, to catch what AWS itself
would reject: a subnet outside its VPC, an address outside its subnet or taken twice, a route to an interface that
does not exist, a rule naming a group of another VPC, a target that is not an instance of the VPC, a name taken or
too long.

Resources are replayed in dependency order with their resolved inputs; every id and ARN the mocks handed out is
translated to the one moto made. Nothing leaves the process: moto intercepts every call.

Besides creating a whole run (`replay`), single resources can be created, updated and deleted (`create`, `update`,
`delete`): the change simulator (simulator/change_sim.py) plays an update's operations this way on top of the
previous run. Where moto accepts what AWS refuses, the check is made here, with the AWS behaviour cited.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict, deque
from typing import Any

import boto3

from infra.lifecycle import RULES
from simulator.program import REGION, ProgramRun, Resource

# moto would load its catalogue of public images into every new region backend (about a second each time); the
# replay names one image by id and needs no catalogue.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

# The Terraform-based provider removes the default allow-all egress rule of a new group; the program adds its own.
DEFAULT_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def dependency_edges(r: Resource, *, with_parent: bool = False) -> set[str]:
    """What a resource waits for: explicit and input dependencies (and its parent component, if asked)."""
    return r.edges() | ({r.parent} if with_parent and r.parent else set())


def dependency_order(resources: list[Resource], *, with_parent: bool = False) -> list[Resource]:
    """Every resource after what it depends on, in registration order otherwise."""
    by_urn = {r.urn: r for r in resources}
    ordered, seen = [], set()

    def visit(r: Resource) -> None:
        if r.urn in seen:
            return
        seen.add(r.urn)
        for urn in sorted(dependency_edges(r, with_parent=with_parent)):
            if urn in by_urn:
                visit(by_urn[urn])
        ordered.append(r)

    for r in resources:
        visit(r)
    return ordered


def short_type(type_: str) -> str:
    return type_.split(":")[-1]


class AwsRefused(AssertionError):
    """What AWS (or the provider, before calling AWS) would answer with an error."""


class AwsReplay:
    """Use inside moto's `mock_aws()`. `ids` maps every id/ARN the mocks gave out to moto's (the newest object
    made for it); `live` keeps, per URN, what was made for it in AWS, oldest first (two while a replacement made
    create-first has not yet deleted the old one)."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.elb = boto3.client("elbv2", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.iam = boto3.client("iam", region_name=REGION)
        self.ids: dict[str, str] = {}
        self.live: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        # Any image moto knows: asking for one by id is much cheaper than listing them all.
        from moto.ec2.models.amis import AMIS
        self.ami = AMIS[0]["ami_id"]
        self._names_made = 0

    def ref(self, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in self.ids:
            raise AssertionError(f"reference to {value!r}, which no replayed resource produced")
        return self.ids[value]

    def replay(self, run: ProgramRun) -> None:
        for r in dependency_order([r for r in run.resources if r.type.startswith("aws:")]):
            self.create(r)

    # --- the three operations ----------------------------------------------------------------------------------
    def create(self, r: Resource) -> None:
        handler = getattr(self, "_" + short_type(r.type), None)
        if handler is None:
            raise AssertionError(f"no replay for {r.type} ({r.name}): add one")
        self.live[r.urn].append(handler(r, r.inputs) or {})

    def delete(self, r: Resource) -> None:
        handler = getattr(self, "_delete_" + short_type(r.type), None)
        if handler is None:
            raise AssertionError(f"no delete replay for {r.type} ({r.name}): add one")
        if not self.live[r.urn]:
            raise AssertionError(f"delete of {r.name}, which does not exist in AWS")
        handler(r, self.live[r.urn].popleft())

    def update(self, old: Resource, new: Resource, paths: list[str]) -> None:
        """Apply an in-place update. Only changes that bear on addresses, names, routes, rules or targets reach
        moto; the rest (tags, health-check timings, descriptions) cannot make AWS refuse anything here."""
        handler = getattr(self, "_update_" + short_type(new.type), None)
        if handler is not None:
            handler(old, new, paths, self.live[new.urn][-1])

    def _name(self, r: Resource, i: dict[str, Any]) -> str:
        """The AWS name of a resource with a name: the program's own, or pulumi-aws's autoname, "<resource
        name>-<7 random characters>", which fails (it does not truncate) when over the AWS limit
        (pulumi/pulumi sdk/go/common/resource/resource_id.go NewUniqueName)."""
        key, limit = RULES[r.type].autoname
        if i.get(key):
            name = i[key]
            if len(name) > limit:
                raise AwsRefused(f"{r.type} {r.name}: name {name!r} is longer than {limit} characters")
            return name
        if len(r.name) + 8 > limit:
            raise AwsRefused(f"{r.type} {r.name}: name '{r.name}-' plus 7 random chars is longer than maximum "
                             f"length {limit}")
        self._names_made += 1
        return f"{r.name}-{hashlib.sha256(f'{r.urn}{self._names_made}'.encode()).hexdigest()[:7]}"

    # --- network -----------------------------------------------------------------------------------------------
    def _Vpc(self, r, i):
        vpc = self.ec2.create_vpc(CidrBlock=i["cidrBlock"])["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": bool(i.get("enableDnsSupport"))})
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": bool(i.get("enableDnsHostnames"))})
        self.ids[r.id] = vpc
        return {"id": vpc}

    def _delete_Vpc(self, r, h):
        self.ec2.delete_vpc(VpcId=h["id"])

    def _InternetGateway(self, r, i):
        igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        vpc = self.ref(i["vpcId"])
        self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        self.ids[r.id] = igw
        return {"id": igw, "vpc": vpc}

    def _delete_InternetGateway(self, r, h):
        self.ec2.detach_internet_gateway(InternetGatewayId=h["id"], VpcId=h["vpc"])
        self.ec2.delete_internet_gateway(InternetGatewayId=h["id"])

    def _RouteTable(self, r, i):
        table = self.ec2.create_route_table(VpcId=self.ref(i["vpcId"]))["RouteTable"]["RouteTableId"]
        self.ids[r.id] = table
        return {"id": table}

    def _delete_RouteTable(self, r, h):
        self.ec2.delete_route_table(RouteTableId=h["id"])

    def _Subnet(self, r, i):
        subnet = self.ec2.create_subnet(VpcId=self.ref(i["vpcId"]), CidrBlock=i["cidrBlock"],
                                        AvailabilityZone=i["availabilityZone"])["Subnet"]["SubnetId"]
        self.ids[r.id] = subnet
        return {"id": subnet}

    def _delete_Subnet(self, r, h):
        self.ec2.delete_subnet(SubnetId=h["id"])

    def _update_Subnet(self, old, new, paths, h):
        if "mapPublicIpOnLaunch" in paths:
            self.ec2.modify_subnet_attribute(SubnetId=h["id"], MapPublicIpOnLaunch={
                "Value": bool(new.inputs.get("mapPublicIpOnLaunch"))})

    def _SubnetCidrReservation(self, r, i):
        reservation = self.ec2.create_subnet_cidr_reservation(
            SubnetId=self.ref(i["subnetId"]), Cidr=i["cidrBlock"], ReservationType=i["reservationType"],
            **({"Description": i["description"]} if i.get("description") else {}),
        )["SubnetCidrReservation"]["SubnetCidrReservationId"]
        self.ids[r.id] = reservation
        return {"id": reservation}

    def _delete_SubnetCidrReservation(self, r, h):
        self.ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=h["id"])

    def _RouteTableAssociation(self, r, i):
        association = self.ec2.associate_route_table(RouteTableId=self.ref(i["routeTableId"]),
                                                     SubnetId=self.ref(i["subnetId"]))["AssociationId"]
        self.ids[r.id] = association
        return {"id": association}

    def _delete_RouteTableAssociation(self, r, h):
        self.ec2.disassociate_route_table(AssociationId=h["id"])

    def _update_RouteTableAssociation(self, old, new, paths, h):
        if "routeTableId" in paths:
            h["id"] = self.ec2.replace_route_table_association(
                AssociationId=h["id"], RouteTableId=self.ref(new.inputs["routeTableId"]))["NewAssociationId"]

    def _Eip(self, r, i):
        allocation = self.ec2.allocate_address(Domain="vpc")["AllocationId"]
        self.ids[r.id] = allocation
        return {"id": allocation}

    def _delete_Eip(self, r, h):
        self.ec2.release_address(AllocationId=h["id"])

    def _NatGateway(self, r, i):
        nat = self.ec2.create_nat_gateway(SubnetId=self.ref(i["subnetId"]),
                                          AllocationId=self.ref(i["allocationId"]))["NatGateway"]["NatGatewayId"]
        self.ids[r.id] = nat
        return {"id": nat}

    def _delete_NatGateway(self, r, h):
        self.ec2.delete_nat_gateway(NatGatewayId=h["id"])

    def _route_target(self, r, i) -> dict[str, str]:
        target = {}
        for key, api in (("gatewayId", "GatewayId"), ("natGatewayId", "NatGatewayId"),
                         ("networkInterfaceId", "NetworkInterfaceId")):
            if i.get(key):
                target[api] = self.ref(i[key])
        assert len(target) == 1, f"route {r.name} needs exactly one target, has {target}"
        return target

    def _Route(self, r, i):
        table = self.ref(i["routeTableId"])
        self.ec2.create_route(RouteTableId=table, DestinationCidrBlock=i["destinationCidrBlock"],
                              **self._route_target(r, i))
        self.ids[r.id] = r.id
        return {"table": table, "destination": i["destinationCidrBlock"]}

    def _delete_Route(self, r, h):
        self.ec2.delete_route(RouteTableId=h["table"], DestinationCidrBlock=h["destination"])

    def _update_Route(self, old, new, paths, h):
        if {"gatewayId", "natGatewayId", "networkInterfaceId"} & set(paths):
            self.ec2.replace_route(RouteTableId=h["table"], DestinationCidrBlock=h["destination"],
                                   **self._route_target(new, new.inputs))

    def _SecurityGroup(self, r, i):
        sg = self.ec2.create_security_group(GroupName=self._name(r, i), Description=i["description"],
                                            VpcId=self.ref(i["vpcId"]))["GroupId"]
        self.ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[DEFAULT_EGRESS])
        self.ids[r.id] = sg
        return {"id": sg}

    def _delete_SecurityGroup(self, r, h):
        self.ec2.delete_security_group(GroupId=h["id"])

    def _permission(self, i) -> dict:
        permission: dict[str, Any] = {"IpProtocol": i["ipProtocol"]}
        if i["ipProtocol"] != "-1":
            permission.update(FromPort=_int(i["fromPort"]), ToPort=_int(i["toPort"]))
        if i.get("cidrIpv4"):
            permission["IpRanges"] = [{"CidrIp": i["cidrIpv4"], "Description": i.get("description", "")}]
        else:
            permission["UserIdGroupPairs"] = [{"GroupId": self.ref(i["referencedSecurityGroupId"])}]
        return permission

    def _SecurityGroupIngressRule(self, r, i):
        group, permission = self.ref(i["securityGroupId"]), self._permission(i)
        self.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[permission])
        self.ids[r.id] = r.id
        return {"group": group, "permission": permission}

    def _delete_SecurityGroupIngressRule(self, r, h):
        self.ec2.revoke_security_group_ingress(GroupId=h["group"], IpPermissions=[h["permission"]])

    def _update_SecurityGroupIngressRule(self, old, new, paths, h):
        # ModifySecurityGroupRules changes the rule in place; revoking and authorizing has the same effect here.
        self._delete_SecurityGroupIngressRule(new, dict(h))
        h.update(self._SecurityGroupIngressRule(new, new.inputs))

    def _SecurityGroupEgressRule(self, r, i):
        group, permission = self.ref(i["securityGroupId"]), self._permission(i)
        self.ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[permission])
        self.ids[r.id] = r.id
        return {"group": group, "permission": permission}

    def _delete_SecurityGroupEgressRule(self, r, h):
        self.ec2.revoke_security_group_egress(GroupId=h["group"], IpPermissions=[h["permission"]])

    def _update_SecurityGroupEgressRule(self, old, new, paths, h):
        self._delete_SecurityGroupEgressRule(new, dict(h))
        h.update(self._SecurityGroupEgressRule(new, new.inputs))

    # --- instances ---------------------------------------------------------------------------------------------
    def _KeyPair(self, r, i):
        name = self._name(r, i)
        self.ec2.import_key_pair(KeyName=name, PublicKeyMaterial=i["publicKey"].encode())
        self.ids[r.outputs["keyName"]] = name
        self.ids[r.id] = name
        return {"name": name}

    def _Tag(self, r, i):
        resource = self.ref(i["resourceId"])
        self.ec2.create_tags(Resources=[resource], Tags=[{"Key": i["key"], "Value": i["value"]}])
        return {"resource": resource, "key": i["key"]}

    def _delete_Tag(self, r, h):
        self.ec2.delete_tags(Resources=[h["resource"]], Tags=[{"Key": h["key"]}])

    def _delete_KeyPair(self, r, h):
        self.ec2.delete_key_pair(KeyName=h["name"])

    def _Instance(self, r, i):
        root = i["rootBlockDevice"]
        meta = i["metadataOptions"]
        instance = self.ec2.run_instances(
            ImageId=self.ami, MinCount=1, MaxCount=1, InstanceType=i["instanceType"],
            KeyName=self.ref(i["keyName"]),
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": self.ref(i["subnetId"]),
                                "PrivateIpAddress": i["privateIp"],
                                "Groups": [self.ref(g) for g in i["vpcSecurityGroupIds"]],
                                "AssociatePublicIpAddress": bool(i["associatePublicIpAddress"])}],
            MetadataOptions={"HttpTokens": meta["httpTokens"], "HttpEndpoint": meta["httpEndpoint"],
                             "HttpPutResponseHopLimit": _int(meta["httpPutResponseHopLimit"])},
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {
                "VolumeSize": _int(root["volumeSize"]), "VolumeType": root["volumeType"],
                "Encrypted": root["encrypted"], "DeleteOnTermination": root["deleteOnTermination"]}}],
            UserData=i["userData"],
            **({"IamInstanceProfile": {"Name": self.ref(i["iamInstanceProfile"])}}
               if i.get("iamInstanceProfile") else {}),
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in i.get("tags", {}).items()]}],
        )["Instances"][0]
        self.ec2.modify_instance_attribute(InstanceId=instance["InstanceId"],
                                           SourceDestCheck={"Value": bool(i["sourceDestCheck"])})
        self.ids[r.id] = instance["InstanceId"]
        self.ids[r.outputs["primaryNetworkInterfaceId"]] = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        return {"id": instance["InstanceId"], "subnet": self.ref(i["subnetId"]), "ip": i["privateIp"]}

    def _delete_Instance(self, r, h):
        self.ec2.terminate_instances(InstanceIds=[h["id"]])
        # AWS deletes the primary interface, and so frees its address, when the instance terminates (the provider
        # waits for "terminated"); moto keeps the address until its instance object is garbage collected.
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends
        ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_subnet(h["subnet"]).del_subnet_ip(h["ip"])

    def _update_Instance(self, old, new, paths, h):
        o, n = old.inputs, new.inputs
        if "rootBlockDevice.volumeSize" in paths and int(n["rootBlockDevice"]["volumeSize"]) < int(
                o["rootBlockDevice"]["volumeSize"]):
            # EBS ModifyVolume: "New size cannot be smaller than existing size" (volumes only grow); moto accepts it.
            raise AwsRefused(f"{new.name}: InvalidParameterValue: New size cannot be smaller than existing size "
                             f"({o['rootBlockDevice']['volumeSize']} -> {n['rootBlockDevice']['volumeSize']} GiB)")
        if "instanceType" in paths or "userData" in paths:
            # The instance type and user data change only while the instance is stopped.
            self.ec2.stop_instances(InstanceIds=[h["id"]])
            if "instanceType" in paths:
                self.ec2.modify_instance_attribute(InstanceId=h["id"], InstanceType={"Value": n["instanceType"]})
            self.ec2.start_instances(InstanceIds=[h["id"]])
        if "vpcSecurityGroupIds" in paths:
            self.ec2.modify_instance_attribute(InstanceId=h["id"],
                                               Groups=[self.ref(g) for g in n["vpcSecurityGroupIds"]])
        if "sourceDestCheck" in paths:
            self.ec2.modify_instance_attribute(InstanceId=h["id"],
                                               SourceDestCheck={"Value": bool(n["sourceDestCheck"])})
        if "iamInstanceProfile" in paths:
            for association in self.ec2.describe_iam_instance_profile_associations(Filters=[
                    {"Name": "instance-id", "Values": [h["id"]]}])["IamInstanceProfileAssociations"]:
                self.ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
            if n.get("iamInstanceProfile"):
                self.ec2.associate_iam_instance_profile(InstanceId=h["id"], IamInstanceProfile={
                    "Name": self.ref(n["iamInstanceProfile"])})

    # --- load balancer -----------------------------------------------------------------------------------------
    def _LoadBalancer(self, r, i):
        name = self._name(r, i)
        taken = {lb["LoadBalancerName"] for lb in self.elb.describe_load_balancers()["LoadBalancers"]}
        if name in taken:
            # CreateLoadBalancer answers DuplicateLoadBalancerName for a name in use with other settings (with the
            # same settings it returns the existing one); terraform-provider-aws refuses before asking
            # ("ELBv2 Load Balancer (%s) already exists", elbv2/load_balancer.go). moto accepts it.
            raise AwsRefused(f"DuplicateLoadBalancerName: {name} ({r.name})")
        lb = self.elb.create_load_balancer(Name=name, Subnets=[self.ref(s) for s in i["subnets"]],
                                           Type=i["loadBalancerType"],
                                           Scheme="internal" if i.get("internal") else "internet-facing")
        arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        self.ids[r.outputs["arn"]] = arn
        return {"arn": arn}

    def _delete_LoadBalancer(self, r, h):
        self.elb.delete_load_balancer(LoadBalancerArn=h["arn"])

    def _update_LoadBalancer(self, old, new, paths, h):
        if "subnets" in paths:
            self.elb.set_subnets(LoadBalancerArn=h["arn"], Subnets=[self.ref(s) for s in new.inputs["subnets"]])

    def _TargetGroup(self, r, i):
        check = i["healthCheck"]
        group = self.elb.create_target_group(
            Name=self._name(r, i), Protocol=i["protocol"], Port=_int(i["port"]), VpcId=self.ref(i["vpcId"]),
            TargetType=i["targetType"], HealthCheckProtocol=check["protocol"], HealthCheckPort=check["port"],
            HealthCheckPath=check["path"], HealthCheckIntervalSeconds=_int(check["interval"]),
            HealthyThresholdCount=_int(check["healthyThreshold"]),
            UnhealthyThresholdCount=_int(check["unhealthyThreshold"]), Matcher={"HttpCode": check["matcher"]})
        arn = group["TargetGroups"][0]["TargetGroupArn"]
        self.ids[r.outputs["arn"]] = arn
        return {"arn": arn}

    def _delete_TargetGroup(self, r, h):
        self.elb.delete_target_group(TargetGroupArn=h["arn"])

    def _Listener(self, r, i):
        actions = [{"Type": a["type"], "TargetGroupArn": self.ref(a["targetGroupArn"])} for a in i["defaultActions"]]
        listener = self.elb.create_listener(LoadBalancerArn=self.ref(i["loadBalancerArn"]), Protocol=i["protocol"],
                                            Port=_int(i["port"]), DefaultActions=actions)
        self.ids[r.id] = r.id
        return {"arn": listener["Listeners"][0]["ListenerArn"]}

    def _delete_Listener(self, r, h):
        self.elb.delete_listener(ListenerArn=h["arn"])

    def _update_Listener(self, old, new, paths, h):
        i = new.inputs
        actions = [{"Type": a["type"], "TargetGroupArn": self.ref(a["targetGroupArn"])} for a in i["defaultActions"]]
        self.elb.modify_listener(ListenerArn=h["arn"], Protocol=i["protocol"], Port=_int(i["port"]),
                                 DefaultActions=actions)

    def _TargetGroupAttachment(self, r, i):
        group, target = self.ref(i["targetGroupArn"]), {"Id": self.ref(i["targetId"]), "Port": _int(i["port"])}
        self.elb.register_targets(TargetGroupArn=group, Targets=[target])
        self.ids[r.id] = r.id
        return {"group": group, "target": target}

    def _delete_TargetGroupAttachment(self, r, h):
        self.elb.deregister_targets(TargetGroupArn=h["group"], Targets=[h["target"]])

    # --- etcd snapshot bucket and role ---------------------------------------------------------------------------
    def _Bucket(self, r, i):
        # The provider makes "<bucketPrefix><26 unique characters>"; S3 refuses names over 63 characters.
        name = i["bucketPrefix"] + hashlib.sha256(r.urn.encode()).hexdigest()[:26]
        if len(name) > 63:
            raise AwsRefused(f"{r.type} {r.name}: bucket name {name!r} is longer than 63 characters")
        self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.ids[r.id] = self.ids[r.outputs["bucket"]] = name
        self.ids[r.outputs["arn"]] = f"arn:aws:s3:::{name}"
        return {"name": name}

    def _BucketPublicAccessBlock(self, r, i):
        self.s3.put_public_access_block(Bucket=self.ref(i["bucket"]), PublicAccessBlockConfiguration={
            key[0].upper() + key[1:]: bool(i[key]) for key in
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")})

    def _BucketVersioning(self, r, i):
        self.s3.put_bucket_versioning(Bucket=self.ref(i["bucket"]), VersioningConfiguration={
            "Status": i["versioningConfiguration"]["status"]})

    def _BucketServerSideEncryptionConfiguration(self, r, i):
        rules = [{"ApplyServerSideEncryptionByDefault": {
                      "SSEAlgorithm": rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]},
                  "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled"))} for rule in i["rules"]]
        self.s3.put_bucket_encryption(Bucket=self.ref(i["bucket"]),
                                      ServerSideEncryptionConfiguration={"Rules": rules})

    def _BucketLifecycleConfiguration(self, r, i):
        rules = [{"ID": rule["id"], "Status": rule["status"], "Filter": {"Prefix": rule["filter"]["prefix"]},
                  "Expiration": {"Days": _int(rule["expiration"]["days"])},
                  "NoncurrentVersionExpiration": {
                      "NoncurrentDays": _int(rule["noncurrentVersionExpiration"]["noncurrentDays"])},
                  "AbortIncompleteMultipartUpload": {
                      "DaysAfterInitiation": _int(rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"])}}
                 for rule in i["rules"]]
        self.s3.put_bucket_lifecycle_configuration(Bucket=self.ref(i["bucket"]),
                                                   LifecycleConfiguration={"Rules": rules})

    def _delete_BucketLifecycleConfiguration(self, r, h):
        self.s3.delete_bucket_lifecycle(Bucket=self.ref(r.inputs["bucket"]))

    def _delete_BucketPublicAccessBlock(self, r, h):
        self.s3.delete_public_access_block(Bucket=self.ref(r.inputs["bucket"]))

    def _delete_BucketVersioning(self, r, h):
        # The provider suspends versioning: a bucket that was versioned cannot go back to unversioned.
        self.s3.put_bucket_versioning(Bucket=self.ref(r.inputs["bucket"]),
                                      VersioningConfiguration={"Status": "Suspended"})

    def _delete_BucketServerSideEncryptionConfiguration(self, r, h):
        self.s3.delete_bucket_encryption(Bucket=self.ref(r.inputs["bucket"]))

    def _delete_Bucket(self, r, h):
        self.s3.delete_bucket(Bucket=h["name"])

    def _Role(self, r, i):
        name = self._name(r, i)
        self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=i["assumeRolePolicy"])
        self.ids[r.id] = self.ids[r.outputs["name"]] = name
        return {"name": name}

    def _RolePolicy(self, r, i):
        policy = i["policy"]
        for mock_arn, arn in self.ids.items():     # the bucket's ARN as moto made it
            if mock_arn.startswith("arn:aws:s3:::"):
                policy = policy.replace(mock_arn, arn)
        role, name = self.ref(i["role"]), self._name(r, i)
        self.iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=policy)
        return {"role": role, "name": name}

    def _InstanceProfile(self, r, i):
        name = self._name(r, i)
        self.iam.create_instance_profile(InstanceProfileName=name)
        self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=self.ref(i["role"]))
        self.ids[r.outputs["name"]] = name
        return {"name": name}

    def _delete_InstanceProfile(self, r, h):
        for role in self.iam.get_instance_profile(InstanceProfileName=h["name"])["InstanceProfile"]["Roles"]:
            self.iam.remove_role_from_instance_profile(InstanceProfileName=h["name"], RoleName=role["RoleName"])
        self.iam.delete_instance_profile(InstanceProfileName=h["name"])

    def _delete_RolePolicy(self, r, h):
        self.iam.delete_role_policy(RoleName=h["role"], PolicyName=h["name"])

    def _delete_Role(self, r, h):
        self.iam.delete_role(RoleName=h["name"])
