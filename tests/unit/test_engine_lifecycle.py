"""What the real engine and AWS need that mocks do not check by themselves (review-engine-and-aws.md): names within
AWS limits, delete-first replacement of fixed identities, reserved node addresses, steps tied to their instance,
egress before bootstrap, and changes AWS cannot apply refused before anything is created."""

import ipaddress
import re

import pytest

from infra.aws_facts import BOOTSTRAPPED, BOOTSTRAPPED_TAG, STACK_TAG
from infra.settings import SettingsError, aws_names
from simulator.program import ClusterMocks, run_program, stack_config

REMOTE = "command:remote:Command"
INSTANCE = "aws:ec2/instance:Instance"


config = stack_config


@pytest.fixture(scope="module")
def run():
    return run_program(config())


@pytest.fixture(scope="module")
def private():
    return run_program(config(topology="private", zones=3, workers=6))


@pytest.mark.parametrize("stack", ["dev", "staging", "production-eu", "a-stack-of-24-characters"])
def test_load_balancer_names_are_explicit_and_fit_elbv2s_32_characters(stack):
    run = run_program(config(1, 1, 1), stack=stack)
    for type_ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
        (resource,) = run.of_type(type_)
        assert resource.inputs["name"] == f"k8s-{stack}-api"
        assert len(resource.inputs["name"]) <= 32
        assert resource.delete_before_replace, f"{type_}: a unique name cannot be held twice during a replacement"


def test_explicit_aws_names_are_the_ones_settings_validation_measures(run):
    names = aws_names("k8s-dev")
    assert run.of_type("aws:lb/loadBalancer:LoadBalancer")[0].inputs["name"] == names["load balancer"]
    assert run.of_type("aws:lb/targetGroup:TargetGroup")[0].inputs["name"] == names["target group"]


def test_nodes_at_fixed_addresses_are_replaced_delete_first(run, private):
    for r in run.of_type(INSTANCE) + private.of_type(INSTANCE):
        assert r.inputs["privateIp"], r.name
        assert r.delete_before_replace, f"{r.name} would be launched while its old self holds {r.inputs['privateIp']}"


def test_every_node_subnet_reserves_its_lower_half_for_the_planned_addresses(private):
    subnets = {r.urn: r for r in private.of_type("aws:ec2/subnet:Subnet")}
    reservations = private.of_type("aws:ec2/subnetCidrReservation:SubnetCidrReservation")
    assert len(reservations) == len(subnets) == 6          # 3 public (bastion, NAT, NLB) and 3 private (nodes)
    by_subnet = {}
    for res in reservations:
        assert res.inputs["reservationType"] == "explicit"
        assert res.delete_before_replace
        (subnet_urn,) = res.property_dependencies["subnetId"]
        subnet = ipaddress.ip_network(subnets[subnet_urn].inputs["cidrBlock"])
        block = ipaddress.ip_network(res.inputs["cidrBlock"])
        assert block.subnet_of(subnet) and block.num_addresses == subnet.num_addresses // 2
        assert block.network_address == subnet.network_address
        by_subnet[subnet] = block
    for r in private.of_type(INSTANCE):
        ip = ipaddress.ip_address(r.inputs["privateIp"])
        assert any(ip in block for block in by_subnet.values()), f"{r.name} at {ip} is outside every reservation"
    # the load balancer and NAT gateways take addresses in the public subnets only after their blocks are reserved
    reservation_urns = {res.urn for res in reservations if "-public-" in res.name}
    for type_ in ("aws:lb/loadBalancer:LoadBalancer", "aws:ec2/natGateway:NatGateway"):
        for r in private.of_type(type_):
            assert reservation_urns <= set(r.dependencies), r.name


def test_the_internet_facing_load_balancer_waits_for_the_internet_gateway(run):
    (igw,) = run.of_type("aws:ec2/internetGateway:InternetGateway")
    (lb,) = run.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert igw.urn in lb.dependencies


def test_zones_are_real_availability_zones_in_a_stable_order():
    mocks = ClusterMocks()
    run = run_program(config(1, 1, 1, zones=2), mocks=mocks)
    (args,) = [a for token, a in mocks.calls if token == "aws:index/getAvailabilityZones:getAvailabilityZones"]
    assert {"name": "zone-type", "values": ["availability-zone"]} in args["filters"]
    assert "state" not in args, "a state filter lets a briefly impaired zone shift every subnet to another zone"
    zones = {s.name: s.inputs["availabilityZone"] for s in run.of_type("aws:ec2/subnet:Subnet")}
    assert zones == {"k8s-dev-public-0": "eu-west-1a", "k8s-dev-public-1": "eu-west-1b"}


