"""The worker settings for hosts that are not EC2 VMs (workers.allowCgroupV1, workers.systemContainer) reach what
every worker receives, through the whole program under mocks; a stack without them gets the EC2 files."""

from __future__ import annotations

import base64
import json
import re
import tomllib

from cluster.render.workers import kube_proxy, kubelet, node, prepare_os
import pytest

from simulator.program import ClusterMocks, run_program, stack_config


def worker_files(run, name: str) -> dict[str, str]:
    script = run.named(f"{name}-worker-files").inputs["stdin"]
    found = re.findall(r"mktemp (\S+)\.XXXXXX\)\nbase64 -d > \"\$tmp\" <<'K8S_FROM_SCRATCH_EOF'\n(\S+)\n", script)
    return {path: base64.b64decode(content).decode() for path, content in found}


def test_a_cgroup_v1_system_container_stack_gives_every_worker_the_three_deviations_and_its_prepare_os():
    run = run_program({**stack_config(1, 1, 2), "workers": {"count": 2, "allowCgroupV1": True, "systemContainer": True}},
                      lab_machines=True)
    for name in ("worker-0", "worker-1"):
        files = worker_files(run, name)
        assert json.loads(files[kubelet.KUBELET_CONFIG])["failCgroupV1"] is False
        assert json.loads(files[kube_proxy.KUBE_PROXY_CONFIG])["conntrack"] == {"maxPerCore": 0}
        runtime = tomllib.loads(files["/etc/containerd/config.toml"])["plugins"]["io.containerd.cri.v1.runtime"]
        assert runtime["restrict_oom_score_adj"] is True
        prep = run.named(f"{name}-prepare-os")
        assert prepare_os.CGROUP_V1_ALLOWED in prep.inputs["stdin"]
        assert prep.inputs["triggers"][0] == prepare_os.os_prep_script(node.NodeHost(True, True))


def test_a_stack_without_them_gives_workers_the_ec2_files():
    run = run_program(stack_config(1, 1, 1))
    files = worker_files(run, "worker-0")
    assert "failCgroupV1" not in files[kubelet.KUBELET_CONFIG]
    assert "conntrack" not in files[kube_proxy.KUBE_PROXY_CONFIG]
    assert "restrict_oom_score_adj" not in files["/etc/containerd/config.toml"]
    assert run.named("worker-0-prepare-os").inputs["stdin"] == prepare_os.os_prep_script()


def test_n17_an_ec2_stack_cannot_be_given_the_lab_machines_settings():
    """Review r2 N17: outside the lab, the two keys are refused by name, before anything is declared."""
    for key in ("allowCgroupV1", "systemContainer"):
        mocks = ClusterMocks()
        with pytest.raises(Exception, match=rf"setting 'workers.{key}' = True is invalid: it describes the local "
                                            r"lab's machines .* Remove it from the stack"):
            run_program({**stack_config(1, 1, 1), "workers": {"count": 1, key: True}}, mocks=mocks)
        assert mocks.calls == []
