"""Every image the `[Conformance]` tests use, made here under the reference e2e.test asks for, so the lab registry
can serve them under their upstream paths (the workers' containerd mirrors registry.k8s.io through it: no repo-list
flag is needed).

agnhost is the release's agnhost on Debian's versions of the userland its alpine image has (a shell, curl, dig, nc,
ip, iperf, socat, ...), with porter's certificate and key and the user and group one test expects in the image.
kitten and nautilus are agnhost plus their pages, agnhost 2.55 (AgnhostPrev) is agnhost under another label, as
`FROM` images: layers on top of agnhost's. busybox is upstream's release built as the official image builds it
(locallab/busybox.py: Debian's shell drops variables that the ConfigMap and Secret tests read), every applet in /bin;
nginx and pause are the lab's own images under the e2e names. nonewprivs and sample-apiserver are their programs on
the lab's busybox (upstream: alpine); etcd is the lab's etcd build; glibc-dns-testing is Debian with dnsutils, as
its Dockerfile makes it.

Images are reproducible and cached like the lab's (locallab/images.py), under CACHE/images/conformance.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

from cluster.versions import IMAGES
from locallab import images
from locallab.busybox import ensure_busybox
from locallab.images import PATH_ENV, Image, ImageError, Recipe, sha256_file
from locallab.rootfs import RECIPE as ROOTFS_RECIPE

IMAGES_ROOT = images.IMAGES_ROOT / "conformance"
E2E_REGISTRY = "registry.k8s.io/e2e-test-images"

# Image -> the reference e2e.test asks for (test/utils/image/manifest.go at the pinned release; the ImageID in the
# comment). check_references() compares them with `e2e.test --list-images` before anything is pushed, so a release
# that asks for other tags stops with a message instead of pulling images nobody serves.
REFERENCES = {
    "agnhost": f"{E2E_REGISTRY}/agnhost:2.66.1",                          # Agnhost
    "agnhost-prev": f"{E2E_REGISTRY}/agnhost:2.55",                       # AgnhostPrev
    "busybox": f"{E2E_REGISTRY}/busybox:1.37.0-2",                        # BusyBox
    "nginx": f"{E2E_REGISTRY}/nginx:1.27.0-2",                            # Nginx
    "glibc-dns-testing": f"{E2E_REGISTRY}/glibc-dns-testing:2.1.1",       # GlibcDnsTesting
    "kitten": f"{E2E_REGISTRY}/kitten:1.8",                               # Kitten
    "nautilus": f"{E2E_REGISTRY}/nautilus:1.8",                           # Nautilus
    "nonewprivs": f"{E2E_REGISTRY}/nonewprivs:1.4",                       # Nonewprivs
    "sample-apiserver": f"{E2E_REGISTRY}/sample-apiserver:1.29.2",        # APIServer
    "etcd": "registry.k8s.io/etcd:3.7.0-0",                               # Etcd
    "pause": IMAGES["pause"],                                             # Pause (the lab's own)
}
# The lab's images that serve under an e2e name as they are.
FROM_LAB = {"nginx": "nginx", "pause": "pause"}

# agnhost's Dockerfile installs bind-tools curl netcat-openbsd iproute2 iperf bash util-linux-misc socat on alpine:
# Debian's packages of the same tools, plus what alpine's base has that busybox does not: getent (libc-bin; the DNS
# tests' probes call it) and ps (procps).
AGNHOST_PACKAGES = ["bash", "curl", "bind9-dnsutils", "netcat-openbsd", "iproute2", "iperf", "socat", "util-linux",
                    "procps", "libc-bin"]
# alpine's root user and nobody, and the user and group the SupplementalGroups test expects "defined in image".
AGNHOST_PASSWD = """root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/sbin/nologin
user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh
"""
AGNHOST_GROUP = """root:x:0:root
nobody:x:65534:
user-defined-in-image:x:1000:
group-defined-in-image:x:50000:user-defined-in-image
"""
# musl (agnhost's libc upstream) reads /etc/hosts before DNS; glibc without this file would ask DNS first.
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"
GLIBC_DNS_PACKAGES = ["bind9-dnsutils"]
SEARCH_PATH = ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin"]


def _on_path(root: Path, name: str) -> bool:
    return any((root / directory / name).exists() or (root / directory / name).is_symlink()
               for directory in SEARCH_PATH)


def _debian_root(root: Path, packages: list[str], variant: str) -> None:
    """Debian packages unpacked (`extract`: no maintainer scripts) or installed (`essential`), then pruned of
    package manager state and documentation (locallab/images.py NGINX_PRUNE)."""
    images._run("mmdebstrap", "--quiet", f"--variant={variant}", f"--include={','.join(packages)}",
                ROOTFS_RECIPE["suite"], str(root), ROOTFS_RECIPE["mirror"])
    for path in images.NGINX_PRUNE:
        target = root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _busybox_applets(root: Path) -> None:
    """busybox-static at /bin/busybox and a link for each applet no package put on PATH (the shell among them, as
    alpine's /bin/sh is busybox)."""
    busybox = root / "bin" / "busybox"
    if not _on_path(root, "busybox"):
        images._copy(images.BUSYBOX, busybox, 0o755)
    for applet in images._run(str(images.BUSYBOX), "--list-full").split():
        if not _on_path(root, Path(applet).name):
            link = root / applet
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")


def _fill_agnhost(agnhost: Path, files: Path) -> Callable[[Path], None]:
    def fill(root: Path) -> None:
        _debian_root(root, AGNHOST_PACKAGES, "extract")
        # netcat-openbsd's `nc` is an alternative that its maintainer script would make; the Services tests call nc.
        nc = next((root / d / "nc.openbsd" for d in SEARCH_PATH if (root / d / "nc.openbsd").exists()), None)
        if nc is None:
            raise ImageError("Debian's netcat-openbsd no longer installs nc.openbsd")
        (nc.parent / "nc").symlink_to("nc.openbsd")
        # Debian's busybox shell runs its own applets before PATH (SH_STANDALONE): as /bin/sh it would answer `ip`,
        # `nc` or `ps` in the tests' scripts itself. bash looks PATH up, as alpine's ash does.
        (root / "bin" / "sh").symlink_to("bash")
        (root / "usr" / "local" / "bin").mkdir(parents=True, exist_ok=True)
        (root / "usr" / "local" / "bin" / "iperf").symlink_to("/usr/bin/iperf")
        _busybox_applets(root)
        images._copy(agnhost, root / "agnhost", 0o755)
        (root / "agnhost-2").symlink_to("agnhost")
        for name in ("localhost.crt", "localhost.key"):      # porter serves TLS with these
            images._copy(files / "test/images/agnhost/porter" / name, root / name, 0o644)
        images._write(root / "etc" / "passwd", AGNHOST_PASSWD)
        images._write(root / "etc" / "group", AGNHOST_GROUP)
        images._write(root / "etc" / "nsswitch.conf", NSSWITCH)
        for directory, mode in (("uploads", 0o755), ("tmp", 0o1777), ("root", 0o700),
                                ("home/user-defined-in-image", 0o755)):
            (root / directory).mkdir(parents=True, exist_ok=True)
            (root / directory).chmod(mode)
    return fill


def _fill_busybox(binary: Path) -> Callable[[Path], None]:
    """Upstream's busybox (locallab/busybox.py) laid out as the official image that e2e's is: every applet in /bin
    (the Sysctls test runs /bin/sysctl), /usr/bin/env; the lab busybox image's users and directories."""
    def fill(root: Path) -> None:
        images._copy(binary, root / "bin" / "busybox", 0o755)
        for applet in images._run(str(binary), "--list").split():
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "env").symlink_to("../../bin/env")
        images._write(root / "etc" / "passwd", images.BUSYBOX_PASSWD)
        images._write(root / "etc" / "group", images.BUSYBOX_GROUP)
        for directory, mode in (("tmp", 0o1777), ("root", 0o700), ("home", 0o755)):
            (root / directory).mkdir(exist_ok=True)
            (root / directory).chmod(mode)
    return fill


