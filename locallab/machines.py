"""The local lab: real Debian machines with systemd and sshd, booted with systemd-nspawn into network namespaces of
the lab's own at the stack's private addresses, plus a deployer namespace that serves the artifact mirror and runs
SSH. All traffic stays on the lab's bridge.

Machines and the mirror run as processes of their own session, so a lab outlives the command that booted it
(`./lab up`); their process ids are kept in the lab's state so that `./lab down` can power them off.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from locallab.netns import Lab
from locallab.rootfs import LAB_USER

DEPLOYER_IP = "10.43.0.4"
MIRROR_PORT = 8080
MIRROR_URL = f"http://{DEPLOYER_IP}:{MIRROR_PORT}"
LAB_UID = 1000    # the lab user's uid in the rootfs (its first user)
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR")


def lab_architecture() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "debootstrap", "ssh", "ip", "go") if shutil.which(t) is None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_processes(pids: list[int], timeout: float = 45) -> None:
    """SIGTERM to all at once (nspawn powers its machine off, which waits for the machine's units to stop, and
    removes the ephemeral copy), then SIGKILL whatever still runs after `timeout` (its processes go with its network
    namespace, its copy with remove_abandoned_copies)."""
    pids = [p for p in pids if _alive(p)]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            try:   # our own child: reap it, or it lingers as a zombie that still counts as alive
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    pids.remove(pid)
                    continue
            except ChildProcessError:
                pass
            if not _alive(pid):
                pids.remove(pid)
        time.sleep(0.2)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def stop_process(pid: int, timeout: float = 45) -> None:
    stop_processes([pid], timeout)


NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")


def remove_abandoned_propagation_dirs(names: list[str]) -> list[Path]:
    """systemd-nspawn's per-machine mount propagation directory, which a killed nspawn leaves behind; kept while a
    machine of that name (another lab's, say) still runs."""
    running = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"systemd-nspawn"):
            running |= {a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"--machine=")}
    removed = []
    for name in names:
        directory = NSPAWN_PROPAGATE / name
        if directory.is_dir() and name not in running:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def remove_abandoned_copies(rootfs: Path) -> list[Path]:
    """The ephemeral copies (`.#machine.<image><random>` beside the image) that a killed systemd-nspawn left
    behind. A copy in use is locked by its nspawn (lock file `.#.#machine...lck`); only unlocked ones go."""
    removed = []
    for copy in rootfs.parent.glob(f".#machine.{rootfs.name}*"):
        lock = copy.with_name(f".#{copy.name}.lck")
        if lock.exists():
            with open(lock, "a") as f:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue    # a running machine's
        shutil.rmtree(copy, ignore_errors=True)
        lock.unlink(missing_ok=True)
        removed.append(copy)
    return removed


@dataclass
class Machines:
    lab: Lab
    rootfs: Path
    workdir: Path
    pids: dict[str, int] = field(default_factory=dict)     # machine name -> systemd-nspawn pid
    ips: dict[str, str] = field(default_factory=dict)
    _keys: dict[str, Path] = field(default_factory=dict)

    def start_deployer(self, mirror: Path) -> int:
        if "deployer" not in self.lab.hosts:
            self.lab.add_host("deployer", DEPLOYER_IP)
        log = open(self.workdir / "mirror.log", "a")
        proc = self.lab.popen("deployer", sys.executable, "-m", "http.server", str(MIRROR_PORT), "--bind",
                              DEPLOYER_IP, "--directory", str(mirror), stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids["mirror"] = proc.pid
        return proc.pid

    def authorize(self, public_key: str) -> Path:
        ssh_dir = self.workdir / "authorized"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(public_key.strip() + "\n")
        keys.chmod(0o600)
        os.chown(ssh_dir, LAB_UID, LAB_UID)
        os.chown(keys, LAB_UID, LAB_UID)
        return ssh_dir

    def boot(self, name: str, ip: str, ssh_dir: Path) -> None:
        if name not in self.lab.hosts:
            self.lab.add_host(name, ip)
        self.ips[name] = ip
        Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{name}.console.log", "a")
        proc = subprocess.Popen(
            ["systemd-nspawn", "-D", str(self.rootfs), "--boot", "--ephemeral", "--register=no", "--keep-unit",
             f"--network-namespace-path=/run/netns/{self.lab.hosts[name]}", f"--machine={name}", f"--hostname={name}",
             f"--bind={ssh_dir}:/home/{LAB_USER}/.ssh", "--console=passive",
             # Routes and iptables rules inside the machine's own network namespace, as on a real node.
             "--capability=CAP_NET_ADMIN,CAP_NET_RAW"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids[name] = proc.pid

    def stop(self, name: str, timeout: float = 30) -> None:
        """Power the machine off the way nspawn asks its init to, and wait for it."""
        stop_process(self.pids.pop(name), timeout)

    def stop_all(self) -> None:
        stop_processes(list(self.pids.values()))
        self.pids.clear()

    def key_file(self, private_key: str) -> Path:
        digest = hashlib.sha256(private_key.encode()).hexdigest()[:12]
        if digest not in self._keys:
            path = self.workdir / f"id-{digest}"
            if not path.exists():
                path.write_text(private_key)
                path.chmod(0o600)
            self._keys[digest] = path
        return self._keys[digest]

    def ssh(self, host: str, user: str, private_key: str, command: str, stdin: str) -> subprocess.CompletedProcess:
        """What pulumi-command does for a step: connect as `user` with the stack's key and run `command`."""
        return self.lab.exec("deployer", "ssh", "-i", str(self.key_file(private_key)), *SSH_OPTIONS,
                             f"{user}@{host}", command, input=stdin, check=False)

    def _answers(self, host: str, private_key: str, user: str) -> bool:
        return self.ssh(host, user, private_key, "true", "").returncode == 0

    def boot_all(self, nodes: dict[str, str], ssh_dir: Path, private_key: str, user: str,
                 timeout: float = 60, attempts: int = 3) -> float:
        """Boot every machine and wait until each answers SSH as `user`. A machine that does not answer in time is
        powered off and booted again (on this 2-core sandbox, one boot in a few dozen fails to finish
        systemd-user-sessions, which keeps unprivileged users out), like a cloud instance that fails its status
        check; after `attempts` boots it is an error."""
        started = time.monotonic()
        for name, ip in nodes.items():
            self.boot(name, ip, ssh_dir)
            time.sleep(0.5)   # nine boots at once on two cores: stagger them a little
        waiting = dict(nodes)
        for attempt in range(1, attempts + 1):
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                for name, ip in list(waiting.items()):
                    if self._answers(ip, private_key, user):
                        del waiting[name]
                if waiting:
                    time.sleep(1)
            if not waiting:
                return time.monotonic() - started
            if attempt < attempts:
                for name, ip in waiting.items():
                    print(f"lab: {name} does not answer SSH after {timeout:.0f}s; booting it again")
                    self.stop(name)
                    self.boot(name, ip, ssh_dir)
        raise AssertionError(f"lab machines not answering SSH after {attempts} boots: {sorted(waiting)}; "
                             f"consoles in {self.workdir}")
