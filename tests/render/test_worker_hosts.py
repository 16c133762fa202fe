"""Workers on hosts that are not the EC2 defaults (settings workers.allowCgroupV1 and workers.systemContainer, which
the local lab sets): exactly the documented deviations, and nothing else, in what such a worker receives."""

from __future__ import annotations

import json
import tomllib

from cluster.render import workers
from cluster.render.workers import kube_proxy, kubelet, node, prepare_os
from tests.render import sample

LAB_HOST = node.NodeHost(allow_cgroup_v1=True, system_container=True)


def files(host: node.NodeHost) -> dict[str, str]:
    inputs = sample.worker_inputs()
    inputs = node.WorkerInputs(**{**inputs.__dict__, "host": host})
    return {f.path: f.content for fs in workers.worker_files(inputs).values() for f in fs}


def test_the_default_host_is_the_ec2_node_and_renders_none_of_the_deviations():
    assert sample.worker_inputs().host == node.NodeHost()
    default = files(node.NodeHost())
    assert "failCgroupV1" not in default[kubelet.KUBELET_CONFIG]
    assert "conntrack" not in default[kube_proxy.KUBE_PROXY_CONFIG]
    assert "restrict_oom_score_adj" not in default["/etc/containerd/config.toml"]
    prep = prepare_os.os_prep_script()
    assert prepare_os.CGROUP_V2_REQUIRED in prep and prepare_os.CGROUP_V1_ALLOWED not in prep


def test_a_system_container_on_cgroup_v1_differs_in_exactly_three_settings_and_the_cgroup_check():
    default, lab = files(node.NodeHost()), files(LAB_HOST)
    assert default.keys() == lab.keys()
    differing = {path for path in default if default[path] != lab[path]}
    assert differing == {kubelet.KUBELET_CONFIG, kube_proxy.KUBE_PROXY_CONFIG, "/etc/containerd/config.toml"}

    kubelet_default, kubelet_lab = json.loads(default[kubelet.KUBELET_CONFIG]), json.loads(lab[kubelet.KUBELET_CONFIG])
    assert kubelet_lab.pop("failCgroupV1") is False
    # A node on its host's disk: fixed disk eviction thresholds, no image garbage collection.
    assert {k: kubelet_lab["evictionHard"].pop(k) for k in ("nodefs.available", "imagefs.available")} == {
        "nodefs.available": "1Gi", "imagefs.available": "1Gi"}
    assert {k: kubelet_default["evictionHard"].pop(k) for k in ("nodefs.available", "imagefs.available")} == {
        "nodefs.available": "10%", "imagefs.available": "15%"}
    assert kubelet_lab.pop("imageGCHighThresholdPercent") == 100 and kubelet_lab.pop("imageGCLowThresholdPercent") == 99
    assert kubelet_lab == kubelet_default
    proxy_default = json.loads(default[kube_proxy.KUBE_PROXY_CONFIG])
    proxy_lab = json.loads(lab[kube_proxy.KUBE_PROXY_CONFIG])
    assert proxy_lab.pop("conntrack") == {"maxPerCore": 0} and proxy_lab == proxy_default

    runtime_default = tomllib.loads(default["/etc/containerd/config.toml"])
    runtime_lab = tomllib.loads(lab["/etc/containerd/config.toml"])
    cri = runtime_lab["plugins"]["io.containerd.cri.v1.runtime"]
    assert cri.pop("restrict_oom_score_adj") is True and runtime_lab == runtime_default

    prep_default, prep_lab = prepare_os.os_prep_script(), prepare_os.os_prep_script(LAB_HOST)
    assert prep_lab.replace(prepare_os.CGROUP_V1_ALLOWED, prepare_os.CGROUP_V2_REQUIRED).replace(
        "cgroup v1 or v2,", "cgroup v2,") == prep_default


def test_each_setting_brings_only_its_own_deviations():
    only_v1, only_container = files(node.NodeHost(allow_cgroup_v1=True)), files(node.NodeHost(system_container=True))
    assert "failCgroupV1" in only_v1[kubelet.KUBELET_CONFIG]
    assert "conntrack" not in only_v1[kube_proxy.KUBE_PROXY_CONFIG]
    assert "restrict_oom_score_adj" not in only_v1["/etc/containerd/config.toml"]
    assert "failCgroupV1" not in only_container[kubelet.KUBELET_CONFIG]
    assert "imageGCHighThresholdPercent" not in only_v1[kubelet.KUBELET_CONFIG]
    assert "imageGCHighThresholdPercent" in only_container[kubelet.KUBELET_CONFIG]
    assert "conntrack" in only_container[kube_proxy.KUBE_PROXY_CONFIG]
    assert "restrict_oom_score_adj = true" in only_container["/etc/containerd/config.toml"]
    assert prepare_os.CGROUP_V2_REQUIRED in prepare_os.os_prep_script(node.NodeHost(system_container=True))
