"""Node bootstrap under mocks: the remote steps each host gets, their order, their secrecy and their triggers."""

import base64
import re

import pytest
import yaml

from cluster.remote import run_command
from simulator.program import ClusterMocks, run_program, stack_config

REMOTE = "command:remote:Command"

ETCD_STEPS = {"ready", "time-sync", "etcd-user", "etcd-files", "install-etcd", "start-etcd", "etcd-snapshots"}
CONTROLLER_STEPS = {"ready", "time-sync", "control-plane-files", "install-kubernetes-server", "start-kube-apiserver",
                    "start-kube-controller-manager", "start-kube-scheduler", "apiserver-ready"}
WORKER_STEPS = {"ready", "time-sync", "prepare-os", "worker-files", "install-containerd", "install-runc", "install-cni-plugins",
                "install-crictl", "install-kubernetes-node", "start-haproxy", "start-containerd", "start-kubelet",
                "start-kube-proxy", "start-k8s-cni-config", "node-ready", "read-pod-cidr", "pod-network"}
# Cluster-wide steps, run once from the first controller.
CLUSTER_STEPS = {"apply-rbac", "apply-coredns", "dns-check", "apply-metrics-server", "metrics-check", "apply-nginx",
                 "nginx-rollout"}


config = stack_config


@pytest.fixture(scope="module")
def run():
    return run_program(config())


def steps_by_host(run):
    hosts: dict[str, set[str]] = {}
    for c in run.of_type(REMOTE):
        host, step = re.match(r"^((?:etcd|controller|worker)-\d+)-(.+)$", c.name).groups()
        hosts.setdefault(host, set()).add(step)
    return hosts


@pytest.mark.parametrize("size", [(1, 1, 1), (3, 3, 3), (5, 3, 10)])
def test_each_host_gets_its_gate_and_its_role_steps(size):
    etcd, controllers, workers = size
    hosts = steps_by_host(run_program(config(*size)))
    assert set(hosts) == {f"etcd-{i}" for i in range(etcd)} | {f"controller-{i}" for i in range(controllers)} | \
        {f"worker-{i}" for i in range(workers)}
    for host, steps in hosts.items():
        if host.startswith("etcd"):
            # etcd-0 also holds the membership of every other member (its removal runs there when one leaves)
            on_first = {"etcd-health", *(f"membership-etcd-{i}" for i in range(1, etcd))}
            assert steps == ETCD_STEPS | (on_first if host == "etcd-0" else set()), host
        elif host.startswith("controller"):
            # controller-0 also drains, uncordons and removes every worker (cluster/render/rollout.py)
            per_worker = {f"{s}-worker-{i}" for s in ("drain", "uncordon", "remove") for i in range(workers)}
            assert steps == CONTROLLER_STEPS | (CLUSTER_STEPS | per_worker if host == "controller-0" else set()), host
        else:
            assert steps == WORKER_STEPS, host


def test_every_step_depends_on_its_own_hosts_gate_and_is_deleted_with_its_instance(run):
    commands = {c.name: c for c in run.of_type(REMOTE)}
    instances = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r.urn for r in
                 run.of_type("aws:ec2/instance:Instance")}
    vpc = run.of_type("aws:ec2/vpc:Vpc")[0].urn
    for name, c in commands.items():
        host = re.match(r"^((?:etcd|controller|worker)-\d+)-", name).group(1)
        # Steps whose delete removes another node from the cluster go with the VPC only (review D9, D12).
        removal = re.search(r"-(membership-etcd|remove-worker)-\d+$", name)
        assert c.deleted_with == (vpc if removal else instances[host]), name
        if name == f"{host}-ready":
            assert c.custom_timeouts.get("create"), "the gate is bounded"
            continue
        assert c.depends_on_urn(commands[f"{host}-ready"].urn), f"{name} does not wait for {host}-ready"
        for other in commands.values():
            other_host = re.match(r"^((?:etcd|controller|worker)-\d+)-", other.name).group(1)
            if other.name.endswith("-ready") and other.name == f"{other_host}-ready" and other_host != host:
                assert not c.depends_on_urn(other.urn), f"{name} waits for another host's gate {other.name}"