def _fill_files(sources: dict[str, tuple[Path, int]]) -> Callable[[Path], None]:
    """A layer of the given files: image path -> (source file, mode)."""
    def fill(root: Path) -> None:
        for target, (source, mode) in sources.items():
            images._copy(source, root / target, mode)
    return fill


def _fill_glibc_dns(root: Path) -> None:
    _debian_root(root, GLIBC_DNS_PACKAGES, "essential")
    if not (root / "usr" / "bin" / "dig").exists():
        raise ImageError("Debian's bind9-dnsutils no longer installs /usr/bin/dig")


def recipes(conformance_dir: Path, lab_images: dict[str, Image], etcd: Path, busybox: Path
            ) -> dict[str, Recipe | Image]:
    """The conformance images as recipes (a lab Image where one serves as it is): conformance_dir is the build
    group (locallab/conformance.py), lab_images the lab's images, etcd the lab's etcd binary, busybox upstream's
    (locallab/busybox.py). Recipes whose base is agnhost are built by ensure_images once agnhost is."""
    binaries, files = conformance_dir / "bin", conformance_dir / "files"
    for path in [binaries / "agnhost", binaries / "nnp", binaries / "sample-apiserver", etcd, busybox]:
        if not path.is_file():
            raise ImageError(f"the conformance images need {path}: build it first (python -m locallab.conformance)")
    agnhost_version = (files / "test/images/agnhost/VERSION").read_text().strip()
    if REFERENCES["agnhost"].rpartition(":")[2] != agnhost_version:
        raise ImageError(f"the release's agnhost is {agnhost_version}, but REFERENCES names "
                         f"{REFERENCES['agnhost']}: update locallab/conformance_images.py")
    lab_busybox = lab_images["busybox"]
    agnhost_config = {"Entrypoint": ["/agnhost"], "Cmd": ["pause"], "Env": [PATH_ENV]}
    suite = {"suite": ROOTFS_RECIPE["suite"], "mirror": ROOTFS_RECIPE["mirror"], "prune": images.NGINX_PRUNE}
    built: dict[str, Recipe | Image] = {name: lab_images[lab] for name, lab in FROM_LAB.items()}
    built["agnhost"] = Recipe(
        config=agnhost_config,
        inputs={"agnhost": sha256_file(binaries / "agnhost"), "packages": AGNHOST_PACKAGES, **suite,
                "busybox": sha256_file(images.BUSYBOX), "passwd": AGNHOST_PASSWD, "group": AGNHOST_GROUP,
                "nsswitch": NSSWITCH, "porter": [sha256_file(files / "test/images/agnhost/porter" / n)
                                                 for n in ("localhost.crt", "localhost.key")], "revision": 2},
        fill=_fill_agnhost(binaries / "agnhost", files))
    built["busybox"] = Recipe(config={"Cmd": ["sh"], "Env": [PATH_ENV]},
                              inputs={"busybox": sha256_file(busybox), "passwd": images.BUSYBOX_PASSWD,
                                      "group": images.BUSYBOX_GROUP, "applets": "/bin", "revision": 2},
                              fill=_fill_busybox(busybox))
    built["glibc-dns-testing"] = Recipe(config={"Cmd": ["bash"], "Env": [PATH_ENV]},
                                        inputs={"packages": GLIBC_DNS_PACKAGES, **suite, "revision": 1},
                                        fill=_fill_glibc_dns)
    built["nonewprivs"] = Recipe(
        config={"Cmd": ["nnp"], "Env": [PATH_ENV]}, inputs={"nnp": sha256_file(binaries / "nnp")},
        fill=_fill_files({"usr/local/bin/nnp": (binaries / "nnp", 0o4755)}), base=lab_busybox)
    built["sample-apiserver"] = Recipe(
        config={"Entrypoint": ["/sample-apiserver"], "Env": [PATH_ENV]},
        inputs={"sample-apiserver": sha256_file(binaries / "sample-apiserver")},
        fill=_fill_files({"sample-apiserver": (binaries / "sample-apiserver", 0o755)}), base=lab_busybox)
    built["etcd"] = Recipe(config={"Cmd": ["/usr/local/bin/etcd"], "Env": [PATH_ENV]},
                           inputs={"etcd": sha256_file(etcd)},
                           fill=_fill_files({"usr/local/bin/etcd": (etcd, 0o755)}), base=lab_busybox)
    return built