def test_every_remote_step_carries_its_instance_id_so_a_new_machine_is_installed_again(run):
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r.id for r in run.of_type(INSTANCE)}
    steps = run.of_type(REMOTE)
    assert len(steps) > 80
    for c in steps:
        host = re.match(r"^((?:etcd|controller|worker)-\d+)-", c.name).group(1)
        if "-membership-" in c.name:
            # never replaced: a replacement is created before the old one is deleted, and that deletion would
            # remove the member just (re)joined; a new machine rejoins through its own start step instead
            assert "triggers" not in c.inputs, c.name
            continue
        if removes := re.search(r"-remove-(worker-\d+)$", c.name):
            # replaced only with the machine of the worker it drains and deletes (delete-first: the old one's
            # removal runs before that machine goes), never with the controller it runs on
            assert c.inputs["triggers"] == [instances[removes.group(1)]], c.name
            continue
        assert instances[host] in c.inputs["triggers"], c.name
        for other, instance_id in instances.items():
            if other != host:
                assert instance_id not in c.inputs["triggers"], (c.name, other)


def test_private_nodes_start_only_once_their_zone_reaches_the_internet(private):
    routes = {r.name: r.urn for r in private.of_type("aws:ec2/route:Route") if r.inputs.get("natGatewayId")}
    egress = {r.name: r.urn for r in private.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r for r in private.of_type(INSTANCE)}
    gates = [c for c in private.of_type(REMOTE) if re.match(r"^(etcd|controller|worker)-\d+-ready$", c.name)]
    assert len(gates) == 3 + 3 + 6
    for gate in gates:
        node = gate.name.removesuffix("-ready")
        instance = instances[node]
        zone = ["eu-west-1a", "eu-west-1b", "eu-west-1c"].index(
            next(s.inputs["availabilityZone"] for s in private.of_type("aws:ec2/subnet:Subnet")
                 if s.urn in instance.property_dependencies["subnetId"]))
        group = {"etcd": "etcd", "controllers": "controllers", "workers": "workers"}[instance.inputs["tags"]["role"]]
        assert instance.urn in gate.dependencies, gate.name
        assert routes[f"k8s-dev-private-{zone}-default"] in gate.dependencies, gate.name
        assert egress[f"k8s-dev-{group}-egress"] in gate.dependencies, gate.name
        assert gate.deleted_with == instance.urn


def test_service_starts_restart_only_on_new_inputs_and_name_their_bound(run):
    start = run.named("controller-1-start-kube-apiserver")
    assert "inputs unchanged since it was started, not restarting" in start.inputs["stdin"]
    assert "did not finish within" in start.inputs["create"] and "controller-1" in start.inputs["create"]
    # the fingerprint the node keeps is a digest, so the step keeps its logs
    assert "stdin" not in start.secret_inputs and start.inputs["logging"] != "none"


THIS_STACK = "organization/k8s-from-scratch/dev"     # the stack tag of stack dev in a file backend


def existing(role, index, architecture="amd64", volume=20, stack=THIS_STACK):
    """A node of a running cluster: it came up once (its interface carries the bootstrapped tag)."""
    return {"id": f"i-{role}{index}", "rootVolumeGb": volume, "architecture": {"amd64": "x86_64"}.get(architecture,
                                                                                                     architecture),
            "tags": {"cluster": "k8s-dev", "role": role, "architecture": architecture, STACK_TAG: stack},
            "interfaceTags": {BOOTSTRAPPED_TAG: BOOTSTRAPPED}}


ARM64 = {"architecture": "arm64", "etcd": {"count": 1, "instanceType": "t4g.small"},
         "controllers": {"count": 1, "instanceType": "t4g.medium"}, "workers": {"count": 1, "instanceType": "t4g.medium"}}


def test_changing_the_architecture_of_a_running_cluster_is_refused_before_anything_is_created():
    mocks = ClusterMocks(existing_instances=[existing("etcd", 0), existing("workers", 0)])
    with pytest.raises(SettingsError, match="setting 'architecture' = 'arm64' cannot be applied: 2 of the cluster's "
                                            "nodes run another architecture"):
        run_program({**config(1, 1, 1), **ARM64}, mocks=mocks)
    assert mocks.declared == [], "the refusal must come before the first resource"


def test_nodes_made_before_the_architecture_tag_are_judged_by_what_ec2_says():
    untagged = existing("etcd", 0)
    del untagged["tags"]["architecture"]
    with pytest.raises(SettingsError, match="setting 'architecture' = 'arm64' cannot be applied"):
        run_program({**config(1, 1, 1), **ARM64}, mocks=ClusterMocks(existing_instances=[untagged]))


