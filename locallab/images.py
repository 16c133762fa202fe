"""The images the cluster pulls (cluster/versions.py IMAGES), built in the lab as real OCI images, so the lab needs
no registry on the internet: pause from a small static C program (locallab/pause.c), busybox from Debian's
busybox-static, nginx from Debian's nginx-light and its libraries, CoreDNS and metrics-server from the lab's Go build.

Each image is one gzip'd layer in an OCI image layout (oci-layout, index.json, blobs/sha256/...). The layer has
fixed times and owners and a sorted file order, so the same inputs always give the same digests. An image is cached
at CACHE/images/<name>-<key>, where key hashes its recipe and the digests of what goes into it (the busybox, CoreDNS
and metrics-server binaries, pause.c and the compiler); a warm call reads index.json and returns at once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from cluster.render.addons import COREDNS_USER
from cluster.versions import IMAGES
from locallab.mirror import file_digest
from locallab.rootfs import CACHE, RECIPE as ROOTFS_RECIPE

IMAGES_ROOT = CACHE / "images"

OCI_LAYOUT = "application/vnd.oci.image.layout.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAYER_MTIME = 0

PAUSE_SOURCE = Path(__file__).with_name("pause.c")
PAUSE_CFLAGS = ["-Os", "-static", "-Wall", "-Wextra", "-Werror"]
PAUSE_USER = "65535:65535"
BUSYBOX = Path("/bin/busybox")                       # Debian's busybox-static: no libraries needed
BUSYBOX_PACKAGE_LIST = Path("/var/lib/dpkg/info/busybox-static.list")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NGINX_PACKAGES = ["nginx-light"]
# Left out of the nginx root: package manager state, documentation, and what the runtime provides (/dev, the
# resolver and host name files).
NGINX_PRUNE = ["dev", "etc/apt", "etc/dpkg", "etc/fstab", "etc/hostname", "etc/resolv.conf", "var/cache/apt",
               "var/cache/debconf", "var/lib/apt", "var/lib/dpkg", "var/log/apt", "usr/share/doc", "usr/share/man",
               "usr/share/info", "usr/share/locale", "usr/share/lintian", "usr/share/bash-completion",
               "usr/share/vim"]
# root; www-data for Debian's own nginx.conf (`user www-data`) when the image runs as root with its default
# command; nginx (101) as in the official image, the user the smoke test runs it as; nobody.
NGINX_PASSWD = """root:x:0:0:root:/root:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nginx:x:101:101:nginx:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
NGINX_GROUP = "root:x:0:\nwww-data:x:33:\nnginx:x:101:\nnobody:x:65534:\n"
BUSYBOX_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
BUSYBOX_GROUP = "root:x:0:\nnobody:x:65534:\n"
# The images made of one binary of the lab's Go build (locallab/build.py), by the binary's name.
GO_BUILT = ("coredns", "metrics-server")
# metrics-server's image is distroless/static running as nobody (its Dockerfile: USER 65534).
METRICS_SERVER_USER = "65534:65534"


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Image:
    name: str               # the IMAGES key: pause, coredns, nginx, busybox
    reference: str          # registry.k8s.io/pause:3.10.2
    layout: Path            # the OCI image layout directory
    manifest_digest: str    # sha256:...
    size: int               # bytes of manifest, config and layers as pushed

    @property
    def registry(self) -> str:
        """The upstream registry host: what containerd passes to a mirror as `?ns=`."""
        return self.reference.split("/", 1)[0]

    @property
    def repository(self) -> str:
        """The path under the registry host, which is what containerd asks a mirror for:
        registry.k8s.io/coredns/coredns -> coredns/coredns, docker.io/library/nginx -> library/nginx."""
        return self.reference.rpartition(":")[0].split("/", 1)[1]

    @property
    def tag(self) -> str:
        return self.reference.rpartition(":")[2]

    @classmethod
    def read(cls, name: str, layout: Path) -> "Image":
        index = json.loads((layout / "index.json").read_text())
        entry = index["manifests"][0]
        manifest = json.loads(blob_path(layout, entry["digest"]).read_text())
        size = entry["size"] + manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        return cls(name=name, reference=entry["annotations"]["io.containerd.image.name"], layout=layout,
                   manifest_digest=entry["digest"], size=size)


@dataclass(frozen=True)
class Recipe:
    config: dict                        # the image config's `config`: Entrypoint, Cmd, User, Env
    inputs: dict                        # what decides the contents besides this recipe: digests, versions
    fill: Callable[[Path], None] | None  # writes the image's (top) layer into a new directory; None: no layer
    base: Image | None = None           # an image whose layers come first (as `FROM` in a Dockerfile)


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


# --- the OCI layout -------------------------------------------------------------------------------------------------

def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = LAYER_MTIME
    return info


