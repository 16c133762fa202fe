"""The lab's mirror: built binaries served in the upstream releases' layout that cluster/versions.py describes, and
the `versions` setting that pins them accepted by the program's own resolver."""

from __future__ import annotations

import hashlib
import tarfile

from cluster import versions
from locallab.mirror import publish

BUILT = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy", "etcd",
         "etcdctl", "etcdutl")


def _binaries(tmp_path):
    binaries = {}
    for name in BUILT:
        path = tmp_path / "bin" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"#!{name}\n".encode())
        binaries[name] = path
    return binaries


def test_every_component_the_build_covers_is_served_where_its_artifact_url_points(tmp_path):
    binaries = _binaries(tmp_path)
    setting = publish(tmp_path / "mirror", {"kubernetes": "1.37.2", "etcd": "3.6.16"}, binaries, "amd64")
    resolved = versions.resolve_versions(setting)
    served = [c for c in versions.COMPONENTS.values() if c.version_key in setting]
    assert {c.name for c in served} == {"kubernetes-server", "kubernetes-node", "etcd"}
    for component in served:
        art = versions.artifact(component.name, resolved, "amd64", "http://mirror")
        local = tmp_path / "mirror" / art.url.removeprefix("http://mirror/")
        assert hashlib.new(art.algorithm, local.read_bytes()).hexdigest() == art.digest
        with tarfile.open(local) as tar:
            for src, dest in art.installs:
                member = tar.extractfile(src)
                assert member.read() == binaries[dest.rsplit("/", 1)[-1]].read_bytes()


def test_the_same_binaries_give_the_same_checksums(tmp_path):
    binaries = _binaries(tmp_path)
    first = publish(tmp_path / "a", {"kubernetes": "1.37.2", "etcd": "3.6.16"}, binaries, "amd64")
    second = publish(tmp_path / "b", {"kubernetes": "1.37.2", "etcd": "3.6.16"}, binaries, "amd64")
    assert first == second


def test_a_version_key_is_pinned_only_when_every_component_it_covers_was_built(tmp_path):
    binaries = {k: v for k, v in _binaries(tmp_path).items() if k != "kubelet"}
    setting = publish(tmp_path / "mirror", {"kubernetes": "1.37.2", "etcd": "3.6.16"}, binaries, "amd64")
    assert set(setting) == {"etcd"}
    versions.resolve_versions(setting)