def test_lowering_a_root_volume_is_refused_and_raising_it_is_not():
    before = [existing("workers", 0, volume=30), existing("workers", 1, volume=30), existing("etcd", 0)]
    with pytest.raises(SettingsError, match=r"setting 'workers.rootVolumeGb' = 20 cannot be applied: the workers "
                                            r"nodes have 30 GB root volumes and EBS volumes cannot shrink"):
        run_program({**config(1, 1, 2), "workers": {"count": 2, "rootVolumeGb": 20}},
                    mocks=ClusterMocks(existing_instances=before))
    grown = run_program({**config(1, 1, 2), "workers": {"count": 2, "rootVolumeGb": 40}},
                        mocks=ClusterMocks(existing_instances=before))
    assert {r.inputs["rootBlockDevice"]["volumeSize"] for r in grown.of_type(INSTANCE)
            if r.inputs["tags"]["role"] == "workers"} == {40}


def test_another_clusters_instances_hold_nothing_back():
    other = existing("workers", 0, architecture="arm64", stack="organization/k8s-from-scratch/other")
    other["tags"]["cluster"] = "k8s-other"
    run = run_program(config(1, 1, 1), mocks=ClusterMocks(existing_instances=[other]))
    assert run.of_type(INSTANCE)


def test_a_users_ssh_key_is_its_own_key_pair_and_a_refresh_cannot_replace_it():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp8eZyWQ0kUrJ6h2jk7vYk3Yq8j5m3n9lJ8bY0zQ1aB me@host"
    generated = run_program(config(1, 1, 1)).of_type("aws:ec2/keyPair:KeyPair")
    own = run_program(config(1, 1, 1, sshPublicKey=key)).of_type("aws:ec2/keyPair:KeyPair")
    assert generated[0].name == "k8s-dev-ssh" and own[0].name.startswith("k8s-dev-ssh-")
    assert own[0].inputs["publicKey"] == key
    for pair in generated + own:
        assert pair.ignore_changes == ["publicKey"]


def test_a_secret_mirror_url_never_lands_in_plain_state_or_logs():
    mirror = "https://user:s3cr3t@mirror.example.internal"
    run = run_program(config(1, 1, 1, downloadBaseUrl=mirror), secret_keys=("downloadBaseUrl",))
    carrying = [c for c in run.of_type(REMOTE) if "s3cr3t" in str(c.inputs.get("stdin")) + str(c.inputs["triggers"])]
    assert {c.name.split("-", 2)[-1] for c in carrying} >= {"install-etcd", "install-kubernetes-server",
                                                              "install-containerd"}
    for c in carrying:
        assert "stdin" in c.secret_inputs, c.name
        assert "triggers" in c.secret_inputs or all(
            f"triggers[{i}]" in c.secret_inputs for i, t in enumerate(c.inputs["triggers"]) if "s3cr3t" in str(t)), c.name
        assert c.inputs["logging"] == "none", c.name
    others = [c for c in run.of_type(REMOTE) if c not in carrying and c.name.endswith(("-etcd-user", "-node-ready"))]
    assert len(others) == 2 and all(c.inputs["logging"] == "stdoutAndStderr" for c in others)


def test_a_plain_mirror_url_keeps_its_steps_logged():
    run = run_program(config(1, 1, 1, downloadBaseUrl="https://mirror.example.internal"))
    install = run.named("etcd-0-install-etcd")
    assert "stdin" not in install.secret_inputs and install.inputs["logging"] == "stdoutAndStderr"


def test_the_encryption_key_keeps_its_identity_whatever_the_cluster_is_called():
    urns = []
    for name in ("k8s-dev", "renamed"):
        (key,) = run_program(config(1, 1, 1, clusterName=name)).of_type("random:index/randomBytes:RandomBytes")
        urns.append(key.urn)
        assert key.name == "secrets-encryption-key" and "pulumi:pulumi:Stack::" in key.parent    # the stack itself
        assert any(f"{name}-control-plane-encryption-key" in a for a in key.aliases), key.aliases
    assert urns[0] == urns[1]


def etcd_member(index, ip):
    node = existing("etcd", index)
    node["tags"]["Name"] = f"k8s-dev-etcd-{index}"
    node["privateIp"] = ip
    return node


RUNNING_ETCD = [etcd_member(i, f"10.43.0.{10 + i}") for i in range(3)]


