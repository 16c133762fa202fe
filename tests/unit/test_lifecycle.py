"""The replace rules as the simulator applies them (infra/lifecycle.py)."""

from infra.lifecycle import changed_paths, replacing_paths

RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LB = "aws:lb/loadBalancer:LoadBalancer"
INSTANCE = "aws:ec2/instance:Instance"


def forcing(type_, old, new):
    return replacing_paths(type_, changed_paths(old, new), old, new)


def test_an_instance_is_replaced_for_its_address_and_updated_for_its_type():
    old = {"privateIp": "10.43.0.30", "instanceType": "t3.medium", "rootBlockDevice": {"volumeSize": 30,
                                                                                        "encrypted": True}}
    assert forcing(INSTANCE, old, {**old, "instanceType": "t3.large"}) == []
    assert forcing(INSTANCE, old, {**old, "privateIp": "10.43.0.31"}) == ["privateIp"]
    assert forcing(INSTANCE, old, {**old, "rootBlockDevice": {"volumeSize": 40, "encrypted": True}}) == []
    assert forcing(INSTANCE, old, {**old, "rootBlockDevice": {"volumeSize": 30, "encrypted": False}}) == [
        "rootBlockDevice.encrypted"]


def test_a_network_load_balancer_takes_new_subnets_in_place_and_is_replaced_to_drop_one():
    old = {"subnets": ["a"], "name": "k8s-dev-api"}
    assert forcing(LB, old, {**old, "subnets": ["a", "b", "c"]}) == []
    assert forcing(LB, {**old, "subnets": ["a", "b"]}, old) == ["subnets"]


def test_a_rule_keeps_its_kind_of_source_or_is_replaced():
    cidr = {"securityGroupId": "sg-1", "cidrIpv4": "100.64.7.0/24", "fromPort": 22, "toPort": 22}
    assert forcing(RULE, cidr, {**cidr, "cidrIpv4": "100.64.8.0/24"}) == []
    group = {"securityGroupId": "sg-1", "referencedSecurityGroupId": "sg-2", "fromPort": 22, "toPort": 22}
    assert set(forcing(RULE, cidr, group)) == {"cidrIpv4", "referencedSecurityGroupId"}


def test_a_step_is_replaced_only_when_its_triggers_change():
    step = {"triggers": ["digest-1", "i-1"], "connection": {"host": "203.0.113.1"}, "stdin": "script"}
    assert forcing("command:remote:Command", step, {**step, "connection": {"host": "203.0.113.9"}}) == []
    assert forcing("command:remote:Command", step, {**step, "triggers": ["digest-1", "i-2"]}) == ["triggers"]
