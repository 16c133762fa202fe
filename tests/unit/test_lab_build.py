"""The lab's Go build recipe and its replay rules, without building or booting anything."""

from __future__ import annotations

from locallab import build
from locallab.replay import NOT_BUILT, Step, not_replayed_reason

KUBERNETES_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/streaming => ./staging/src/k8s.io/streaming
)
"""


def test_every_staging_module_the_release_replaces_is_found():
    assert build.staging_modules(KUBERNETES_GOMOD) == ["k8s.io/api", "k8s.io/client-go", "k8s.io/streaming"]


def test_the_wrapper_module_replaces_each_staging_module_with_its_published_version(tmp_path):
    build._write_module(tmp_path, "locallab/kubernetes-build", "1.26.0", {"k8s.io/kubernetes": "v1.37.2"},
                        {"k8s.io/api": "v0.37.2"}, ["k8s.io/kubernetes/cmd/kubectl"])
    gomod = (tmp_path / "go.mod").read_text()
    assert "\tk8s.io/kubernetes v1.37.2" in gomod
    assert "\tk8s.io/api => k8s.io/api v0.37.2" in gomod
    assert "tool (\n\tk8s.io/kubernetes/cmd/kubectl\n)" in gomod


def test_the_cache_key_follows_the_version_the_recipe_and_the_toolchain(monkeypatch):
    key = build.build_key("kubernetes", "1.37.2", "go1.26.8", "amd64")
    assert key == build.build_key("kubernetes", "1.37.2", "go1.26.8", "amd64")
    assert key != build.build_key("kubernetes", "1.37.3", "go1.26.8", "amd64")
    assert key != build.build_key("kubernetes", "1.37.2", "go1.27.3", "amd64")
    assert key != build.build_key("kubernetes", "1.37.2", "go1.26.8", "arm64")
    # Each group has its own key: a new etcd recipe leaves the Kubernetes build alone.
    etcd_key = build.build_key("etcd", "3.6.16", "go1.26.8", "amd64")
    monkeypatch.setitem(build.RECIPES, "etcd", {**build.RECIPES["etcd"], "revision": 99})
    assert build.build_key("etcd", "3.6.16", "go1.26.8", "amd64") != etcd_key
    assert build.build_key("kubernetes", "1.37.2", "go1.26.8", "amd64") == key


def test_the_lab_builds_the_versions_the_program_pins(monkeypatch):
    from cluster.versions import DEFAULT_VERSIONS
    monkeypatch.delenv("K8S_FROM_SCRATCH_LAB_KUBERNETES", raising=False)
    monkeypatch.delenv("K8S_FROM_SCRATCH_LAB_ETCD", raising=False)
    pinned = build.BuildVersions.pinned()
    assert (pinned.kubernetes, pinned.etcd) == (DEFAULT_VERSIONS["kubernetes"], DEFAULT_VERSIONS["etcd"])


def _step(name: str) -> Step:
    return Step(name, f"urn:{name}", "command:remote:Command", "10.43.0.10", "ubuntu", "", "", "", "", set())


def test_an_install_step_is_replayed_exactly_when_the_mirror_serves_its_component():
    served = {"etcd", "kubernetes-server", "kubernetes-node"}
    assert not_replayed_reason(_step("etcd-0-install-etcd"), served) is None
    assert not_replayed_reason(_step("controller-0-install-kubernetes-server"), served) is None
    assert not_replayed_reason(_step("worker-0-install-containerd"), served) == NOT_BUILT.format(
        component="containerd")
