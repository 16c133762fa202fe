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


def test_every_group_builds_the_version_the_program_pins_unless_the_environment_names_another(monkeypatch):
    from cluster.versions import DEFAULT_VERSIONS, IMAGES
    for group in build.BUILDERS:
        monkeypatch.delenv(f"K8S_FROM_SCRATCH_LAB_{group.replace('-', '_').upper()}", raising=False)
    pinned = build.BuildVersions.pinned()
    assert pinned.program_versions() == DEFAULT_VERSIONS
    assert IMAGES["coredns"].endswith(f":v{pinned.coredns}")
    assert IMAGES["metrics-server"].endswith(f":v{pinned.metrics_server}")
    assert set(build.BUILDERS) == set(DEFAULT_VERSIONS) | {"coredns", "metrics-server"}
    monkeypatch.setenv("K8S_FROM_SCRATCH_LAB_CNI_PLUGINS", "1.9.2")
    assert build.BuildVersions.pinned().of("cni-plugins") == "1.9.2"
    assert build.BuildVersions.pinned().program_versions()["containerd"] == DEFAULT_VERSIONS["containerd"]


def test_a_lab_state_saved_before_the_worker_groups_still_loads():
    old_state = {"kubernetes": "1.37.2", "etcd": "3.6.14"}
    assert build.BuildVersions(**old_state).runc == build.PROGRAM_PINS["runc"]


def test_the_build_makes_every_binary_the_program_installs_under_its_installed_name():
    from cluster.versions import COMPONENTS
    built = set(build.KUBERNETES_COMMANDS) | set(build.ETCD_COMMANDS)
    built |= {name for recipe in build.WORKER_RECIPES.values() for name in recipe["commands"]}
    installed = {dest.rsplit("/", 1)[-1] for c in COMPONENTS.values() for _, dest in c.installs}
    assert installed <= built, installed - built
    assert "coredns" in built


def test_each_worker_group_has_a_cache_key_of_its_own_that_follows_its_release_commit(monkeypatch):
    keys = {g: build.build_key(g, build.PROGRAM_PINS[g], "go1.26.8", "amd64") for g in build.BUILDERS}
    assert len(set(keys.values())) == len(keys)
    monkeypatch.setitem(build.RELEASE_COMMITS, "runc", {build.PROGRAM_PINS["runc"]: "0" * 40})
    assert build.build_key("runc", build.PROGRAM_PINS["runc"], "go1.26.8", "amd64") != keys["runc"]
    assert build.build_key("containerd", build.PROGRAM_PINS["containerd"], "go1.26.8", "amd64") == keys["containerd"]


def test_release_stamps_follow_the_upstream_build_and_drop_an_unknown_commit():
    runc = build.worker_ldflags("runc", "1.4.3")
    assert "-linkmode external -extldflags -static-pie" in runc
    assert "-X 'main.gitCommit=v1.4.3-0-gbb14dabeb'" in runc
    assert "main.gitCommit" not in build.worker_ldflags("runc", "1.4.99")
    containerd = build.worker_ldflags("containerd", "2.3.4")
    assert "-X 'github.com/containerd/containerd/v2/version.Version=v2.3.4'" in containerd
    assert "version.Revision=db8809540e1a7a9da5d518876894933ff55692ab'" in containerd
    assert "coremain.GitCommit=424d125'" in build.worker_ldflags("coredns", "1.14.6")
    assert build.worker_ldflags("metrics-server", "0.9.0").split(" -X ") == [
        "-w", "'k8s.io/client-go/pkg/version.gitVersion=v0.9.0'",
        "'k8s.io/client-go/pkg/version.gitCommit=2a7c4b2c7d46552ff47f4aeaa3a735c582587ecd'"]
    assert "pkg/version.Version=1.37.0'" in build.worker_ldflags("crictl", "1.37.0")
    assert "buildversion.BuildVersion=v1.9.1'" in build.worker_ldflags("cni-plugins", "1.9.1")
