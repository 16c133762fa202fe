"""Replay the AWS resources a program run declared into moto, an in-process AWS emulator, to catch what AWS itself
would reject: a subnet outside its VPC, an address outside its subnet or taken twice, a route to an interface that
does not exist, a rule naming a group of another VPC, a target that is not an instance of the VPC.

Resources are replayed in dependency order with their resolved inputs; every id and ARN the mocks handed out is
translated to the one moto made. Nothing leaves the process: moto intercepts every call.
"""

from __future__ import annotations

from typing import Any

import boto3

from tests.support.program import REGION, ProgramRun, Resource

# The Terraform-based provider removes the default allow-all egress rule of a new group; the program adds its own.
DEFAULT_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def dependency_order(resources: list[Resource]) -> list[Resource]:
    by_urn = {r.urn: r for r in resources}
    ordered, seen = [], set()

    def visit(r: Resource) -> None:
        if r.urn in seen:
            return
        seen.add(r.urn)
        deps = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        for urn in sorted(deps):
            if urn in by_urn:
                visit(by_urn[urn])
        ordered.append(r)

    for r in resources:
        visit(r)
    return ordered


class AwsReplay:
    """Use inside moto's `mock_aws()`. `ids` maps every id/ARN the mocks gave out to moto's."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.elb = boto3.client("elbv2", region_name=REGION)
        self.ids: dict[str, str] = {}
        self.ami = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def ref(self, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in self.ids:
            raise AssertionError(f"reference to {value!r}, which no replayed resource produced")
        return self.ids[value]

    def replay(self, run: ProgramRun) -> None:
        for r in dependency_order([r for r in run.resources if r.type.startswith("aws:")]):
            handler = getattr(self, "_" + r.type.split(":")[-1], None)
            if handler is None:
                raise AssertionError(f"no replay for {r.type} ({r.name}): add one")
            handler(r, r.inputs)

    # --- network -----------------------------------------------------------------------------------------------
    def _Vpc(self, r, i):
        vpc = self.ec2.create_vpc(CidrBlock=i["cidrBlock"])["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": bool(i.get("enableDnsSupport"))})
        self.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": bool(i.get("enableDnsHostnames"))})
        self.ids[r.id] = vpc

    def _InternetGateway(self, r, i):
        igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=self.ref(i["vpcId"]))
        self.ids[r.id] = igw

    def _RouteTable(self, r, i):
        self.ids[r.id] = self.ec2.create_route_table(VpcId=self.ref(i["vpcId"]))["RouteTable"]["RouteTableId"]

    def _Subnet(self, r, i):
        self.ids[r.id] = self.ec2.create_subnet(VpcId=self.ref(i["vpcId"]), CidrBlock=i["cidrBlock"],
                                                AvailabilityZone=i["availabilityZone"])["Subnet"]["SubnetId"]

    def _SubnetCidrReservation(self, r, i):
        reservation = self.ec2.create_subnet_cidr_reservation(
            SubnetId=self.ref(i["subnetId"]), Cidr=i["cidrBlock"], ReservationType=i["reservationType"],
            Description=i.get("description", ""))["SubnetCidrReservation"]
        self.ids[r.id] = reservation["SubnetCidrReservationId"]

    def _RouteTableAssociation(self, r, i):
        self.ids[r.id] = self.ec2.associate_route_table(RouteTableId=self.ref(i["routeTableId"]),
                                                        SubnetId=self.ref(i["subnetId"]))["AssociationId"]

    def _Eip(self, r, i):
        self.ids[r.id] = self.ec2.allocate_address(Domain="vpc")["AllocationId"]

    def _NatGateway(self, r, i):
        self.ids[r.id] = self.ec2.create_nat_gateway(SubnetId=self.ref(i["subnetId"]),
                                                     AllocationId=self.ref(i["allocationId"]))["NatGateway"]["NatGatewayId"]

    def _Route(self, r, i):
        target = {}
        for key, api in (("gatewayId", "GatewayId"), ("natGatewayId", "NatGatewayId"),
                         ("networkInterfaceId", "NetworkInterfaceId")):
            if i.get(key):
                target[api] = self.ref(i[key])
        assert len(target) == 1, f"route {r.name} needs exactly one target, has {target}"
        self.ec2.create_route(RouteTableId=self.ref(i["routeTableId"]),
                              DestinationCidrBlock=i["destinationCidrBlock"], **target)
        self.ids[r.id] = r.id

    def _SecurityGroup(self, r, i):
        sg = self.ec2.create_security_group(GroupName=r.name, Description=i["description"],
                                            VpcId=self.ref(i["vpcId"]))["GroupId"]
        self.ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[DEFAULT_EGRESS])
        self.ids[r.id] = sg

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
        self.ec2.authorize_security_group_ingress(GroupId=self.ref(i["securityGroupId"]),
                                                  IpPermissions=[self._permission(i)])
        self.ids[r.id] = r.id

    def _SecurityGroupEgressRule(self, r, i):
        self.ec2.authorize_security_group_egress(GroupId=self.ref(i["securityGroupId"]),
                                                 IpPermissions=[self._permission(i)])
        self.ids[r.id] = r.id

    # --- instances ---------------------------------------------------------------------------------------------
    def _KeyPair(self, r, i):
        self.ec2.import_key_pair(KeyName=r.outputs["keyName"], PublicKeyMaterial=i["publicKey"].encode())
        self.ids[r.outputs["keyName"]] = r.outputs["keyName"]
        self.ids[r.id] = r.outputs["keyName"]

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
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in i.get("tags", {}).items()]}],
        )["Instances"][0]
        self.ec2.modify_instance_attribute(InstanceId=instance["InstanceId"],
                                           SourceDestCheck={"Value": bool(i["sourceDestCheck"])})
        self.ids[r.id] = instance["InstanceId"]
        self.ids[r.outputs["primaryNetworkInterfaceId"]] = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]

    # --- load balancer -----------------------------------------------------------------------------------------
    def _LoadBalancer(self, r, i):
        lb = self.elb.create_load_balancer(Name=r.name[-32:].strip("-"), Subnets=[self.ref(s) for s in i["subnets"]],
                                           Type=i["loadBalancerType"],
                                           Scheme="internal" if i.get("internal") else "internet-facing")
        self.ids[r.outputs["arn"]] = lb["LoadBalancers"][0]["LoadBalancerArn"]

    def _TargetGroup(self, r, i):
        check = i["healthCheck"]
        group = self.elb.create_target_group(
            Name=r.name[-32:].strip("-"), Protocol=i["protocol"], Port=_int(i["port"]), VpcId=self.ref(i["vpcId"]),
            TargetType=i["targetType"], HealthCheckProtocol=check["protocol"], HealthCheckPort=check["port"],
            HealthCheckPath=check["path"], HealthCheckIntervalSeconds=_int(check["interval"]),
            HealthyThresholdCount=_int(check["healthyThreshold"]),
            UnhealthyThresholdCount=_int(check["unhealthyThreshold"]), Matcher={"HttpCode": check["matcher"]})
        self.ids[r.outputs["arn"]] = group["TargetGroups"][0]["TargetGroupArn"]

    def _Listener(self, r, i):
        actions = [{"Type": a["type"], "TargetGroupArn": self.ref(a["targetGroupArn"])} for a in i["defaultActions"]]
        self.elb.create_listener(LoadBalancerArn=self.ref(i["loadBalancerArn"]), Protocol=i["protocol"],
                                 Port=_int(i["port"]), DefaultActions=actions)
        self.ids[r.id] = r.id

    def _TargetGroupAttachment(self, r, i):
        self.elb.register_targets(TargetGroupArn=self.ref(i["targetGroupArn"]),
                                  Targets=[{"Id": self.ref(i["targetId"]), "Port": _int(i["port"])}])
        self.ids[r.id] = r.id
