"""The lab's images and registry for real: the four images built (or taken from the cache), pushed to Debian's
docker-registry in a namespace of this test's own, and read back the way containerd asks a mirror. Then the images'
programs run from their unpacked roots: pause stops cleanly, busybox's nslookup answers in the shape the program's
dns-check script parses (from CoreDNS of the coredns image, on loopback), and nginx serves "Welcome to nginx!" as
uid 101 on a read-only root with the program's own nginx.conf.

Namespaces: k8sfs-imgtest-*; addresses: inside them and loopback only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from cluster.render import addons
from cluster.versions import IMAGES
from locallab import images, registry
from locallab.machines import DEPLOYER_IP
from locallab.netns import Lab, can_run
from tests.support.binaries import binaries_or_reason

pytestmark = pytest.mark.integration

EXTERNAL_NAME = "sts.amazonaws.com"      # the program's default dnsCheckName, answered here by our own CoreDNS
EXTERNAL_ADDRESS = "192.0.2.80"
KUBERNETES_SERVICE_IP = "10.32.0.1"


def _skip_reason() -> str | None:
    reason = can_run()
    if reason:
        return reason
    for tool in ("gcc", "strip", "mmdebstrap", "unshare", "chroot", "setpriv", registry.REGISTRY_BINARY):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: gcc, mmdebstrap, util-linux, coreutils, docker-registry)"
    if not images.BUSYBOX_PACKAGE_LIST.exists():
        return "Debian's busybox-static is not installed"
    return None


@pytest.fixture(scope="module")
def built():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    binaries, reason = binaries_or_reason(images.GO_BUILT)
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    cold = images.ensure_images(binaries)
    cold_seconds = time.monotonic() - started
    started = time.monotonic()
    warm = images.ensure_images(binaries)
    warm_seconds = time.monotonic() - started
    print(f"\nimages: first call {cold_seconds:.1f}s, warm call {warm_seconds:.3f}s; "
          + ", ".join(f"{i.name} {i.size / 1e6:.1f} MB" for i in warm.values()))
    assert warm == cold
    assert warm_seconds < 1.0, f"a warm ensure_images took {warm_seconds:.2f}s"
    return {"images": warm, "binaries": binaries}


@pytest.fixture(scope="module")
def lab(built, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("registry")
    with Lab("imgtest") as lab:
        lab.add_host("deployer", DEPLOYER_IP)
        lab.exec("deployer", "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0")  # as containerd does for pods
        pid = registry.start_registry(lab, "deployer", storage=workdir / "storage", workdir=workdir)
        url = f"http://{DEPLOYER_IP}:{registry.REGISTRY_PORT}"
        started = time.monotonic()
        pushed = registry.push_images(lab, "deployer", url, built["images"].values())
        print(f"\npushed {sum(p['uploaded_bytes'] for p in pushed.values()) / 1e6:.1f} MB in "
              f"{time.monotonic() - started:.2f}s")
        yield {"lab": lab, "url": url, "pid": pid, "pushed": pushed, "workdir": workdir}
        os.kill(pid, signal.SIGTERM)


def unpack(image: images.Image, target: Path) -> Path:
    manifest = json.loads(images.blob_path(image.layout, image.manifest_digest).read_text())
    for layer in manifest["layers"]:
        with tarfile.open(images.blob_path(image.layout, layer["digest"])) as tar:
            tar.extractall(target, filter="fully_trusted")
    return target


# --- the registry ----------------------------------------------------------------------------------------------------

def test_every_image_reads_back_by_tag_as_containerd_asks_the_mirror(built, lab):
    targets = [f"{i.registry}/{i.repository}:{i.tag}" for i in built["images"].values()]
    result = json.loads(registry.run_client(lab["lab"], "deployer", "check", lab["url"], *targets).stdout)
    for image in built["images"].values():
        read = result[f"{image.registry}/{image.repository}:{image.tag}"]
        assert read["digest"] == image.manifest_digest
        assert read["media_type"] == images.OCI_MANIFEST
        assert read["blobs"] == 2
    assert {i.repository for i in built["images"].values()} == {"pause", "coredns/coredns", "library/nginx",
                                                                 "library/busybox", "metrics-server/metrics-server"}


def test_a_second_push_uploads_nothing(built, lab):
    assert all(p["uploaded_bytes"] > 0 for p in lab["pushed"].values())
    again = registry.push_images(lab["lab"], "deployer", lab["url"], built["images"].values())
    assert [p["uploaded_bytes"] for p in again.values()] == [0] * len(IMAGES)
    assert {name: p["digest"] for name, p in again.items()} == \
        {f"{i.repository}:{i.tag}": i.manifest_digest for i in built["images"].values()}


def test_the_registry_refuses_deletes(built, lab):
    image = built["images"]["pause"]
    code = ("import sys, urllib.request as u; r = u.Request(sys.argv[1], method='DELETE')\n"
            "try: u.build_opener(u.ProxyHandler({})).open(r)\nexcept Exception as e: print(e.code)")
    result = lab["lab"].exec("deployer", sys.executable, "-c", code,
                             f"{lab['url']}/v2/{image.repository}/manifests/{image.manifest_digest}")
    assert result.stdout.strip() == "405"


# --- the images ------------------------------------------------------------------------------------------------------

def test_pause_and_busybox_build_to_the_same_digests_again(built, tmp_path):
    recipes = images.recipes(built["binaries"])
    for name in ("pause", "busybox"):
        again = images.build_image(name, IMAGES[name], recipes[name], tmp_path / name)
        assert again.manifest_digest == built["images"][name].manifest_digest, name


def test_pause_waits_and_stops_cleanly_on_sigterm_and_sigint(built, tmp_path):
    root = unpack(built["images"]["pause"], tmp_path)
    for stop in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(["setpriv", "--reuid=65535", "--regid=65535", "--clear-groups",
                                    str(root / "pause")])
        time.sleep(0.3)
        assert process.poll() is None, "pause exited by itself"
        process.send_signal(stop)
        assert process.wait(timeout=5) == 0


def _children(pid: int) -> list[str]:
    return subprocess.run(["ps", "-o", "stat=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()


def test_pause_reaps_orphans_as_pid_1(built, tmp_path):
    """As the pod's PID 1, pause inherits what other processes of the pod leave behind and must reap them."""
    root = unpack(built["images"]["pause"], tmp_path)
    namespace = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(root / "pause")])
    try:
        time.sleep(0.3)
        pause_pid = int(subprocess.run(["ps", "-o", "pid=", "--ppid", str(namespace.pid)], capture_output=True,
                                       text=True).stdout.split()[0])
        subprocess.run(["nsenter", f"--target={pause_pid}", "--pid", "--", "sh", "-c", "sleep 1 & exit 0"],
                       check=True)
        time.sleep(0.3)
        assert _children(pause_pid) == ["S"], "the orphan was not handed to pause"
        time.sleep(1.5)
        assert _children(pause_pid) == [], "pause left its exited orphan a zombie"
        os.kill(pause_pid, signal.SIGTERM)
        assert namespace.wait(timeout=5) == 0
    finally:
        namespace.kill()


