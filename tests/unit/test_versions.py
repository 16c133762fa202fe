"""The pinned releases: every default has publisher sums for both architectures, overrides still work, and the
versions table of docs/architecture.md states what cluster/versions.py pins."""

import re
from pathlib import Path

import pytest

from cluster import versions

ARCHITECTURE_DOC = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
ARCHITECTURES = ("amd64", "arm64")


@pytest.mark.parametrize("component", sorted(versions.COMPONENTS))
def test_every_default_release_has_a_well_formed_sum_per_architecture(component):
    c = versions.COMPONENTS[component]
    pinned = c.checksums[versions.DEFAULT_VERSIONS[c.version_key]]
    assert sorted(pinned) == list(ARCHITECTURES)
    for digest in pinned.values():
        assert versions._is_hex(digest, c.algorithm)


def test_defaults_resolve_to_the_current_releases():
    resolved = versions.resolve_versions({})
    server = versions.artifact("kubernetes-server", resolved, "arm64")
    assert server.url == "https://dl.k8s.io/v1.37.2/kubernetes-server-linux-arm64.tar.gz"
    assert server.algorithm == "sha512" and server.digest.startswith("cd1b134bbc30a3ba")
    crictl = versions.artifact("crictl", resolved, "amd64")
    assert crictl.url.endswith("/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz") and crictl.algorithm == "sha512"
    assert versions.IMAGES["coredns"].endswith(":v1.14.6") and versions.IMAGES["pause"].endswith(":3.10.2")


def test_an_older_pinned_release_is_still_selectable_by_version_alone():
    resolved = versions.resolve_versions({"kubernetes": "1.36.0"})
    node = versions.artifact("kubernetes-node", resolved, "amd64")
    assert node.url == "https://dl.k8s.io/v1.36.0/kubernetes-node-linux-amd64.tar.gz"
    assert node.digest == versions.COMPONENTS["kubernetes-node"].checksums["1.36.0"]["amd64"]


def test_an_override_may_bring_sums_of_another_algorithm_than_the_pins():
    resolved = versions.resolve_versions({"crictl": {"version": "1.36.0", "sha256": {"amd64": "0f" * 32}}})
    crictl = versions.artifact("crictl", resolved, "amd64")
    assert (crictl.version, crictl.algorithm, crictl.digest) == ("1.36.0", "sha256", "0f" * 32)


def test_an_unpinned_release_is_refused_naming_the_pinned_ones():
    with pytest.raises(versions.VersionError, match=r"versions\.kubernetes.*pinned versions are 1\.36\.0, 1\.37\.2"):
        versions.resolve_versions({"kubernetes": "1.37.1"})


def test_the_readme_versions_table_states_the_pinned_defaults():
    section = ARCHITECTURE_DOC.split("## Components and versions", 1)[1].split("\n## ", 1)[0]
    rows = {row[0].split(" (")[0]: row[1] for row in
            (re.split(r" \| ", line.strip("| ")) for line in section.splitlines() if line.startswith("| "))}
    stated = {"kubernetes": rows["Kubernetes"], "etcd": rows["etcd"], "containerd": rows["containerd"],
              "runc": rows["runc"].split(" ")[0], "cni-plugins": rows["CNI plugins"], "crictl": rows["crictl"]}
    assert stated == versions.DEFAULT_VERSIONS
    images = rows["pause / CoreDNS / nginx / busybox images"].split(" / ")
    assert images == [versions.IMAGES[name].rsplit(":", 1)[1] for name in ("pause", "coredns", "nginx", "busybox")]


def test_the_artifacts_are_resolved_once_for_every_component_with_the_stack_arch_and_mirror():
    artifacts = versions.resolve_artifacts({"kubernetes": "1.36.0"}, "arm64", "https://mirror.example.internal")
    pinned = versions.resolve_versions({"kubernetes": "1.36.0"})
    assert set(artifacts.by_component) == set(versions.COMPONENTS)
    for component in versions.COMPONENTS:
        assert artifacts[component] == versions.artifact(component, pinned, "arm64", "https://mirror.example.internal")
    assert artifacts["kubernetes-node"].url == \
        "https://mirror.example.internal/dl.k8s.io/v1.36.0/kubernetes-node-linux-arm64.tar.gz"


def test_an_override_without_a_sum_for_the_stack_architecture_is_refused_when_resolved():
    with pytest.raises(versions.VersionError, match=r"no sha256 checksum for crictl 1\.36\.0 on arm64; known: amd64"):
        versions.resolve_artifacts({"crictl": {"version": "1.36.0", "sha256": {"amd64": "0f" * 32}}}, "arm64")


def test_runc_is_pinned_at_1_5_1_with_the_sums_of_its_runc_sha256sum():
    """kubernetes/kops pkg/assets/assetdata/runc-1.5.yaml at 17f068050b09ac4d71d4682595df0e6339ab85d5."""
    runc = versions.resolve_artifacts({}, "amd64")["runc"]
    assert (runc.version, runc.algorithm) == ("1.5.1", "sha256")
    assert runc.digest == "177df879d50c913eb205e898d5c1c05a18f574053c0ce5524c471208eaf06f6f"
    assert versions.resolve_artifacts({}, "arm64")["runc"].digest == (
        "ca70e7dbd6616ca782a59b5d3ac86909123fdaa9fa3f89dcf29051c70eee7ce9")
    assert versions.resolve_artifacts({"runc": "1.4.3"}, "amd64")["runc"].version == "1.4.3"