def test_connections_use_the_nodes_public_address_and_a_bounded_dial(run):
    public = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r.outputs["publicIp"]
              for r in run.of_type("aws:ec2/instance:Instance")}
    for c in run.of_type(REMOTE):
        host = re.match(r"^((?:etcd|controller|worker)-\d+)-", c.name).group(1)
        conn = c.inputs["connection"]
        assert conn["host"] == public[host] and conn["user"] == "ubuntu"
        assert conn["dialErrorLimit"] > 0 and conn["perDialTimeout"] > 0
        assert "BEGIN OPENSSH PRIVATE KEY" in conn["privateKey"] and "connection" in c.secret_inputs


def _decoded_payloads(script: str) -> str:
    """The script plus every base64 block it carries, decoded: what actually lands on the node."""
    blocks = re.findall(r"<<'K8S_FROM_SCRATCH_EOF'\n([A-Za-z0-9+/=\n]+?)\nK8S_FROM_SCRATCH_EOF", script)
    return script + "".join(base64.b64decode(b).decode(errors="replace") for b in blocks)


SECRET_MARKERS = ("PRIVATE KEY", "client-key-data", "secretbox")


def test_no_command_line_holds_a_value_and_secret_payloads_travel_only_as_secret_stdin(run):
    carrying = 0
    for c in run.of_type(REMOTE):
        host, step = re.match(r"^((?:etcd|controller|worker)-\d+)-(.+)$", c.name).groups()
        seconds = int(re.match(r"^sudo timeout --kill-after=30 (\d+) bash -s ", c.inputs["create"]).group(1))
        assert c.inputs["create"] == run_command(host, step, seconds), c.name
        assert "environment" not in c.inputs
        if step.startswith(("membership-", "remove-worker-")):
            # the delete-time commands (member remove, drain and delete a node) carry names, addresses and paths,
            # never a value
            assert not any(marker in c.inputs["delete"] for marker in SECRET_MARKERS), c.name
        else:
            assert "delete" not in c.inputs, c.name
        payload = _decoded_payloads(c.inputs.get("stdin", ""))
        if any(marker in payload for marker in SECRET_MARKERS):
            carrying += 1
            assert "stdin" in c.secret_inputs, f"{c.name} sends secrets in a plain stdin"
            assert c.inputs["logging"] == "none", f"{c.name} carries secrets with logging on"
        if "stdin" in c.secret_inputs:
            assert c.inputs["logging"] == "none", c.name
    assert carrying == 3 + 3 + 3 + 1  # the files step of every host, and metrics-server's (its serving key)


def test_secret_files_reach_nodes_with_private_modes(run):
    script = run.named("controller-0-control-plane-files").inputs["stdin"]
    for path in ("/etc/kubernetes/pki/kube-apiserver.key", "/etc/kubernetes/encryption-config.yaml",
                 "/etc/kubernetes/admin.kubeconfig", "/etc/kubernetes/pki/service-account.key"):
        block = script.split(f"mktemp {path}.XXXXXX", 1)[1].split("fi\n", 1)[0]
        assert "chmod 0600" in block, path


def test_control_plane_talks_to_every_etcd_member_and_assigns_pod_ranges(run):
    stdin = _decoded_payloads(run.named("controller-1-control-plane-files").inputs["stdin"])
    assert "--etcd-servers=https://10.43.0.10:2379,https://10.43.0.11:2379,https://10.43.0.12:2379" in stdin
    assert "--advertise-address=10.43.0.21" in stdin
    assert "--service-cluster-ip-range=10.32.0.0/24" in stdin
    assert "--allocate-node-cidrs=true" in stdin and "--cluster-cidr=10.200.0.0/16" in stdin
    assert "--authorization-mode=Node,RBAC" in stdin and "--enable-admission-plugins=NodeRestriction," in stdin


def test_workers_reach_the_api_through_their_local_proxy_over_every_controller(run):
    stdin = _decoded_payloads(run.named("worker-2-worker-files").inputs["stdin"])
    for ip in ("10.43.0.20", "10.43.0.21", "10.43.0.22"):
        assert f"{ip}:6443 check" in stdin
    assert '"server": "https://127.0.0.1:6443"' in stdin
    assert "--node-ip=10.43.0.32" in stdin and "--hostname-override" not in stdin
    assert "elb" not in stdin, "nodes must not depend on the load balancer"