def test_busybox_nslookup_answers_as_the_dns_check_script_parses_it(built, lab, tmp_path):
    """CoreDNS from the coredns image answers on the namespace's loopback; the dns-check pod's own command runs in
    the busybox root as nobody, and the answers are read with the dns-check script's own awk."""
    coredns_root = unpack(built["images"]["coredns"], tmp_path / "coredns")
    (coredns_root / "Corefile").write_text(f""".:53 {{
    bind 127.0.0.1
    hosts {{
        {KUBERNETES_SERVICE_IP} {addons.KUBERNETES_SERVICE_NAME}
        {EXTERNAL_ADDRESS} {EXTERNAL_NAME}
    }}
}}
""")
    coredns = lab["lab"].popen("deployer", "chroot", f"--userspec={addons.COREDNS_USER}:{addons.COREDNS_USER}",
                               str(coredns_root), "/coredns", "-conf", "/Corefile",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        busybox_root = unpack(built["images"]["busybox"], tmp_path / "busybox")
        (busybox_root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        pod = addons.dns_check_pod(image=IMAGES["busybox"], names=(addons.KUBERNETES_SERVICE_NAME, EXTERNAL_NAME))
        command = pod["spec"]["containers"][0]["command"]
        log = ""
        deadline = time.monotonic() + 60
        # Until CoreDNS listens: both names answered in one run (a run that started before it listened may answer
        # only the second name).
        while time.monotonic() < deadline:
            log = lab["lab"].exec("deployer", "chroot", f"--userspec={addons.NOBODY}:{addons.NOBODY}",
                                  str(busybox_root), *command, check=False).stdout
            if EXTERNAL_ADDRESS in log and KUBERNETES_SERVICE_IP in log:
                break
            time.sleep(0.2)
        script = addons.dns_check_script(image=IMAGES["busybox"], kubernetes_service_ip=KUBERNETES_SERVICE_IP,
                                         external_name=EXTERNAL_NAME)
        answers = re.search(r"^answers\(\) \{.*?^\}$", script, re.M | re.S).group(0)
        parsed = {name: subprocess.run(["bash", "-c", f'{answers}\nanswers "$1" "$2"', "bash", name, log],
                                       capture_output=True, text=True, check=True).stdout.split()
                  for name in (addons.KUBERNETES_SERVICE_NAME, EXTERNAL_NAME)}
        assert parsed == {addons.KUBERNETES_SERVICE_NAME: [KUBERNETES_SERVICE_IP],
                          EXTERNAL_NAME: [EXTERNAL_ADDRESS]}, log
    finally:
        coredns.terminate()
        coredns.wait(timeout=10)


def test_nginx_serves_the_welcome_page_as_uid_101_on_a_read_only_root(built, lab, tmp_path):
    root = unpack(built["images"]["nginx"], tmp_path / "nginx")
    config_dir = root / addons.NGINX_CONFIG_DIR.lstrip("/")
    config_dir.mkdir(parents=True)
    (config_dir / "nginx.conf").write_text(addons.NGINX_CONF)
    (root / "dev").mkdir()
    # The container's view: the image read-only, an emptyDir on /tmp, /dev from the runtime.
    container = f"""mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
mount -t tmpfs -o mode=1777 tmpfs "$1/tmp" && mount --rbind /dev "$1/dev" &&
exec chroot --userspec={addons.NGINX_USER}:{addons.NGINX_USER} "$1" nginx -c {addons.NGINX_CONFIG_DIR}/nginx.conf"""
    nginx = lab["lab"].popen("deployer", "unshare", "--mount", "--fork", "--kill-child", "sh", "-c", container, "sh",
                             str(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        fetch = ("import sys, urllib.request as u\n"
                 "print(u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=5).read().decode())")
        page = ""
        for _ in range(50):
            result = lab["lab"].exec("deployer", sys.executable, "-c", fetch, f"http://127.0.0.1:{addons.NGINX_PORT}/",
                                     check=False)
            page = result.stdout
            if result.returncode == 0 or nginx.poll() is not None:
                break
            time.sleep(0.2)
        assert "Welcome to nginx!" in page, nginx.stdout.read() if nginx.poll() is not None else page
        master = subprocess.run(["ps", "-o", "pid=,uid=", "--ppid", str(nginx.pid)], capture_output=True,
                                text=True).stdout.split()
        assert master[1:] == [str(addons.NGINX_USER)]
        os.kill(int(master[0]), signal.SIGQUIT)      # a graceful stop; unshare itself ignores SIGTERM
        output, _ = nginx.communicate(timeout=10)
        assert nginx.returncode == 0, output
    finally:
        nginx.kill()
    assert "emerg" not in output and "alert" not in output, output