@pytest.mark.parametrize("change, fragment", [
    ({"etcd": {"count": 7}}, "setting 'etcd.count' = 7 cannot be applied to the running 3 etcd members in one "
                             "update: it adds 4 members at once"),
    ({"etcd": {"count": 1}}, "setting 'etcd.count' = 1 cannot be applied to the running 3 etcd members in one "
                             "update: the last step down, from 3 members to 1, removes a majority at once"),
    ({"zones": 3}, "settings 'zones', 'topology' and 'vpcCidr' = 3, 'public', '10.43.0.0/16' cannot be applied: they "
                   "move etcd-1 from 10.43.0.11 to 10.43.16.10; etcd-2 from 10.43.0.12 to 10.43.32.10"),
    ({"topology": "private"}, "they move etcd-0 from 10.43.0.10 to 10.43.128.10"),
])
def test_changes_that_would_break_etcd_are_refused(change, fragment):
    with pytest.raises(SettingsError) as err:
        run_program({**config(), **change}, mocks=ClusterMocks(existing_instances=RUNNING_ETCD))
    assert fragment in str(err.value)


def test_etcd_members_staying_where_they_are_is_no_change():
    run = run_program({**config(), "workers": {"count": 5}}, mocks=ClusterMocks(existing_instances=RUNNING_ETCD))
    assert len(run.of_type(INSTANCE)) == 3 + 3 + 5


def test_another_ssh_key_on_a_running_cluster_is_refused_before_every_node_is_replaced():
    before = run_program(config(1, 1, 1))
    key_name = before.of_type("aws:ec2/keyPair:KeyPair")[0].outputs["keyName"]
    assert re.fullmatch(r"k8s-dev-ssh-[0-9a-f]{7}", key_name)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp8eZyWQ0kUrJ6h2jk7vYk3Yq8j5m3n9lJ8bY0zQ1aB me@host"
    mocks = ClusterMocks(existing=before)
    with pytest.raises(SettingsError, match="setting 'sshPublicKey' cannot be changed on a running cluster: .* all 3 "
                                            "nodes would be replaced at once and etcd would start empty"):
        run_program(config(1, 1, 1, sshPublicKey=key), mocks=mocks)
    assert mocks.declared == []
    # the same key as before is no change at all
    assert run_program(config(1, 1, 1), mocks=ClusterMocks(existing=before)).of_type(INSTANCE)


def test_cluster_level_steps_sit_under_the_component_they_belong_to_and_keep_their_identity(run):
    components = {r.name: r.urn for r in run.resources if not r.custom}
    expected = {"worker-1-read-pod-cidr": "k8s-dev-pod-network", "worker-1-pod-network": "k8s-dev-pod-network",
                "controller-0-apply-coredns": "k8s-dev-addons", "controller-0-dns-check": "k8s-dev-addons",
                "controller-0-apply-nginx": "k8s-dev-smoke-test", "controller-0-nginx-rollout": "k8s-dev-smoke-test"}
    for step, component in expected.items():
        resource = run.named(step)
        assert resource.parent == components[component], step
        assert resource.aliases, f"{step}: its old place under the host's component is an alias, so it is not re-run"
    assert run.named("controller-0-apiserver-ready").parent == components["k8s-dev-control-plane"]


def test_a_workers_pod_range_reader_reruns_for_its_new_machine_only_not_for_a_restarted_kubelet(run):
    for i in range(3):
        reader = run.named(f"worker-{i}-read-pod-cidr")
        assert run.named(f"k8s-dev-worker-{i}", INSTANCE).id in reader.inputs["triggers"]
        assert run.named(f"worker-{i}-node-ready").id not in reader.inputs["triggers"]
        assert reader.depends_on_urn(run.named(f"worker-{i}-node-ready").urn)
        for j in set(range(3)) - {i}:
            assert run.named(f"k8s-dev-worker-{j}", INSTANCE).id not in reader.inputs["triggers"]
            assert not reader.depends_on_urn(run.named(f"worker-{j}-node-ready").urn)


def test_an_image_registry_mirror_reaches_every_workers_containerd():
    import base64
    import tomllib
    run = run_program(config(1, 1, 2, imageRegistryMirror="http://10.43.0.4:5000"))
    for i in range(2):
        script = run.named(f"worker-{i}-worker-files").inputs["stdin"]
        files = dict(re.findall(r"mktemp (\S+)\.XXXXXX\)\nbase64 -d > \"\$tmp\" <<'K8S_FROM_SCRATCH_EOF'\n(\S+)\n", script))
        for registry in ("docker.io", "registry.k8s.io"):
            hosts = tomllib.loads(base64.b64decode(files[f"/etc/containerd/certs.d/{registry}/hosts.toml"]).decode())
            assert hosts["host"]["http://10.43.0.4:5000"]["capabilities"] == ["pull", "resolve"]
        config_toml = tomllib.loads(base64.b64decode(files["/etc/containerd/config.toml"]).decode())
        assert config_toml["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"] == \
            "/etc/containerd/certs.d"
    plain = run_program(config(1, 1, 1)).named("worker-0-worker-files").inputs["stdin"]
    assert "certs.d/docker.io" not in plain