def write_layer_tar(root: Path, target: Path) -> None:
    """Every entry under root, parents before children in sorted order, owned by root with a fixed time.
    Hard links stay hard links (tarfile records the second path of an inode as a link to the first)."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = Path(directory) / name
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=_normalized)


def _put_blob(layout: Path, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _write_layer(layout: Path, root: Path) -> tuple[dict, str]:
    """The gzip'd layer of `root` as a blob of the layout; returns its descriptor and its diff id."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    tar_path = layout / "layer.tar"
    write_layer_tar(root, tar_path)
    diff_id = "sha256:" + sha256_file(tar_path)
    gz_path = layout / "layer.tar.gz"
    with open(tar_path, "rb") as source, open(gz_path, "wb") as raw, \
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
        shutil.copyfileobj(source, gz, 1 << 20)
    tar_path.unlink()
    layer = {"mediaType": OCI_LAYER, "digest": "sha256:" + sha256_file(gz_path), "size": gz_path.stat().st_size}
    os.replace(gz_path, blob_path(layout, layer["digest"]))
    return layer, diff_id


def _base_layers(layout: Path, base: Path) -> tuple[list[dict], list[str], list[dict]]:
    """The layers, diff ids and history of the image in the layout `base`, its layer blobs linked into `layout`."""
    manifest = json.loads(blob_path(base, json.loads((base / "index.json").read_text())["manifests"][0]["digest"])
                          .read_text())
    config = json.loads(blob_path(base, manifest["config"]["digest"]).read_text())
    for layer in manifest["layers"]:
        target = blob_path(layout, layer["digest"])
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(blob_path(base, layer["digest"]), target)
    return manifest["layers"], config["rootfs"]["diff_ids"], config["history"]


