"""The cloud and PKI foundation, asserted on what the real program declares under mocks (preview=False)."""

import functools
import ipaddress

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.render import control_plane
from infra.settings import SettingsError
from simulator.program import run_program, stack_config

ADMIN = ["100.64.7.0/24", "100.64.9.15/32"]
SIZES = {"1/1/1": (1, 1, 1), "3/3/3": (3, 3, 3), "5/3/10": (5, 3, 10)}

INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
CERT = "tls:index/locallySignedCert:LocallySignedCert"
CA_CERT = "tls:index/selfSignedCert:SelfSignedCert"


config = functools.partial(stack_config, admin=ADMIN)


@pytest.fixture(scope="module", params=list(SIZES))
def sized(request):
    etcd, controllers, workers = SIZES[request.param]
    return (etcd, controllers, workers), run_program(config(etcd, controllers, workers))


@pytest.fixture(scope="module")
def default_run():
    return run_program(config())


@pytest.fixture(scope="module")
def private_run():
    return run_program(config(topology="private", zones=3))


def instances(run, role):
    return sorted((r for r in run.of_type(INSTANCE) if r.inputs["tags"].get("role") == role),
                  key=lambda r: r.inputs["tags"]["Name"])


def cert(run, name) -> x509.Certificate:
    pem = run.named(f"k8s-dev-pki-{name}", CERT).outputs["certPem"]
    return x509.load_pem_x509_certificate(pem.encode())


def sans(certificate):
    ext = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), {str(i) for i in ext.get_values_for_type(x509.IPAddress)}


# --- sizes ---------------------------------------------------------------------------------------------------------

