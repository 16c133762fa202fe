"""The AWS resources the program declares, replayed into moto: AWS's own checks applied to the whole plan."""

import pytest
from moto import mock_aws

from simulator.aws_replay import AwsReplay
from simulator.program import run_program, stack_config



config = stack_config


@pytest.mark.parametrize("cfg", [
    config(1, 1, 1),
    config(3, 3, 3),
    config(5, 3, 10),
    config(3, 3, 6, topology="private", zones=3),
    config(1, 1, 4, podRouting="host"),
], ids=["1-1-1", "3-3-3", "5-3-10", "private-3-zones", "host-routing"])
def test_aws_accepts_every_resource_of_the_plan(cfg):
    run = run_program(cfg)
    with mock_aws():
        aws = AwsReplay()
        aws.replay(run)
        ec2 = aws.ec2
        instances = [i for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]]
        expected = cfg["etcd"]["count"] + cfg["controllers"]["count"] + cfg["workers"]["count"]
        assert len(instances) == expected + (1 if cfg.get("topology") == "private" else 0)
        # every pod route landed in the route tables, each on a worker's interface
        worker_enis = {i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in instances
                       if {"Key": "role", "Value": "workers"} in i["Tags"]}
        assert len(worker_enis) == cfg["workers"]["count"]
        for i in instances:
            workers = {"Key": "role", "Value": "workers"} in i["Tags"]
            check = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="sourceDestCheck")
            assert check["SourceDestCheck"]["Value"] is (not workers)
            assert i["MetadataOptions"]["HttpTokens"] == "required"
        routes = [route for table in ec2.describe_route_tables()["RouteTables"] for route in table["Routes"]
                  if route.get("DestinationCidrBlock", "").startswith("10.200.")]
        if cfg.get("podRouting", "vpc") == "vpc":
            tables = cfg.get("zones", 1) if cfg.get("topology") == "private" else 1
            assert len(routes) == cfg["workers"]["count"] * tables
            assert {r["NetworkInterfaceId"] for r in routes} == worker_enis
        else:
            assert routes == []
        targets = aws.elb.describe_target_health(
            TargetGroupArn=aws.elb.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"])
        assert len(targets["TargetHealthDescriptions"]) == cfg["controllers"]["count"]


def test_an_address_outside_its_subnet_is_rejected_as_aws_would():
    """The replay can fail: move one node out of its subnet and AWS (moto) refuses the instance."""
    run = run_program(config(1, 1, 1))
    instance = next(r for r in run.of_type("aws:ec2/instance:Instance") if r.inputs["tags"]["role"] == "workers")
    instance.inputs["privateIp"] = "10.43.200.30"
    with mock_aws(), pytest.raises(Exception, match="does not fall in the subnet"):
        AwsReplay().replay(run)


def test_a_route_to_an_unknown_interface_is_rejected():
    run = run_program(config(1, 1, 1))
    route = next(r for r in run.of_type("aws:ec2/route:Route") if r.inputs.get("networkInterfaceId"))
    route.inputs["networkInterfaceId"] = "eni-000000000000"
    with mock_aws(), pytest.raises(AssertionError, match="no replayed resource produced"):
        AwsReplay().replay(run)
