"""Everything a node receives, checked by the real consumer: shellcheck, systemd-analyze, parsers, haproxy,
the kubernetes client."""

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from cluster.render import control_plane
from cluster.render.workers import cni, containerd, haproxy, kube_proxy, kubelet
from tests.render import sample

needs = lambda tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


@needs("shellcheck")
@pytest.mark.parametrize("name", sorted(sample.scripts()))
def test_every_script_passes_shellcheck(name, tmp_path):
    script = tmp_path / f"{name}.sh"
    script.write_text(sample.scripts()[name])
    result = subprocess.run(["shellcheck", "--shell=bash", "--severity=style", str(script)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs("systemd-analyze")
@pytest.mark.parametrize("name", sorted(sample.units()))
def test_every_unit_passes_systemd_analyze_verify(name, tmp_path):
    """Binaries are not installed on the test machine: ExecStart paths are pointed at stubs, nothing else changes.
    All units sit in one folder, so a unit's dependencies on its siblings (kubelet on containerd) are checked."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    units = tmp_path / "units"
    units.mkdir()
    for unit_name, text in sample.units().items():
        for binary in set(re.findall(r"/usr/local/s?bin/([\w.-]+)", text)):
            (stubs / binary).write_text("#!/bin/sh\n")
            (stubs / binary).chmod(0o755)
        text = re.sub(r"/usr/local/s?bin/", f"{stubs}/", text)
        (units / f"{unit_name}.service").write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(units / f"{name}.service")], capture_output=True,
                            text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_units_start_the_installed_binaries_with_every_flag_on_its_own_line():
    for name, text in sample.units().items():
        command = text.split("ExecStart=", 1)[1].split("\n")
        lines = [command[0]]
        while lines[-1].endswith("\\"):
            lines.append(command[len(lines)])
        assert lines[0].startswith(("/usr/local/bin/", "/usr/local/sbin/")), name
        assert all(line.strip().startswith("--") for line in lines[1:]), name


def test_yaml_and_json_configs_parse_into_the_expected_kinds():
    cp = sample.control_plane_inputs()
    w = sample.worker_inputs()
    docs = {
        "EncryptionConfiguration": control_plane.encryption_config(cp.encryption_key_b64),
        "KubeSchedulerConfiguration": control_plane.scheduler_config(),
        "KubeletConfiguration": kubelet.kubelet_config(w),
        "KubeProxyConfiguration": kube_proxy.kube_proxy_config(w),
    }
    for kind, text in docs.items():
        assert yaml.safe_load(text)["kind"] == kind
    kubelet_doc = yaml.safe_load(docs["KubeletConfiguration"])
    assert kubelet_doc["cgroupDriver"] == "systemd" and kubelet_doc["clusterDNS"] == ["10.32.0.10"]
    assert kubelet_doc["resolvConf"] == "/run/systemd/resolve/resolv.conf" and kubelet_doc["readOnlyPort"] == 0
    assert kubelet_doc["authentication"]["anonymous"]["enabled"] is False
    assert kubelet_doc["authorization"]["mode"] == "Webhook"
    encryption = yaml.safe_load(docs["EncryptionConfiguration"])
    assert list(encryption["resources"][0]["providers"][0]) == ["secretbox"]
    conflist = json.loads(cni.cni_conflist("10.200.1.0/24"))
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.200.1.0/24"}]]
    assert json.loads(cni.cni_template())["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "@POD_CIDR@"}]]


def test_manifests_parse_into_the_expected_objects():
    kinds = [item["kind"] for item in yaml.safe_load(sample.coredns())["items"]]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
                     "PodDisruptionBudget", "Service"]
    service = yaml.safe_load(sample.coredns())["items"][-1]
    assert service["spec"]["clusterIP"] == "10.32.0.10"
    nginx = yaml.safe_load(sample.nginx())["items"]
    assert [i["kind"] for i in nginx] == ["Namespace", "ConfigMap", "Deployment", "Service"]
    assert nginx[3]["spec"]["ports"][0]["nodePort"] == 30080
    from cluster.render.addons import apiserver_to_kubelet_rbac
    rbac = yaml.safe_load(apiserver_to_kubelet_rbac())["items"]
    assert rbac[0]["subjects"][0]["name"] == "kube-apiserver-kubelet-client"


def test_containerd_config_is_version_3_with_systemd_cgroups():
    config = tomllib.loads(containerd.containerd_config("registry.k8s.io/pause:3.10.2"))
    assert config["version"] == 3
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert "conf_template" not in runtime["cni"], "containerd renders a template once only; k8s-cni-config owns it"
    assert runtime["cni"]["bin_dirs"] == ["/opt/cni/bin"]
    assert config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"].startswith("registry.k8s.io/pause")


@needs("haproxy")
def test_node_local_api_proxy_config_is_accepted_by_haproxy(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy.haproxy_config(["10.43.0.20", "10.43.0.21", "10.43.0.22"]))
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cfg.read_text().count("server controller-") == 3


def test_a_stopping_api_server_serves_until_every_workers_haproxy_has_taken_it_out():
    """The API server fails /readyz as soon as it is asked to stop and keeps serving for its shutdown delay; each
    worker's haproxy must notice within it (fall checks `inter` apart, plus one interval for a check just missed)."""
    unit = sample.units()["kube-apiserver"]
    delay = re.search(r"--shutdown-delay-duration=(\d+)s", unit)
    assert delay and int(delay[1]) == control_plane.SHUTDOWN_DELAY_SECONDS
    assert "--shutdown-send-retry-after=true" in unit
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert stop and int(stop[1]) > control_plane.SHUTDOWN_DELAY_SECONDS + 60, "the delay and the request timeout"
    check = re.search(r"default-server inter (\d+)s fall (\d+)", haproxy.haproxy_config(["10.43.0.20"]))
    assert check and int(check[1]) * (int(check[2]) + 1) <= control_plane.SHUTDOWN_DELAY_SECONDS


def kubeconfigs():
    files = sample.all_files()
    return {f.path: f.content for f in files if f.path.endswith("kubeconfig")}


def test_every_kubeconfig_loads_with_the_kubernetes_client(tmp_path):
    from kubernetes import client, config
    found = kubeconfigs()
    assert len(found) == 7  # controller-manager, scheduler, admin, super-admin, deployer, kubelet, kube-proxy
    for path, text in found.items():
        f = tmp_path / Path(path).name
        f.write_text(text)
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(f), client_configuration=configuration)
        assert configuration.host == "https://127.0.0.1:6443", path
        assert Path(configuration.cert_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert "PRIVATE KEY" in Path(configuration.key_file).read_text()


def test_kubeconfig_identity_matches_its_certificate(tmp_path):
    from cryptography import x509
    for path, text in kubeconfigs().items():
        doc = yaml.safe_load(text)
        user = doc["users"][0]["name"]
        import base64
        cert = x509.load_pem_x509_certificate(base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))
        assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == user, path


def test_secret_files_are_private():
    for f in sample.all_files():
        if f.secret:
            assert f.mode == "0600", f.path
        if "PRIVATE KEY" in f.content or "client-key-data" in f.content or "secretbox" in f.content:
            assert f.secret, f.path
