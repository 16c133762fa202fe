"""Every validation rule, each with the message a user sees. Pure: no Pulumi runtime involved."""

import pytest
from hypothesis import given, strategies as st

from infra.settings import SETTINGS_REFERENCE, SettingsError, parse_settings

ADMIN = {"adminCidrs": ["100.64.7.0/24"]}


def parse(**overrides):
    return parse_settings({**ADMIN, **overrides}, stack="dev")


def test_defaults_follow_the_tutorial():
    s = parse()
    assert (s.etcd.count, s.controllers.count, s.workers.count) == (3, 3, 3)
    assert (s.vpc_cidr, s.pod_cidr, s.service_cidr) == ("10.43.0.0/16", "10.200.0.0/16", "10.32.0.0/24")
    assert (s.pod_routing, s.topology, s.zones, s.architecture) == ("vpc", "public", 1, "amd64")
    assert (s.service_ip, s.cluster_dns_ip) == ("10.32.0.1", "10.32.0.10")
    assert s.cluster_name == "k8s-dev"
    assert s.ssh_public_key is None


def test_role_objects_merge_with_defaults():
    s = parse(workers={"count": 5})
    assert s.workers.count == 5 and s.workers.instance_type == "t3.medium"


@pytest.mark.parametrize("overrides, fragment", [
    ({"adminCidrs": None}, "setting 'adminCidrs' is required"),
    ({"adminCidrs": []}, "setting 'adminCidrs' = [] is invalid: expected a non-empty list"),
    ({"adminCidrs": "1.2.3.4/32"}, "setting 'adminCidrs' = '1.2.3.4/32' is invalid"),
    ({"adminCidrs": ["1.2.3.4/33"]}, "setting 'adminCidrs[0]' = '1.2.3.4/33' is invalid"),
    ({"vpcCidr": "10.43.0.1/16"}, "setting 'vpcCidr' = '10.43.0.1/16' is invalid: expected an IPv4 CIDR with no host bits"),
    ({"vpcCidr": "not-a-cidr"}, "setting 'vpcCidr' = 'not-a-cidr' is invalid"),
    ({"vpcCidr": "10.0.0.0/8"}, "setting 'vpcCidr' = '10.0.0.0/8' is invalid: expected /16 to /22"),
    ({"podCidr": "10.43.128.0/17"}, "setting 'podCidr' = '10.43.128.0/17' is invalid: it overlaps vpcCidr 10.43.0.0/16"),
    ({"serviceCidr": "10.43.200.0/24"}, "setting 'serviceCidr' = '10.43.200.0/24' is invalid: it overlaps vpcCidr"),
    ({"serviceCidr": "10.200.0.0/24"}, "setting 'serviceCidr' = '10.200.0.0/24' is invalid: it overlaps podCidr"),
    ({"serviceCidr": "10.32.0.0/29"}, "setting 'serviceCidr' = '10.32.0.0/29' is invalid: expected /28 or larger"),
    ({"etcd": {"count": 2}}, "setting 'etcd.count' = 2 is invalid: etcd needs an odd number of members"),
    ({"etcd": {"count": 4}}, "setting 'etcd.count' = 4 is invalid: etcd needs an odd number"),
    ({"etcd": {"count": 0}}, "setting 'etcd.count' = 0 is invalid: expected a whole number from 1 to 9"),
    ({"controllers": {"count": 0}}, "setting 'controllers.count' = 0 is invalid: expected a whole number from 1"),
    ({"workers": {"count": 0}}, "setting 'workers.count' = 0 is invalid: expected a whole number from 1"),
    ({"workers": {"allowCgroupV1": True}}, "setting 'workers.allowCgroupV1' = True is invalid: it describes the local "
                                           "lab's machines"),
    ({"workers": {"systemContainer": False}}, "setting 'workers.systemContainer' = False is invalid: it describes the "
                                              "local lab's machines"),
    ({"etcd": {"systemContainer": True}}, "setting 'etcd.systemContainer' = True is invalid: unknown key; allowed keys "
                                          "are count, instanceType, rootVolumeGb"),
    ({"workers": {"count": "3"}}, "setting 'workers.count' = '3' is invalid"),
    ({"workers": {"count": True}}, "setting 'workers.count' = True is invalid"),
    ({"workers": {"count": 3, "size": 2}}, "setting 'workers.size' = 2 is invalid: unknown key"),
    ({"workers": 3}, "setting 'workers' = 3 is invalid: expected an object"),
    ({"workers": {"instanceType": "huge"}}, "setting 'workers.instanceType' = 'huge' is invalid"),
    ({"podRouting": "bgp"}, "setting 'podRouting' = 'bgp' is invalid: allowed values are vpc, host"),
    ({"topology": "hybrid"}, "setting 'topology' = 'hybrid' is invalid: allowed values are public, private"),
    ({"architecture": "riscv64"}, "setting 'architecture' = 'riscv64' is invalid: allowed values are amd64, arm64"),
    ({"zones": 0}, "setting 'zones' = 0 is invalid: expected a whole number from 1 to 6"),
    ({"zones": 7}, "setting 'zones' = 7 is invalid"),
    ({"podCidr": "10.200.0.0/24", "workers": {"count": 2}, "podRouting": "host"},
     "setting 'workers.count' = 2 is invalid: podCidr 10.200.0.0/24 split into /24 ranges holds 1 nodes"),
    ({"podCidrMaskSize": 12}, "setting 'podCidrMaskSize' = 12 is invalid: expected a whole number from 16 to 28"),
    ({"podCidr": "10.200.0.0/20", "podCidrMaskSize": 16},
     "setting 'podCidrMaskSize' = 16 is invalid: must be at least the podCidr prefix length /20"),
    ({"workers": {"count": 49}}, "setting 'workers.count' = 49 is invalid: podRouting 'vpc' puts one route per worker"),
    ({"workers": {"count": 20}, "routesQuota": 10}, "routesQuota 10 allows at most 8 workers"),
    ({"vpcCidr": "10.43.0.0/22", "workers": {"count": 3}},
     "setting 'workers.count' = 3 is invalid: node subnets of vpcCidr 10.43.0.0/22 are /26 (64 addresses)"),
    ({"clusterName": "Bad_Name"}, "setting 'clusterName' = 'Bad_Name' is invalid"),
    ({"sshPublicKey": "not a key"}, "setting 'sshPublicKey' = 'not a key' is invalid"),
    ({"downloadBaseUrl": "ftp://x"}, "setting 'downloadBaseUrl' = 'ftp://x' is invalid"),
    ({"versions": ["1.37"]}, "setting 'versions' = ['1.37'] is invalid"),
    ({"versions": {"etcd": "3.9.0"}}, "setting 'versions.etcd' = '3.9.0' is invalid: no checksums are pinned for etcd"),
    ({"versions": {"etcd": {"version": "3.4.30"}}}, "setting 'versions.etcd' = {'version': '3.4.30'} is invalid: "
                                                   "give the checksums of etcd"),
    ({"versions": {"etcd": {"version": "3.4.30", "sha256": {"amd64": "XYZ"}}}}, "etcd sha256 for amd64 is 'XYZ'"),
    ({"versions": {"kubelet": "1.37.2"}}, "setting 'versions.kubelet' is invalid: unknown component"),
    ({"podRouting": "host", "zones": 2}, "setting 'podRouting' = 'host' is invalid: 'host' routes to other nodes as "
                                         "on-link next hops"),
    ({"wrokers": {"count": 3}}, "setting 'wrokers' = {'count': 3} is invalid: unknown setting"),
    ({"adminCidrs": ["203.0.113.7/32"]}, "setting 'adminCidrs[0]' = '203.0.113.7/32' is invalid: it is in "
                                         "203.0.113.0/24, a range reserved for documentation"),
    ({"adminCidrs": ["10.0.0.0/8", "198.51.100.0/24"]}, "setting 'adminCidrs[1]' = '198.51.100.0/24' is invalid"),
    ({"adminCidrs": ["192.0.0.0/16"]}, "Set your own address: pulumi config set --path 'adminCidrs[0]'"),
    ({"clusterName": "a-very-long-cluster-name-abcde"}, "setting 'clusterName' = 'a-very-long-cluster-name-abcde' is "
     "invalid: the load balancer would be named 'a-very-long-cluster-name-abcde-api' (34 characters) but AWS "
     "allows 32; use at most 28 characters"),
    ({"clusterName": "ends-with-"}, "setting 'clusterName' = 'ends-with-' is invalid"),
    ({"imageRegistryMirror": "registry.internal"}, "setting 'imageRegistryMirror' = 'registry.internal' is invalid: "
                                                   "expected a registry as scheme://host[:port]"),
    ({"imageRegistryMirror": "https://registry.internal/docker"}, "setting 'imageRegistryMirror' = "
                                                                  "'https://registry.internal/docker' is invalid"),
    ({"metricsServer": "no"}, "setting 'metricsServer' = 'no' is invalid: expected true or false"),
])
def test_bad_input_names_the_key_the_value_and_what_is_allowed(overrides, fragment):
    raw = {**ADMIN, **overrides}
    if overrides.get("adminCidrs", "") is None:
        del raw["adminCidrs"]
    with pytest.raises(SettingsError) as err:
        parse_settings(raw, stack="dev")
    assert fragment in str(err.value)


