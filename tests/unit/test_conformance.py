"""The conformance tooling's pure parts: the suite's JUnit report read into a summary, the progress lines, the ginkgo
command, the build's ginkgo pin and the image table (locallab/conformance.py, locallab/conformance_images.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locallab import build, conformance, conformance_images
from locallab.netns import Lab

# The shape of test/e2e/framework/internal/junit (OmitFailureMessageAttr: the failure text is the element's body).
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="7" disabled="1" errors="0" failures="2" time="321.5">
  <testsuite name="Kubernetes e2e suite" tests="7" skipped="3" failures="2" time="321.5">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for services [Conformance]" status="passed" time="40">
    </testcase>
    <testcase name="[It] [sig-api-machinery] AdmissionWebhook should mutate configmap [Conformance]"
              status="failed" time="35">
      <failure message="" type="failed">[FAILED] waiting for webhook configuration to be ready: timed out
In [BeforeEach] at: k8s.io/kubernetes@v1.37.2/test/e2e/apimachinery/webhook.go:1234 @ 12/07/26 08:01:02.345
</failure>
    </testcase>
    <testcase name="[It] [sig-node] ImageVolume should succeed [Conformance]" status="failed" time="3">
      <failure message="" type="failed">[FAILED] Expected
    &lt;string&gt;: PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
    NAME="Debian GNU/Linux"
to contain substring
    &lt;string&gt;: Alpine Linux
In [It] at: k8s.io/kubernetes@v1.37.2/test/e2e/common/node/image_volume.go:87 @ 12/07/26 09:13:35.403
</failure>
    </testcase>
    <testcase name="[It] [sig-node] Pods should run on a windows node" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-storage] Volume should work with the provider [Conformance]" status="skipped" time="0">
      <skipped message="skipped - Only supported for providers [gce] (not skeleton)"></skipped>
    </testcase>
    <testcase name="[It] [sig-apps] Job should be pending" status="pending" time="0">
      <skipped message="pending"></skipped>
    </testcase>
    <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" status="failed" time="0">
      <failure message="" type="failed">

  [FAILED] could not write the report
In [ReportAfterSuite] at: k8s.io/kubernetes@v1.37.2/test/e2e/e2e_test.go:157 @ 12/07/26 09:20:00.000
</failure>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_the_summary_counts_selected_specs_and_names_each_failure_with_its_first_line(tmp_path):
    (tmp_path / "junit_01.xml").write_text(JUNIT)
    summary = conformance.read_junit(tmp_path / "junit_01.xml")
    assert (summary.passed, summary.failed, summary.skipped) == (1, 3, 1)
    assert (summary.selected, summary.total, summary.seconds) == (4, 6, 321.5)
    assert [(f.name, f.first_line) for f in summary.failures] == [
        ("[sig-api-machinery] AdmissionWebhook should mutate configmap [Conformance]",
         "waiting for webhook configuration to be ready: timed out"),
        ("[sig-node] ImageVolume should succeed [Conformance]",
         'Expected <string>: PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'),
        ("[ReportAfterSuite] Kubernetes e2e suite report", "could not write the report")]
    assert summary.results == {
        "[sig-network] DNS should provide DNS for services [Conformance]": "passed",
        "[sig-api-machinery] AdmissionWebhook should mutate configmap [Conformance]": "failed",
        "[sig-node] ImageVolume should succeed [Conformance]": "failed",
        "[sig-storage] Volume should work with the provider [Conformance]": "skipped"}
    assert summary.text().splitlines()[0] == "1 passed, 3 failed, 1 skipped (4 of 6 specs selected; 322s)"
    assert "FAILED [sig-api-machinery] AdmissionWebhook should mutate configmap [Conformance]" in summary.text()


# What ginkgo -v prints, in part (--no-color): the count, suite nodes, and each finished spec's block.
GINKGO_OUTPUT = """Will run 19 of 3206 specs
Running in parallel across 2 processes
------------------------------
[SynchronizedBeforeSuite] PASSED [0.037 seconds]
[SynchronizedBeforeSuite]
SSSSSSSSSSSSSSSSSSSS
------------------------------
• [18.460 seconds]
[sig-network] Services should serve a basic endpoint from pods [Conformance] [sig-network, Conformance]
k8s.io/kubernetes@v1.37.2/test/e2e/network/service.go:733

  Timeline >>
  STEP: Creating a kubernetes client @ 12/07/26 08:16:36.913
  << Timeline