def write_layout(layout: Path, root: Path | None, config: dict, reference: str, base: Path | None = None) -> str:
    """An OCI image layout of one image whose layers are those of the image in the layout `base` (if any), then
    `root` (if any); returns the manifest digest."""
    layers, diff_ids, history = _base_layers(layout, base) if base else ([], [], [])
    if root is not None:
        layer, diff_id = _write_layer(layout, root)
        layers, diff_ids = [*layers, layer], [*diff_ids, diff_id]
        history = [*history, {"created_by": f"k8s-from-scratch lab: {reference}"}]
    image_config = {"architecture": ARCH, "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": _put_blob(layout, _canonical(image_config), OCI_CONFIG), "layers": layers}
    manifest_descriptor = _put_blob(layout, _canonical(manifest), OCI_MANIFEST)
    manifest_descriptor["platform"] = {"architecture": ARCH, "os": "linux"}
    manifest_descriptor["annotations"] = {"org.opencontainers.image.ref.name": reference.rpartition(":")[2],
                                          "io.containerd.image.name": reference}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest_descriptor]}
    (layout / "index.json").write_bytes(_canonical(index))
    (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    return manifest_descriptor["digest"]


# --- the recipes ---------------------------------------------------------------------------------------------------

def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _copy(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def _run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageError(f"{' '.join(args[:3])} ... failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def _fill_pause(root: Path) -> None:
    root.mkdir(parents=True)
    _run("gcc", *PAUSE_CFLAGS, "-o", str(root / "pause"), str(PAUSE_SOURCE))
    _run("strip", str(root / "pause"))


def _fill_busybox(root: Path) -> None:
    _copy(BUSYBOX, root / "bin" / "busybox", 0o755)
    for applet in _run(str(root / "bin" / "busybox"), "--list-full").split():
        link = root / applet
        if applet != "bin/busybox" and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    _write(root / "etc" / "passwd", BUSYBOX_PASSWD)
    _write(root / "etc" / "group", BUSYBOX_GROUP)
    for directory, mode in (("tmp", 0o1777), ("root", 0o700), ("home", 0o755)):
        (root / directory).mkdir(exist_ok=True)
        (root / directory).chmod(mode)


def _fill_nginx(root: Path) -> None:
    """Debian's nginx-light and what it depends on, unpacked (mmdebstrap's `extract` variant runs no maintainer
    scripts, so the root has no package manager, shell or users of Debian's: the users are ours)."""
    _run("mmdebstrap", "--quiet", "--variant=extract", f"--include={','.join(NGINX_PACKAGES)}",
         ROOTFS_RECIPE["suite"], str(root), ROOTFS_RECIPE["mirror"])
    for path in NGINX_PRUNE:
        target = root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    _write(root / "etc" / "passwd", NGINX_PASSWD)
    _write(root / "etc" / "group", NGINX_GROUP)
    # As in the official image: logs written to the compiled-in paths reach the container's output.
    (root / "var" / "log" / "nginx" / "access.log").symlink_to("/dev/stdout")
    (root / "var" / "log" / "nginx" / "error.log").symlink_to("/dev/stderr")
    if "Welcome to nginx!" not in (root / "usr/share/nginx/html/index.html").read_text():
        raise ImageError("Debian's nginx no longer ships a default page saying 'Welcome to nginx!'")


def _fill_static_binary(binary: Path) -> Callable[[Path], None]:
    """A static Go program at /<name> and the CA bundle, as on distroless/static."""
    def fill(root: Path) -> None:
        _copy(binary, root / binary.name, 0o755)
        _copy(CA_BUNDLE, root / "etc" / "ssl" / "certs" / "ca-certificates.crt", 0o644)
    return fill


def recipes(binaries: Mapping[str, Path]) -> dict[str, Recipe]:
    """One recipe per IMAGES key; `binaries` holds the lab's builds of GO_BUILT by name. Computing the inputs hashes
    the binaries that go in (well under a second)."""
    if not BUSYBOX_PACKAGE_LIST.exists() or str(BUSYBOX) not in BUSYBOX_PACKAGE_LIST.read_text().split():
        raise ImageError(f"the busybox image needs Debian's busybox-static ({BUSYBOX}): apt-get install busybox-static")
    for name in GO_BUILT:
        if name not in binaries or not binaries[name].is_file():
            raise ImageError(f"the {name} image needs the lab's {name} build; {binaries.get(name)} does not exist")
    coredns_binary, metrics_server_binary = binaries["coredns"], binaries["metrics-server"]
    compiler = _run("gcc", "--version").splitlines()[0]
    return {
        "pause": Recipe(config={"Entrypoint": ["/pause"], "User": PAUSE_USER, "Env": [PATH_ENV]},
                        inputs={"source": sha256_file(PAUSE_SOURCE), "compiler": compiler, "flags": PAUSE_CFLAGS},
                        fill=_fill_pause),
        "busybox": Recipe(config={"Cmd": ["sh"], "Env": [PATH_ENV]},
                          inputs={"busybox": sha256_file(BUSYBOX), "passwd": BUSYBOX_PASSWD, "group": BUSYBOX_GROUP},
                          fill=_fill_busybox),
        "nginx": Recipe(config={"Cmd": ["nginx", "-g", "daemon off;"], "Env": [PATH_ENV], "StopSignal": "SIGQUIT"},
                        inputs={"suite": ROOTFS_RECIPE["suite"], "mirror": ROOTFS_RECIPE["mirror"],
                                "packages": NGINX_PACKAGES, "prune": NGINX_PRUNE, "passwd": NGINX_PASSWD,
                                "group": NGINX_GROUP, "revision": 1},
                        fill=_fill_nginx),
        "coredns": Recipe(config={"Entrypoint": ["/coredns"], "User": f"{COREDNS_USER}:{COREDNS_USER}",
                                  "Env": [PATH_ENV]},
                          inputs={"coredns": sha256_file(coredns_binary), "ca-certificates": sha256_file(CA_BUNDLE)},
                          fill=_fill_static_binary(coredns_binary)),
        "metrics-server": Recipe(config={"Entrypoint": ["/metrics-server"], "User": METRICS_SERVER_USER,
                                         "Env": [PATH_ENV]},
                                 inputs={"metrics-server": sha256_file(metrics_server_binary),
                                         "ca-certificates": sha256_file(CA_BUNDLE)},
                                 fill=_fill_static_binary(metrics_server_binary)),
    }


def image_key(reference: str, recipe: Recipe) -> str:
    material = {"reference": reference, "config": recipe.config, "inputs": recipe.inputs, "arch": ARCH,
                "layer": {"mtime": LAYER_MTIME, "format": "pax", "gzip": 6}}
    if recipe.base:     # only then, so the single-layer images keep their keys
        material["base"] = recipe.base.manifest_digest
    return hashlib.sha256(_canonical(material)).hexdigest()[:16]


def build_image(name: str, reference: str, recipe: Recipe, layout: Path) -> Image:
    """Builds into `layout` (which must not exist yet) by way of a staging directory beside it."""
    staging = layout.with_name(layout.name + ".building")
    root = layout.with_name(layout.name + ".root")
    for leftover in (staging, root):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        if recipe.fill:
            recipe.fill(root)
        write_layout(staging, root if recipe.fill else None, recipe.config, reference,
                     recipe.base.layout if recipe.base else None)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    staging.rename(layout)
    return Image.read(name, layout)


def ensure_image(name: str, recipe: Recipe, log=print, reference: str | None = None,
                 images_root: Path = IMAGES_ROOT) -> Image:
    """The image `name` (default reference: IMAGES[name]) from its cache under images_root, built first if missing;
    an image of another recipe under that name is removed."""
    reference = reference or IMAGES[name]
    layout = images_root / f"{name}-{image_key(reference, recipe)}"
    if (layout / "index.json").exists():
        return Image.read(name, layout)
    images_root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    image = build_image(name, reference, recipe, layout)
    log(f"built the image {reference} ({image.size / 1e6:.1f} MB) in {time.monotonic() - started:.1f}s: {layout}")
    for old in images_root.glob(f"{name}-*"):
        # name-<key> only: another image's name may start with this one's (agnhost, agnhost-prev).
        if old != layout and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", old.name):
            log(f"removing an image of an older recipe: {old}")
            shutil.rmtree(old, ignore_errors=True)
    return image


def ensure_images(binaries: Mapping[str, Path], log=print) -> dict[str, Image]:
    """Every image in IMAGES, keyed like IMAGES, built first where the cache has none for its recipe and inputs;
    `binaries`: the lab's builds of GO_BUILT by name (more are ignored)."""
    return {name: ensure_image(name, recipe, log) for name, recipe in recipes(binaries).items()}
