"""The lab's OCI image layout and registry configuration, on small trees of the test's own (no tools needed)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml

from cluster.versions import IMAGES
from locallab import images, registry

REFERENCE = "registry.k8s.io/pause:3.10.2"
CONFIG = {"Entrypoint": ["/pause"], "User": "65535:65535", "Env": [images.PATH_ENV]}


def make_tree(root: Path, mtime: int) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "alias").symlink_to("/bin/tool")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.link(root / "etc" / "passwd", root / "etc" / "passwd-")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
        if os.geteuid() == 0:
            os.lchown(path, 1000 + mtime % 7, 1000 + mtime % 5)
    return root


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def blob(layout: Path, digest: str) -> bytes:
    return images.blob_path(layout, digest).read_bytes()


@pytest.fixture
def layout(tmp_path) -> Path:
    images.write_layout(tmp_path / "layout", make_tree(tmp_path / "root", mtime=1_700_000_000), CONFIG, REFERENCE)
    return tmp_path / "layout"


def test_the_layout_has_an_index_a_manifest_a_config_and_one_gzip_layer(layout):
    assert read_json(layout / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = read_json(layout / "index.json")
    assert index["mediaType"] == images.OCI_INDEX and index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert entry["mediaType"] == images.OCI_MANIFEST
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "3.10.2",
                                    "io.containerd.image.name": REFERENCE}
    manifest = json.loads(blob(layout, entry["digest"]))
    assert manifest["mediaType"] == images.OCI_MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == images.OCI_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [images.OCI_LAYER]
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("linux", images.ARCH)
    assert config["config"] == CONFIG
    layer = gzip.decompress(blob(layout, manifest["layers"][0]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}


def test_every_blob_is_named_by_its_digest_and_described_with_its_size(layout):
    entry = read_json(layout / "index.json")["manifests"][0]
    manifest = json.loads(blob(layout, entry["digest"]))
    descriptors = [entry, manifest["config"], *manifest["layers"]]
    for descriptor in descriptors:
        data = blob(layout, descriptor["digest"])
        assert descriptor["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert descriptor["size"] == len(data)
    assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == \
        sorted(d["digest"].split(":")[1] for d in descriptors)
    assert sorted(p.name for p in layout.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_the_layer_keeps_modes_links_and_hard_links_with_fixed_owners_and_times(layout):
    manifest = json.loads(blob(layout, read_json(layout / "index.json")["manifests"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(blob(layout, manifest["layers"][0]["digest"]))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["bin", "etc", "tmp", "bin/alias", "bin/tool", "etc/passwd", "etc/passwd-"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {(0, 0, "", "", 0)}
    assert members["bin/alias"].issym() and members["bin/alias"].linkname == "/bin/tool"
    assert members["etc/passwd-"].islnk() and members["etc/passwd-"].linkname == "etc/passwd"
    assert members["bin/tool"].mode == 0o755 and members["tmp"].mode == 0o1777


def test_the_same_tree_gives_the_same_digests_whenever_and_by_whomever_it_was_made(tmp_path):
    first = images.write_layout(tmp_path / "a", make_tree(tmp_path / "tree-a", mtime=1_600_000_000), CONFIG,
                                REFERENCE)
    second = images.write_layout(tmp_path / "b", make_tree(tmp_path / "tree-b", mtime=1_700_000_001), CONFIG,
                                 REFERENCE)
    assert first == second
    (tmp_path / "tree-b" / "bin" / "tool").write_bytes(b"#!/bin/sh\necho other\n")
    assert images.write_layout(tmp_path / "c", tmp_path / "tree-b", CONFIG, REFERENCE) != first
    assert images.write_layout(tmp_path / "d", tmp_path / "tree-a", {**CONFIG, "User": "0"}, REFERENCE) != first


def test_an_image_reads_back_from_its_layout_with_the_path_containerd_asks_a_mirror_for(tmp_path):
    paths = {}
    for name, reference in IMAGES.items():
        (tmp_path / "root" / name).mkdir(parents=True)
        digest = images.write_layout(tmp_path / name, tmp_path / "root" / name, CONFIG, reference)
        image = images.Image.read(name, tmp_path / name)
        assert (image.reference, image.manifest_digest) == (reference, digest)
        manifest = json.loads(blob(image.layout, digest))
        assert image.size == len(blob(image.layout, digest)) + manifest["config"]["size"] + \
            manifest["layers"][0]["size"]
        paths[name] = (image.registry, image.repository, image.tag)
    assert paths == {"pause": ("registry.k8s.io", "pause", "3.10.2"),
                     "coredns": ("registry.k8s.io", "coredns/coredns", "v1.14.6"),
                     "nginx": ("docker.io", "library/nginx", "1.29"),
                     "busybox": ("docker.io", "library/busybox", "1.37"),
                     "metrics-server": ("registry.k8s.io", "metrics-server/metrics-server", "v0.9.0")}


def test_the_cache_key_follows_the_recipe_and_its_inputs():
    def recipe(**changes) -> images.Recipe:
        values = {"config": CONFIG, "inputs": {"busybox": "ab" * 32}, "fill": lambda root: None, **changes}
        return images.Recipe(**values)
    key = images.image_key(REFERENCE, recipe())
    assert key == images.image_key(REFERENCE, recipe(fill=lambda root: root.mkdir()))
    assert key != images.image_key(REFERENCE, recipe(inputs={"busybox": "cd" * 32}))
    assert key != images.image_key(REFERENCE, recipe(config={**CONFIG, "Cmd": ["sh"]}))
    assert key != images.image_key("registry.k8s.io/pause:3.10.3", recipe())


def test_the_registry_stores_on_disk_serves_plain_http_and_allows_no_deletes(tmp_path):
    config = yaml.safe_load(registry.registry_config(storage=tmp_path / "storage", address="10.43.0.4"))
    assert config["http"]["addr"] == "10.43.0.4:5000"
    assert config["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "storage")}
    assert config["storage"]["delete"] == {"enabled": False}
    assert "auth" not in config and "tls" not in config["http"]