@pytest.mark.parametrize("stack, name", [
    ("dev", "k8s-dev"), ("staging", "k8s-staging"), ("production-eu", "k8s-production-eu"),
    ("Team_A.prod", "k8s-team-a-prod"),
])
def test_the_default_cluster_name_comes_from_any_stack_name(stack, name):
    assert parse_settings(ADMIN, stack=stack).cluster_name == name


def test_a_stack_name_too_long_for_aws_names_asks_for_a_cluster_name():
    with pytest.raises(SettingsError, match="use at most 28 characters \\(the default is k8s-<stack name>: set "
                                            "clusterName\\)"):
        parse_settings(ADMIN, stack="customer-facing-production-eu")


def test_the_example_stack_fails_fast_until_you_set_your_own_address():
    import yaml
    from pathlib import Path
    config = yaml.safe_load((Path(__file__).parents[2] / "Pulumi.dev.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("k8s-from-scratch:")}
    with pytest.raises(SettingsError, match="reserved for documentation .* Set your own address"):
        parse_settings(raw, stack="dev")
    raw["adminCidrs"] = ["100.64.7.0/24"]
    assert parse_settings(raw, stack="dev").admin_cidrs == ("100.64.7.0/24",)


def test_host_routing_is_not_bound_by_the_route_quota():
    assert parse(workers={"count": 100}, podRouting="host").workers.count == 100


def test_reference_has_a_description_and_example_for_every_key():
    for spec in SETTINGS_REFERENCE:
        assert spec.description and spec.example, spec.key


@given(st.integers(0, 255), st.integers(0, 255), st.sampled_from([16, 20, 24]))
def test_any_overlap_between_vpc_and_pods_is_refused(a, b, prefix):
    import ipaddress
    pod = ipaddress.ip_network(f"10.{a}.{b}.0/{prefix}", strict=False)
    vpc = ipaddress.ip_network("10.43.0.0/16")
    overrides = {"podCidr": str(pod), "podRouting": "host", "workers": {"count": 1}}
    if pod.overlaps(vpc):
        with pytest.raises(SettingsError, match="overlaps vpcCidr"):
            parse(**overrides)
    elif not pod.overlaps(ipaddress.ip_network("10.32.0.0/24")):
        assert parse(**overrides).pod_cidr == str(pod)


@pytest.mark.parametrize("name", ["kubernetes.default.svc.cluster.local", "cluster.local", "localhost",
                                  "sts.amazonaws.com.", "STS.amazonaws.com", "a..b", "-x.example.com",
                                  "x.example.com;reboot", 3])
def test_dns_check_name_must_be_an_external_dns_name(name):
    with pytest.raises(SettingsError, match=f"setting 'dnsCheckName' = {name!r} is invalid: expected a lowercase"):
        parse(dnsCheckName=name)


def test_dns_check_name_defaults_to_an_aws_name_and_takes_another():
    assert parse().dns_check_name == "sts.amazonaws.com"
    assert parse(dnsCheckName="ec2.eu-west-1.amazonaws.com").dns_check_name == "ec2.eu-west-1.amazonaws.com"


def test_workers_run_on_cgroup_v2_vms_of_their_own_unless_the_stack_says_otherwise():
    default = parse().workers
    assert (default.allow_cgroup_v1, default.system_container) == (False, False)
    lab = parse_settings({**ADMIN, "workers": {"count": 2, "allowCgroupV1": True, "systemContainer": True}},
                         lab_machines=True).workers
    assert (lab.count, lab.allow_cgroup_v1, lab.system_container) == (2, True, True)
    assert lab.instance_type == default.instance_type


@pytest.mark.parametrize("key, value", [("allowCgroupV1", "yes"), ("systemContainer", 1)])
def test_the_lab_machines_settings_are_booleans(key, value):
    with pytest.raises(SettingsError, match=f"setting 'workers.{key}' = {value!r} is invalid: expected true or false"):
        parse_settings({**ADMIN, "workers": {key: value}}, lab_machines=True)


def test_etcd_snapshots_keep_a_byte_budget():
    assert parse().etcd_snapshots.keep_gb == 4
    assert parse(etcdSnapshots={"keepGb": 8}).etcd_snapshots.keep_gb == 8
    with pytest.raises(SettingsError, match="setting 'etcdSnapshots.keepGb' = 0 is invalid: expected a whole number"):
        parse(etcdSnapshots={"keepGb": 0})