def test_ordering_etcd_then_control_plane_then_node_checks_while_workers_install_in_parallel(run):
    by_name = {c.name: c for c in run.of_type(REMOTE)}
    health = by_name["etcd-0-etcd-health"]
    assert all(health.depends_on_urn(by_name[f"etcd-{i}-start-etcd"].urn) for i in range(3))
    for i in range(3):
        assert by_name[f"controller-{i}-start-kube-apiserver"].depends_on_urn(health.urn)
    rbac = by_name["controller-0-apply-rbac"]
    assert all(rbac.depends_on_urn(by_name[f"controller-{i}-apiserver-ready"].urn) for i in range(3))
    for i in range(3):
        ready = by_name[f"worker-{i}-node-ready"]
        assert ready.depends_on_urn(rbac.urn)
        # Installing and starting a worker waits for nothing of the control plane, nor any other worker.
        for step in ("prepare-os", "install-containerd", "start-containerd", "start-kubelet"):
            deps = set(by_name[f"worker-{i}-{step}"].dependencies)
            assert not any(by_name[n].urn in deps for n in by_name if not n.startswith(f"worker-{i}-")), step


def test_load_balancer_check_runs_beside_the_workers_not_before_them(run):
    check = run.of_type("command:local:Command")[0]
    by_name = {c.name: c for c in run.of_type(REMOTE)}
    assert all(check.depends_on_urn(by_name[f"controller-{i}-apiserver-ready"].urn) for i in range(3))
    assert "/readyz" in check.inputs["stdin"] and ".elb." in check.inputs["stdin"]
    for c in by_name.values():
        assert not c.depends_on_urn(check.urn), f"{c.name} waits for the load balancer"


def test_admin_kubeconfig_is_a_secret_pointing_at_the_load_balancer(run):
    assert "kubeconfig" in run.secret_outputs
    doc = yaml.safe_load(run.outputs["kubeconfig"])
    assert doc["clusters"][0]["cluster"]["server"] == run.outputs["apiEndpoint"]
    assert doc["users"][0]["name"] == "admin"


def _kubeconfig_identity(text: str) -> tuple[str, list[str]]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    doc = yaml.safe_load(text)
    cert = x509.load_pem_x509_certificate(base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))
    return (cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])


def test_the_exported_admin_is_not_system_masters_and_break_glass_is_its_own_secret_output(run):
    """CIS 5.1.7 / 3.1.1: the everyday kubeconfig is a group bound by RBAC; system:masters only in the break-glass
    output, which a stack asks for (review r2 N11)."""
    assert _kubeconfig_identity(run.outputs["kubeconfig"]) == ("admin", ["k8s-from-scratch:cluster-admins"])
    assert "superAdminKubeconfig" not in run.outputs
    run = run_program({**config(), "exportSuperAdminKubeconfig": True})
    assert "superAdminKubeconfig" in run.secret_outputs
    super_admin = run.outputs["superAdminKubeconfig"]
    assert _kubeconfig_identity(super_admin) == ("super-admin", ["system:masters"])
    assert yaml.safe_load(super_admin)["clusters"][0]["cluster"]["server"] == run.outputs["apiEndpoint"]


def test_only_the_rbac_step_runs_as_the_break_glass_identity(run):
    """The admin group has no rights before the binding exists: binding it needs system:masters; nothing else does."""
    runs_kubectl_as = lambda who: re.compile(rf"--kubeconfig'?,? '?/etc/kubernetes/{who}\.kubeconfig")
    as_super_admin = {c.name for c in run.of_type(REMOTE) if runs_kubectl_as("super-admin").search(c.inputs["stdin"])}
    assert as_super_admin == {"controller-0-apply-rbac"}
    rbac = run.named("controller-0-apply-rbac").inputs["stdin"]
    assert '"name": "k8s-from-scratch:cluster-admins"' in rbac and '"name": "cluster-admin"' in rbac
    for name in ("apply-coredns", "dns-check"):
        assert runs_kubectl_as("deployer").search(run.named(f"controller-0-{name}").inputs["stdin"]), name


def test_encryption_key_is_one_stable_random_resource(run):
    keys = run.of_type("random:index/randomBytes:RandomBytes")
    assert len(keys) == 1 and keys[0].inputs["length"] == 32


def triggers(run):
    return {c.name: c.inputs.get("triggers") for c in run.of_type(REMOTE)}