def _on_agnhost(agnhost: Image, files: Path) -> dict[str, Recipe]:
    """The images built `FROM` agnhost: kitten and nautilus add their pages and serve them; agnhost 2.55 is agnhost
    with another label, so that the two tags are two images, as upstream."""
    pages = {name: {f"{name}.jpg": (files / f"test/images/{name}/html/{name}.jpg", 0o644),
                    "data.json": (files / f"test/images/{name}/html/data.json", 0o644)}
             for name in ("kitten", "nautilus")}
    derived = {name: Recipe(config={"Entrypoint": ["/agnhost"], "Cmd": ["test-webserver"], "Env": [PATH_ENV]},
                            inputs={path: sha256_file(source) for path, (source, _) in page.items()},
                            fill=_fill_files(page), base=agnhost)
               for name, page in pages.items()}
    derived["agnhost-prev"] = Recipe(
        config={"Entrypoint": ["/agnhost"], "Cmd": ["pause"], "Env": [PATH_ENV],
                "Labels": {"org.opencontainers.image.version": REFERENCES["agnhost-prev"].rpartition(":")[2]}},
        inputs={}, fill=None, base=agnhost)
    return derived


def ensure_images(conformance_dir: Path, lab_images: dict[str, Image], etcd: Path, log=print) -> dict[str, Image]:
    """Every image in REFERENCES, keyed like it, each with its e2e reference, built first where the cache has none
    (upstream's busybox too, locallab/busybox.py)."""
    def ensure(name: str, recipe: Recipe) -> Image:
        return images.ensure_image(name, recipe, log, reference=REFERENCES[name], images_root=IMAGES_ROOT)
    planned = recipes(conformance_dir, lab_images, etcd, ensure_busybox(log))
    built = {name: item if isinstance(item, Image) else ensure(name, item) for name, item in planned.items()}
    built.update({name: ensure(name, recipe)
                  for name, recipe in _on_agnhost(built["agnhost"], conformance_dir / "files").items()})
    return {name: built[name] for name in REFERENCES}


def push_targets(built: dict[str, Image]) -> list[str]:
    """LAYOUT=REPOSITORY:TAG for `python -m locallab.registry push`, under each image's e2e reference."""
    targets = []
    for name, image in built.items():
        repository, _, tag = REFERENCES[name].partition("/")[2].rpartition(":")
        targets.append(f"{image.layout}={repository}:{tag}")
    return targets


def check_references(e2e_test: Path) -> list[str]:
    """The references in REFERENCES that this e2e.test does not list (`--list-images`); [] when all are there."""
    listed = set(subprocess.run([str(e2e_test), "--list-images"], check=True, capture_output=True,
                                text=True).stdout.split())
    return [reference for reference in REFERENCES.values() if reference not in listed]
