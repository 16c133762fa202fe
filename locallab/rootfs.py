"""The lab's machine image: a Debian rootfs with systemd and sshd, built once with debootstrap and cached outside
the clone under a name derived from its recipe (change the recipe and it is rebuilt)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from cluster.render.workers.prepare_os import PACKAGES as WORKER_PACKAGES

CACHE = Path(os.environ.get("K8S_FROM_SCRATCH_LAB_CACHE", "/var/cache/k8s-from-scratch-lab"))
LAB_USER = "ubuntu"   # the stack's sshUser, as on the Ubuntu AMI: passwordless sudo

RECIPE = {
    "suite": "bookworm",
    "mirror": "http://deb.debian.org/debian",
    "variant": "minbase",
    "include": ["systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2", "iptables", "curl",
                "ca-certificates", "iputils-ping", "procps", "kmod", "passwd", "libnss-myhostname",
                # Ubuntu's images have python3; each worker's read-pod-cidr step runs its reader with it.
                "python3",
                # What a worker's prepare-os installs: the machines reach no package mirror, so the image carries
                # its packages (prepare-os finds them installed), haproxy for the node-local API proxy among them.
                *WORKER_PACKAGES],
}

SETUP = f"""set -eu
id {LAB_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {LAB_USER}
echo '{LAB_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{LAB_USER}
chmod 0440 /etc/sudoers.d/{LAB_USER}
ln -sf /lib/systemd/system/ssh.service /etc/systemd/system/multi-user.target.wants/ssh.service
# No consoles to log in on, nothing to wait for at boot.
systemctl mask getty@tty1.service console-getty.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
printf 'PasswordAuthentication no\\nUseDNS no\\n' > /etc/ssh/sshd_config.d/lab.conf
# The machine's name comes from systemd-nspawn --hostname, like a node's from cloud-init.
rm -f /etc/hostname
# Every ephemeral machine would share the image's machine id.
: > /etc/machine-id
# Only the program's start-haproxy step enables the node-local API proxy, with its own configuration.
systemctl disable haproxy.service >/dev/null 2>&1 || true
printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/hosts
apt-get clean
"""


def recipe_key() -> str:
    return hashlib.sha256(json.dumps([RECIPE, SETUP], sort_keys=True).encode()).hexdigest()[:12]


def rootfs_path() -> Path:
    return CACHE / f"rootfs-{recipe_key()}"


def ensure_rootfs(log=print) -> Path:
    """The cached rootfs, built first if this recipe has none yet (about five minutes)."""
    root = rootfs_path()
    if (root / ".k8s-from-scratch-complete").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / f"{root.name}.building"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    log(f"building the lab rootfs {root} with debootstrap")
    subprocess.run(["debootstrap", f"--variant={RECIPE['variant']}", f"--include={','.join(RECIPE['include'])}",
                    RECIPE["suite"], str(staging), RECIPE["mirror"]], check=True, capture_output=True, text=True)
    subprocess.run(["chroot", str(staging), "sh", "-c", SETUP], check=True, capture_output=True, text=True)
    (staging / ".k8s-from-scratch-complete").write_text(f"built in {time.monotonic() - started:.0f}s\n")
    staging.rename(root)
    for old in CACHE.glob("rootfs-*"):
        if old != root and not old.name.endswith(".building"):
            log(f"removing the lab rootfs of an older recipe: {old}")
            shutil.rmtree(old, ignore_errors=True)
    return root