CONTAINERD_2_3_3 = {"version": "2.3.3", "sha256": {
    "amd64": "ebf6e710056312628eaf6fb4a1c32f0a4ae5f812568321be4029389d66fc7c7c",
    "arm64": "9cc708f13c31588a2fbdbd13553d963356e990d50e9b95a2d6120f4ff2067910"}}
ETCD_3_6_13 = {"version": "3.6.13", "sha256": {
    "amd64": "b4928654aed84d90952620c7144555e4186d795e1e7414e65fe0cf6265fd0465",
    "arm64": "5ab53ff70301fa9d782fa4b59fdfc1fae49ffdf427a0afb3cd313a93449800fc"}}
# A mirror's own build of Kubernetes: the override brings the sums of both tarballs.
KUBERNETES_MIRROR_BUILD = {"version": "1.37.2-mirror.1",
                           "kubernetes-server": {"sha512": {"amd64": "ab" * 64}},
                           "kubernetes-node": {"sha512": {"amd64": "cd" * 64}}}


# containerd and the kubelet run the pods: a new version of either drains each worker before and uncordons it after
DRAINS = {f"controller-0-{s}-worker-{i}" for i in range(3) for s in ("drain", "uncordon")}


@pytest.mark.parametrize("component, override, steps", [
    ("containerd", CONTAINERD_2_3_3, {f"worker-{i}-{s}" for i in range(3)
                                      for s in ("install-containerd", "start-containerd")} | DRAINS),
    ("etcd", ETCD_3_6_13, {f"etcd-{i}-{s}" for i in range(3) for s in ("install-etcd", "start-etcd")}),
    ("kubernetes", KUBERNETES_MIRROR_BUILD,
     {f"controller-{i}-{s}" for i in range(3) for s in ("install-kubernetes-server", "start-kube-apiserver",
                                                         "start-kube-controller-manager", "start-kube-scheduler")}
     | {f"worker-{i}-{s}" for i in range(3) for s in ("install-kubernetes-node", "start-kubelet",
                                                      "start-kube-proxy")} | DRAINS),
])
def test_bumping_one_version_changes_exactly_the_steps_that_install_it(component, override, steps):
    shared = {}
    before = triggers(run_program(config(), mocks=ClusterMocks(key_material=shared)))
    after = triggers(run_program(config(versions={component: override}), mocks=ClusterMocks(key_material=shared)))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == steps


def test_a_second_run_with_the_same_inputs_changes_no_trigger():
    shared = {}
    first = triggers(run_program(config(), mocks=ClusterMocks(key_material=shared)))
    second = triggers(run_program(config(), mocks=ClusterMocks(key_material=shared)))
    assert first == second


def test_a_mirror_serves_every_artifact_under_the_upstream_paths():
    run = run_program(config(1, 1, 1, downloadBaseUrl="https://mirror.example.internal/k8s"))
    installs = [c for c in run.of_type(REMOTE) if "-install-" in c.name]
    assert installs
    for c in installs:
        url = re.search(r"^url=(\S+)$", c.inputs["stdin"], re.M).group(1)
        assert url.startswith("https://mirror.example.internal/k8s/"), url
        assert re.search(r"/(dl\.k8s\.io|github\.com)/", url)


def test_admin_kubeconfig_output_loads_with_the_kubernetes_client(run, tmp_path):
    from kubernetes import client, config as kube_config
    path = tmp_path / "kubeconfig"
    path.write_text(run.outputs["kubeconfig"])
    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == run.outputs["apiEndpoint"]
    assert open(configuration.ssl_ca_cert).read() == run.outputs["caCertificate"]


def test_private_topology_reaches_every_node_through_the_bastion():
    run = run_program(config(1, 1, 2, topology="private"))
    bastion = next(r for r in run.of_type("aws:ec2/instance:Instance") if r.inputs["tags"]["role"] == "bastion")
    private = {r.inputs["tags"]["Name"].removeprefix("k8s-dev-"): r.inputs["privateIp"]
               for r in run.of_type("aws:ec2/instance:Instance")}
    for c in run.of_type(REMOTE):
        host = re.match(r"^((?:etcd|controller|worker)-\d+)-", c.name).group(1)
        conn = c.inputs["connection"]
        assert conn["host"] == private[host], c.name
        assert conn["proxy"]["host"] == bastion.outputs["publicIp"] and conn["proxy"]["user"] == "ubuntu"
        assert "BEGIN OPENSSH PRIVATE KEY" in conn["proxy"]["privateKey"]
