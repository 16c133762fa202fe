"""Each infra component alone under mocks: what it declares from its own arguments."""

from infra.apilb import ApiLoadBalancer, ApiLoadBalancerArgs
from infra.certs import CA_SPECS, Host, cluster_cert_specs
from infra.network import Network, NetworkArgs
from infra.nodes import Nodes, NodesArgs
from infra.pki import Pki, PkiArgs
from infra.settings import parse_settings
from simulator.program import run_pulumi

TAGS = {"cluster": "t"}
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def settings(**overrides):
    return parse_settings({"adminCidrs": ["100.64.7.0/24"], "clusterName": "t", **overrides})


def test_network_private_topology_gives_each_zone_its_nat_and_route_table():
    def build():
        n = Network("t", NetworkArgs(settings(topology="private", zones=2), TAGS, ZONES))
        return {"tables": n.node_route_table_ids, "subnets": n.node_subnet_ids, "groups": n.security_group_ids,
                "zones": n.zone_names}
    run = run_pulumi(build)
    assert len(run.outputs["tables"]) == 2 and len(run.outputs["subnets"]) == 2
    assert set(run.outputs["groups"]) == {"etcd", "controllers", "workers", "bastion"}
    assert run.outputs["zones"] == ["eu-west-1a", "eu-west-1b"]
    cidrs = sorted(r.inputs["cidrBlock"] for r in run.of_type("aws:ec2/subnet:Subnet"))
    assert cidrs == ["10.43.0.0/20", "10.43.128.0/20", "10.43.144.0/20", "10.43.16.0/20"]
    nat_routes = [r for r in run.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(nat_routes) == 2


def test_more_zones_than_the_region_has_are_refused_before_the_network():
    import pytest
    from simulator.program import ClusterMocks, run_program, stack_config
    mocks = ClusterMocks()
    with pytest.raises(Exception, match="setting 'zones' = 4 is invalid: this region has only 3"):
        run_program(stack_config(1, 1, 4, zones=4), mocks=mocks)
    assert mocks.declared == []


def test_pki_issues_one_certificate_per_spec_and_keeps_keys_secret():
    specs = cluster_cert_specs(etcd=[Host("etcd-0", "10.0.0.10")], controllers=[Host("controller-0", "10.0.0.20")],
                               workers=[Host("worker-0", "10.0.0.30")], service_ip="10.32.0.1")

    def build():
        pki = Pki("p", PkiArgs(CA_SPECS, specs))
        return {"keys": {name: pair.key_pem for name, pair in pki.certs.items()},
                "sa": pki.service_account_private_key_pem, "ca": pki.cas["kubernetes-ca"].cert_pem}
    run = run_pulumi(build)
    assert set(run.outputs["keys"]) == {s.name for s in specs}
    assert all(path.startswith("keys.") or path == "sa" for path in run.secret_outputs)
    assert {f"keys.{s.name}" for s in specs} | {"sa"} <= run.secret_outputs
    assert "ca" not in run.secret_outputs
    assert all(r.parent.endswith("::p") for r in run.of_type("tls:index/locallySignedCert:LocallySignedCert"))


def test_nodes_place_each_role_in_its_zone_subnet_with_its_group():
    s = settings(zones=2, workers={"count": 4}, etcd={"count": 1}, controllers={"count": 1})

    def build():
        nodes = Nodes("t", NodesArgs(s, subnet_ids=["subnet-a", "subnet-b"], public_subnet_ids=["subnet-a", "subnet-b"],
                                     security_group_ids={"etcd": "sg-e", "controllers": "sg-c", "workers": "sg-w"},
                                     tags=TAGS))
        return {"workers": [n.instance.private_ip for n in nodes.workers]}
    run = run_pulumi(build)
    assert run.outputs["workers"] == ["10.43.0.30", "10.43.16.30", "10.43.0.31", "10.43.16.31"]
    by_name = {r.name: r.inputs for r in run.of_type("aws:ec2/instance:Instance")}
    assert by_name["t-worker-1"]["subnetId"] == "subnet-b" and by_name["t-worker-1"]["vpcSecurityGroupIds"] == ["sg-w"]
    assert by_name["t-etcd-0"]["vpcSecurityGroupIds"] == ["sg-e"]


def test_api_load_balancer_attaches_every_controller():
    def build():
        lb = ApiLoadBalancer("t-api", ApiLoadBalancerArgs("t", "vpc-1", ["subnet-a"], {"controller-0": "i-0",
                                                                                    "controller-1": "i-1"}, TAGS))
        return {"endpoint": lb.endpoint}
    run = run_pulumi(build)
    assert run.outputs["endpoint"] == "https://t-api-nlb-0123456789abcdef.elb.eu-west-1.amazonaws.com:6443"
    assert sorted(a.inputs["targetId"] for a in
                  run.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")) == ["i-0", "i-1"]


def test_example_stack_file_is_a_valid_stack_once_admin_cidrs_is_yours():
    import yaml
    from pathlib import Path
    from simulator.program import run_program
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text())["config"]
    config = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("k8s-from-scratch:")}
    config["adminCidrs"] = ["100.64.7.0/24"]    # the file's placeholder is refused (test_settings)
    run = run_program(config)
    assert run.outputs["apiEndpoint"].startswith("https://")


def test_settings_are_read_from_the_engines_environment_too(monkeypatch):
    """`pulumi up` may pass config only in PULUMI_CONFIG; the program must read it from there as well."""
    import json
    from simulator.program import run_program
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "k8s-from-scratch:adminCidrs": '["100.64.7.0/24"]',
        "k8s-from-scratch:workers": '{"count": 2}',
        "k8s-from-scratch:podRouting": "host",
        "aws:region": "eu-west-1",
    }))
    run = run_program({})
    assert set(run.outputs["nodes"]["workers"]) == {"worker-0", "worker-1"}


def test_a_misspelt_key_in_the_engines_environment_is_reported(monkeypatch):
    import json
    import pytest
    from infra.settings import SettingsError
    from simulator.program import run_program
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"k8s-from-scratch:adminCidrs": '["100.64.7.0/24"]',
                                                    "k8s-from-scratch:worker": '{"count": 2}'}))
    with pytest.raises(SettingsError, match="setting 'worker' = .* unknown setting"):
        run_program({})