def test_each_size_declares_every_node_with_its_planned_address(sized):
    (etcd, controllers, workers), run = sized
    for role, count, base in (("etcd", etcd, 10), ("controllers", controllers, 20), ("workers", workers, 30)):
        got = [r.inputs["privateIp"] for r in instances(run, role)]
        want = [f"10.43.0.{base + i}" for i in range(count)]
        assert sorted(got, key=ipaddress.ip_address) == want
    assert set(run.outputs["nodes"]) == {"etcd", "controllers", "workers"}
    assert len(run.outputs["nodes"]["workers"]) == workers
    assert len(run.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")) == controllers
    # one CSR-signed certificate per worker and two per etcd member, on top of the 11 cluster identities (the
    # deployer, the front-proxy client and metrics-server's serving certificate among them)
    assert len(run.of_type(CERT)) == 11 + workers + 2 * etcd


def test_each_worker_certificate_names_the_node_and_carries_its_own_ip(sized):
    (_, _, workers), run = sized
    for i in range(workers):
        c = cert(run, f"worker-{i}")
        assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:worker-{i}"
        assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
        dns, ips = sans(c)
        assert dns == {f"worker-{i}"} and ips == {f"10.43.0.{30 + i}"}
        usages = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_api_server_certificate_carries_every_name_the_api_is_reached_by(sized):
    (_, controllers, _), run = sized
    dns, ips = sans(cert(run, "kube-apiserver"))
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"} <= dns
    assert {"127.0.0.1", "10.32.0.1"} | {f"10.43.0.{20 + i}" for i in range(controllers)} <= ips
    # People come through the load balancer and verify the name their kubeconfig gives (tls-server-name), which
    # the certificate carries; the load balancer's own name is not needed, so no certificate waits for it.
    lb_dns = run.outputs["apiEndpoint"].removeprefix("https://").removesuffix(":6443")
    assert lb_dns not in dns
    kubeconfig = yaml.safe_load(run.outputs["kubeconfig"])["clusters"][0]["cluster"]
    assert kubeconfig["server"] == run.outputs["apiEndpoint"] and kubeconfig["tls-server-name"] in dns


def test_no_certificate_waits_for_the_load_balancer(default_run):
    lb_urns = {r.urn for r in default_run.resources if r.type.startswith("aws:lb/")}
    for r in default_run.resources:
        if r.type.startswith("tls:"):
            assert not any(r.depends_on_urn(u) for u in lb_urns), r.name


# --- PKI -----------------------------------------------------------------------------------------------------------

def test_certificates_chain_to_the_right_ca(default_run):
    cas = {r.inputs["subject"]["commonName"]: x509.load_pem_x509_certificate(r.outputs["certPem"].encode())
           for r in default_run.of_type(CA_CERT)}
    assert set(cas) == {"Kubernetes CA", "etcd CA", "front-proxy CA"}
    for name, ca in (("admin", "Kubernetes CA"), ("kube-apiserver", "Kubernetes CA"), ("worker-0", "Kubernetes CA"),
                     ("metrics-server", "Kubernetes CA"), ("etcd-0-server", "etcd CA"), ("etcd-1-peer", "etcd CA"),
                     ("kube-apiserver-etcd-client", "etcd CA"), ("front-proxy-client", "front-proxy CA")):
        cert(default_run, name).verify_directly_issued_by(cas[ca])
    for ca in cas.values():
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("name, cn, org", [
    ("admin", "admin", "k8s-from-scratch:cluster-admins"),
    ("super-admin", "super-admin", "system:masters"),
    ("deployer", "k8s-from-scratch:deployer", "k8s-from-scratch:deployers"),
    ("kube-controller-manager", "system:kube-controller-manager", None),
    ("kube-scheduler", "system:kube-scheduler", None),
    ("kube-proxy", "system:kube-proxy", "system:node-proxier"),
    ("kube-apiserver-kubelet-client", "kube-apiserver-kubelet-client", None),
    ("front-proxy-client", "front-proxy-client", None),
])
def test_client_identities(default_run, name, cn, org):
    c = cert(default_run, name)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
    orgs = [a.value for a in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ([org] if org else [])
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_etcd_member_certificates_carry_member_ip_and_loopback(default_run):
    for i in range(3):
        for kind in ("server", "peer"):
            dns, ips = sans(cert(default_run, f"etcd-{i}-{kind}"))
            assert dns == {f"etcd-{i}", "localhost"} and ips == {f"10.43.0.{10 + i}", "127.0.0.1"}


def test_every_private_key_is_declared_secret_and_exported_only_as_secret(default_run):
    keys = default_run.of_type("tls:index/privateKey:PrivateKey")
    assert len(keys) == 3 + 11 + 3 + 6 + 1 + 1  # CAs, identities, workers, etcd server+peer, SA key, SSH key
    for key in keys:
        assert {"privateKeyPem", "privateKeyOpenssh"} <= set(key.additional_secret_outputs), key.name
    assert "sshPrivateKey" in default_run.secret_outputs
    # a CA key travels to each signed certificate as a secret input
    for signed in default_run.of_type(CERT):
        assert "caPrivateKeyPem" in signed.secret_inputs, signed.name
    assert "BEGIN" not in str(default_run.outputs["caCertificate"]).replace("BEGIN CERTIFICATE", "")


def test_no_key_material_in_plain_outputs(default_run):
    plain = {k: v for k, v in default_run.outputs.items() if k not in default_run.secret_outputs}
    assert "PRIVATE KEY" not in repr(plain)


def test_service_account_key_pair_is_separate_rsa(default_run):
    key = default_run.named("k8s-dev-pki-service-account-key")
    assert key.inputs["algorithm"] == "RSA"
    assert not default_run.of_type("tls:index/certRequest:CertRequest")[0].inputs["privateKeyPem"] == \
        key.outputs["privateKeyPem"]


# --- network and security groups -----------------------------------------------------------------------------------

def test_vpc_has_dns_hostnames_and_the_configured_range(default_run):
    vpc = default_run.of_type("aws:ec2/vpc:Vpc")[0]
    assert vpc.inputs["cidrBlock"] == "10.43.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] and vpc.inputs["enableDnsSupport"]
    route = default_run.named("k8s-dev-public-default")
    assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0" and "gatewayId" in route.inputs


def ingress_rules(run):
    groups = {r.id: r.name.removeprefix("k8s-dev-")
              for r in run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    for r in run.of_type(INGRESS):
        yield groups[r.inputs["securityGroupId"]], r.inputs, groups.get(r.inputs.get("referencedSecurityGroupId"))


@pytest.mark.parametrize("fixture", ["default_run", "private_run"])
def test_no_rule_opens_ssh_or_the_api_to_the_internet(fixture, request):
    run = request.getfixturevalue(fixture)
    rules = list(ingress_rules(run))
    assert rules
    for group, rule, _ in rules:
        cidr = rule.get("cidrIpv4")
        if cidr is None:
            continue
        net = ipaddress.ip_network(cidr)
        covers = lambda port: rule["ipProtocol"] == "-1" or rule["fromPort"] <= port <= rule["toPort"]
        if covers(22) or covers(6443):
            assert net.prefixlen >= 8 and not net.overlaps(ipaddress.ip_network("8.8.8.0/24")), (group, rule)
            assert cidr in ADMIN or net.subnet_of(ipaddress.ip_network("10.0.0.0/8")), (group, rule)
    for r in run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"):
        assert r.inputs["cidrIpv4"] == "0.0.0.0/0"


def test_etcd_ports_admit_only_controllers_and_members(default_run):
    etcd_rules = [(rule, src) for group, rule, src in ingress_rules(default_run) if group == "etcd"]
    client = {src for rule, src in etcd_rules if rule.get("fromPort") == 2379}
    peer = {src for rule, src in etcd_rules if rule.get("fromPort") == 2380}
    assert client == {"controllers", "etcd"} and peer == {"etcd"}
    assert all(rule.get("cidrIpv4") in (None, *ADMIN) for rule, _ in etcd_rules)


@pytest.mark.parametrize("fixture", ["default_run", "private_run"])
def test_controllers_reach_kubelets_and_pods_on_every_tcp_port_and_pods_each_other(fixture, request):
    """The API servers call kubelets and, for webhooks, aggregated APIs and the proxy, pods on any port."""
    worker_rules = [(rule, src) for group, rule, src in ingress_rules(request.getfixturevalue(fixture))
                    if group == "workers"]
    from_controllers = [rule for rule, src in worker_rules if src == "controllers"]
    assert [(r["ipProtocol"], r["fromPort"], r["toPort"]) for r in from_controllers] == [("tcp", 0, 65535)]
    assert any(rule.get("cidrIpv4") == "10.200.0.0/16" and rule["ipProtocol"] == "-1" for rule, _ in worker_rules)
    if fixture == "default_run":
        nodeports = [rule["cidrIpv4"] for rule, _ in worker_rules if rule.get("fromPort") == 30000]
        assert sorted(nodeports) == sorted(ADMIN)


def test_api_port_from_admins_and_inside_the_vpc(default_run):
    sources = {rule.get("cidrIpv4") for group, rule, _ in ingress_rules(default_run)
               if group == "controllers" and rule.get("fromPort") == 6443}
    assert sources == {*ADMIN, "10.43.0.0/16", "10.200.0.0/16"}


# --- instances -----------------------------------------------------------------------------------------------------

def test_instances_are_hardened_and_named_after_their_node(default_run):
    for r in default_run.of_type(INSTANCE):
        node = r.inputs["tags"]["Name"].removeprefix("k8s-dev-")
        assert r.inputs["metadataOptions"]["httpTokens"] == "required"
        root = r.inputs["rootBlockDevice"]
        assert root["volumeType"] == "gp3" and root["encrypted"] is True
        assert f"hostname: {node}\n" in r.inputs["userData"]
        assert r.inputs["tags"]["cluster"] == "k8s-dev" and r.inputs["tags"]["role"]
        assert r.inputs["ami"] == "ami-0abcdef1234567890" and "ami" in r.ignore_changes
        assert r.inputs["associatePublicIpAddress"] is True
    ami_calls = [args for token, args in default_run.calls if token == "aws:ec2/getAmi:getAmi"]
    assert ami_calls and ami_calls[0]["owners"] == ["099720109477"]
    assert "ubuntu-noble-24.04-amd64-server-*" in str(ami_calls[0]["filters"])


def test_source_dest_check_is_off_exactly_where_pod_traffic_is_routed(default_run):
    for r in default_run.of_type(INSTANCE):
        assert r.inputs["sourceDestCheck"] is (r.inputs["tags"]["role"] != "workers")


def test_user_ssh_key_is_used_instead_of_a_generated_one():
    run = run_program(config(1, 1, 1, sshPublicKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop"))
    assert run.of_type("aws:ec2/keyPair:KeyPair")[0].inputs["publicKey"].startswith("ssh-ed25519 AAAAC3")
    assert "sshPrivateKey" not in run.outputs
    assert all("-ssh" not in k.name for k in run.of_type("tls:index/privateKey:PrivateKey"))


# --- load balancer -------------------------------------------------------------------------------------------------

def test_api_load_balancer_forwards_6443_with_an_https_readyz_check(default_run):
    lb = default_run.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    assert lb.inputs["loadBalancerType"] == "network" and lb.inputs["enableCrossZoneLoadBalancing"] is False
    group = default_run.of_type("aws:lb/targetGroup:TargetGroup")[0]
    assert (group.inputs["port"], group.inputs["protocol"]) == (6443, "TCP")
    check = group.inputs["healthCheck"]
    assert (check["protocol"], check["path"], check["port"]) == ("HTTPS", "/readyz", "6443")
    # A stopping API server fails /readyz but keeps serving until this check has surely taken it out.
    assert check["interval"] * (check["unhealthyThreshold"] + 1) <= control_plane.SHUTDOWN_DELAY_SECONDS
    listener = default_run.of_type("aws:lb/listener:Listener")[0]
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (6443, "TCP")
    controller_ids = {r.id for r in instances(default_run, "controllers")}
    attached = {a.inputs["targetId"] for a in default_run.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")}
    assert attached == controller_ids and len(attached) == 3


# --- private topology ----------------------------------------------------------------------------------------------

def test_private_topology_hides_nodes_behind_nat_and_a_bastion(private_run):
    nodes = [r for r in private_run.of_type(INSTANCE) if r.inputs["tags"]["role"] != "bastion"]
    assert all(r.inputs["associatePublicIpAddress"] is False for r in nodes)
    assert {r.inputs["privateIp"] for r in nodes if r.inputs["tags"]["role"] == "etcd"} == \
        {"10.43.128.10", "10.43.144.10", "10.43.160.10"}
    assert len(private_run.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(private_run.of_type("aws:ec2/routeTable:RouteTable")) == 4
    bastion = [r for r in private_run.of_type(INSTANCE) if r.inputs["tags"]["role"] == "bastion"]
    assert len(bastion) == 1 and bastion[0].inputs["associatePublicIpAddress"] is True
    ssh_sources = {src for group, rule, src in ingress_rules(private_run)
                   if rule.get("fromPort") == 22 and group != "bastion"}
    assert ssh_sources == {"bastion"}
    assert "ProxyJump bastion" in private_run.outputs["sshConfig"]
    lb = private_run.of_type("aws:lb/loadBalancer:LoadBalancer")[0]
    assert lb.inputs["enableCrossZoneLoadBalancing"] is True and len(lb.inputs["subnets"]) == 3


# --- outputs and errors --------------------------------------------------------------------------------------------

def test_outputs_give_access_and_addresses(default_run):
    out = default_run.outputs
    assert out["apiEndpoint"].startswith("https://") and out["apiEndpoint"].endswith(".amazonaws.com:6443")
    assert out["caCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert out["nodes"]["workers"]["worker-0"] == {"privateIp": "10.43.0.30", "publicIp": out["nodes"]["workers"]
                                                   ["worker-0"]["publicIp"]}
    assert out["nodes"]["workers"]["worker-0"]["publicIp"].startswith("203.0.113.")
    assert "Host worker-2\n  HostName 203.0.113." in out["sshConfig"]


def test_bad_settings_stop_the_program_before_any_resource():
    from simulator import program
    mocks = program.ClusterMocks()
    with pytest.raises(SettingsError, match="setting 'etcd.count' = 2 is invalid"):
        run_program(config(etcd=2), mocks=mocks)
    assert mocks.calls == []


def test_missing_admin_cidrs_is_refused():
    with pytest.raises(SettingsError, match="setting 'adminCidrs' is required"):
        run_program({})