------------------------------
• [FAILED] [152.101 seconds]
[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server [Conformance]
------------------------------
↺ [FLAKEY TEST - TOOK 2 ATTEMPTS TO PASS] [30.000 seconds]
[sig-node] Pods should be updated [Conformance]
------------------------------
S [SKIPPED] [0.001 seconds]
[sig-storage] Volumes should work with the provider [Conformance]
"""


def test_a_progress_line_per_finished_spec_from_ginkgos_output(capsys):
    progress = conformance._Progress()
    for line in GINKGO_OUTPUT.splitlines(keepends=True):
        progress.read(line)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[   1/19 0 failed ") and lines[0].endswith(
        "] passed [sig-network] Services should serve a basic endpoint from pods [Conformance] "
        "[sig-network, Conformance]")
    assert lines[1].startswith("[   2/19 1 failed ") and "] failed [sig-api-machinery] Aggregator" in lines[1]
    assert lines[2].startswith("[   3/19 1 failed ") and "] passed [sig-node] Pods should be updated" in lines[2]
    assert lines[3].startswith("[   4/19 1 failed ") and "] skipped [sig-storage] Volumes" in lines[3]


def test_ginkgo_runs_the_prebuilt_e2e_test_against_the_labs_kubeconfig_with_reports_in_the_report_dir(tmp_path):
    target = conformance.Target(Lab("lab", hosts={"deployer": "k8sfs-lab-deployer"}),
                                Path("/run/lab/admin.kubeconfig"), Path("/cache/kubernetes/bin/kubectl"), {})
    command = conformance.ginkgo_command(Path("/cache/conformance"), target, tmp_path, focus=r"\[Conformance\]",
                                         skip=r"\[Serial\]", procs=3)
    split = command.index("--")
    assert command[0] == "/cache/conformance/bin/ginkgo" and command[split - 1] == "/cache/conformance/bin/e2e.test"
    assert {"--procs=3", "--timeout=24h", r"--focus=\[Conformance\]", r"--skip=\[Serial\]"} <= set(command[:split])
    assert {"--provider=skeleton", "--kubeconfig=/run/lab/admin.kubeconfig",
            "--kubectl-path=/cache/kubernetes/bin/kubectl", f"--report-dir={tmp_path}"} <= set(command[split:])
    no_skip = conformance.ginkgo_command(Path("/c"), target, tmp_path, focus="x", skip=None, procs=1)
    assert not any(a.startswith("--skip") for a in no_skip)


def test_the_target_is_read_from_the_labs_saved_state(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({
        "tag": "lab", "namespaces": {"deployer": "k8sfs-lab-deployer"}, "addresses": {"deployer": "10.43.0.4"},
        "kubectl": "/cache/kubernetes/bin/kubectl", "build": {"groups": {"etcd": "/cache/etcd"}}}))
    target = conformance.Target.of(tmp_path)
    assert target.lab.hosts == {"deployer": "k8sfs-lab-deployer"} and target.kubeconfig == tmp_path / "admin.kubeconfig"
    assert target.lab_binary("etcd", "etcd") == Path("/cache/etcd/bin/etcd")


def test_ginkgo_is_built_at_the_version_the_release_pins():
    gomod = ("module k8s.io/kubernetes\n\nrequire (\n\tgithub.com/onsi/ginkgo/v2 v2.32.0\n"
             "\tgithub.com/onsi/gomega v1.40.0\n)\n")
    assert conformance.ginkgo_version(gomod) == "v2.32.0"
    with pytest.raises(build.BuildError, match="no github.com/onsi/ginkgo/v2 requirement"):
        conformance.ginkgo_version("module x\n")


def test_the_conformance_group_has_a_key_of_its_own_and_the_lab_groups_keep_theirs():
    key = build.build_key("conformance", "1.37.2", "go1.26.8", "amd64", conformance.RECIPE)
    assert key != build.build_key("conformance", "1.37.3", "go1.26.8", "amd64", conformance.RECIPE)
    assert key != build.build_key("conformance", "1.37.2", "go1.26.8", "amd64", {**conformance.RECIPE, "revision": 2})
    assert build.build_key("kubernetes", "1.37.2", "go1.26.8", "amd64") == \
        build.build_key("kubernetes", "1.37.2", "go1.26.8", "amd64", build.RECIPES["kubernetes"])
    assert "conformance" not in build.BUILDERS     # ./lab up does not build it


def test_each_image_is_pushed_under_its_e2e_reference_without_the_registry_host():
    images = {name: type("Built", (), {"layout": Path(f"/cache/{name}")})() for name in conformance_images.REFERENCES}
    targets = dict(t.split("=", 1) for t in conformance_images.push_targets(images))
    assert targets["/cache/agnhost"] == "e2e-test-images/agnhost:2.66.1"
    assert targets["/cache/agnhost-prev"] == "e2e-test-images/agnhost:2.55"
    assert targets["/cache/etcd"] == "etcd:3.7.0-0" and targets["/cache/pause"] == "pause:3.10.2"
    assert all(r.startswith("registry.k8s.io/") for r in conformance_images.REFERENCES.values())


def test_busybox_takes_the_official_images_configuration_over_defconfig(tmp_path):
    from locallab import busybox
    config = tmp_path / ".config"
    config.write_text("# CONFIG_AR is not set\nCONFIG_FEATURE_SYNC_FANCY=y\nCONFIG_LAST_SUPPORTED_WCHAR=767\n"
                      "# CONFIG_STATIC is not set\nCONFIG_ASH=y\n")
    busybox._configure(config)
    lines = config.read_text().splitlines()
    assert lines[:5] == ["CONFIG_AR=y", "# CONFIG_FEATURE_SYNC_FANCY is not set", "CONFIG_LAST_SUPPORTED_WCHAR=0",
                         "CONFIG_STATIC=y", "CONFIG_ASH=y"]
    assert set(busybox.SET) <= set(lines)      # the ones defconfig does not name are added
    # The release tarball from Debian's archive is busybox.net's own: the sha256 the official image's build checks.
    assert busybox.SOURCE["url"].endswith(f"/pool/main/b/busybox/busybox_{busybox.VERSION}.orig.tar.bz2")
