"""The local lab: real Debian machines with systemd and sshd, booted with systemd-nspawn into network namespaces of
the lab's own at the stack's private addresses, plus a deployer namespace that serves the artifact mirror and runs
SSH. All traffic stays on the lab's bridge.

Machines and the mirror run as processes of their own session, so a lab outlives the command that booted it
(`./lab up`); their process ids are kept in the lab's state so that `./lab down` can power them off.

Every machine can run containers (see ../shared/reference/lab-containerd-in-nspawn-probe.md for the probe behind
this recipe). This host has cgroup v1 only and no systemd as PID 1, so each machine gets:
- a cgroup of its own in every hierarchy, `unified` included (`machine_cgroups`), joined before systemd-nspawn is
  executed: nspawn (`--keep-unit`) puts the machine where it was started, so machines never share a cgroup, and the
  kubelets' `kubepods` land inside each machine's own subtree;
- an init wrapper (`INIT_WRAPPER`) that remounts the machine's cgroup hierarchies read-write and then executes
  systemd: systemd decides at start which controllers it may use, so the remount must come first;
- every capability the host has (containerd, runc and the kubelet need most of them; CAP_SYSLOG for /dev/kmsg),
  the keyring and bpf system calls nspawn filters by default, /dev/kmsg (the kubelet's OOM watcher reads it) and a
  writable /proc/sys/net (the machine has its own network namespace; kernel.* and vm.* stay read-only: they are
  the host's, see `HOST_SYSCTLS`).
The same recipe serves every role: one recipe to reason about, and etcd and controller machines boot no slower.
"""

from __future__ import annotations

import contextlib
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
from cluster.render.podnet import vpc_resolver
from cluster.render.workers.prepare_os import SYSCTLS as WORKER_SYSCTLS
from infra.settings import SETTINGS_REFERENCE
from locallab.rootfs import CACHE, LAB_USER

DEPLOYER_IP = "10.43.0.4"
MIRROR_PORT = 8080
MIRROR_URL = f"http://{DEPLOYER_IP}:{MIRROR_PORT}"
REGISTRY_PORT = 5000
REGISTRY_URL = f"http://{DEPLOYER_IP}:{REGISTRY_PORT}"
# The lab stack keeps the default vpcCidr; its resolver (base + 2) is locallab.resolver in a namespace of its own.
RESOLVER_IP = vpc_resolver(next(spec.default for spec in SETTINGS_REFERENCE if spec.key == "vpcCidr"))
LAB_UID = 1000    # the lab user's uid in the rootfs (its first user)
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR")


CGROUP_ROOT = Path("/sys/fs/cgroup")
INIT_PATH = "/usr/local/sbin/lab-init"
# Ubuntu's systemd-resolved keeps the node's upstream servers in /run/systemd/resolve/resolv.conf, where the
# program's kubelet configuration points (resolvConf); the lab image has no systemd-resolved, so its init writes
# that file, naming the VPC resolver as on EC2.
INIT_WRAPPER = """#!/bin/sh
# The lab machine's init: make the machine's own cgroup hierarchies writable, then become systemd.
# nspawn mounts them read-only; the kubelet, containerd and runc create cgroups below them, and systemd only
# manages the controllers it can write to when it starts.
mount -o remount,rw /sys/fs/cgroup || echo "lab-init: cannot remount /sys/fs/cgroup read-write" >&2
for hierarchy in /sys/fs/cgroup/*; do
  [ -L "$hierarchy" ] && continue
  mount -o remount,bind,rw "$hierarchy" || echo "lab-init: cannot remount $hierarchy read-write" >&2
done
mkdir -p /run/systemd/resolve
echo "nameserver {resolver}" > /run/systemd/resolve/resolv.conf
exec /lib/systemd/systemd "$@"
"""
# What the kubelet checks with protectKernelDefaults and refuses to start on when they differ. They are global
# (not per network namespace) and read-only inside the machines, so the lab sets them on the host.
HOST_SYSCTLS = tuple((key, value) for key, value in WORKER_SYSCTLS if key.startswith(("vm.", "kernel.")))
# Not per namespace either: every machine's systemd, containerd and kubelet share root's inotify instances.
# kind's known issues give these numbers; they are only ever raised.
HOST_MINIMUM_SYSCTLS = (("fs.inotify.max_user_instances", 512), ("fs.inotify.max_user_watches", 524288))


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctl(key: str) -> str:
    return _sysctl_path(key).read_text().strip()


def prepare_host_sysctls() -> dict[str, str]:
    """Set what the machines' kubelets need on the host; returns the previous value of each one changed."""
    wanted = dict(HOST_SYSCTLS)
    for key, minimum in HOST_MINIMUM_SYSCTLS:
        if int(read_sysctl(key)) < minimum:
            wanted[key] = str(minimum)
    previous = {}
    for key, value in wanted.items():
        current = read_sysctl(key)
        if current != value:
            _sysctl_path(key).write_text(value)
            previous[key] = current
    return previous


def restore_host_sysctls(previous: dict[str, str]) -> None:
    for key, value in previous.items():
        _sysctl_path(key).write_text(value)


def _own_cgroups() -> dict[Path, str]:
    """Mount point of every cgroup hierarchy under /sys/fs/cgroup -> this process's cgroup in it."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[frozenset(controllers.split(",")) if controllers else frozenset()] = path
    found = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, fstype, options, *_ = line.split()
        if not mount_point.startswith(f"{CGROUP_ROOT}/"):
            continue
        if fstype == "cgroup2":
            found[Path(mount_point)] = own[frozenset()]
        elif fstype == "cgroup":
            mounted = set(options.split(","))
            key = next((k for k in own if k and k <= mounted), None)
            if key is not None:
                found[Path(mount_point)] = own[key]
    return found


def machine_cgroups(unit: str) -> list[Path]:
    """The machine's cgroup in every hierarchy: beside where the lab runs, named after the machine."""
    return [mount / own.lstrip("/") / unit for mount, own in sorted(_own_cgroups().items())]


def make_machine_cgroups(unit: str) -> list[Path]:
    paths = machine_cgroups(unit)
    for path in paths:
        path.mkdir(exist_ok=True)
        if (path / "cpuset.cpus").exists():
            # A new cpuset cgroup starts with no CPUs and no memory nodes: nothing could run in it.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (path / name).read_text().strip():
                    (path / name).write_text((path.parent / name).read_text())
    return paths


def remove_machine_cgroups(paths: list[Path | str], timeout: float = 15) -> list[Path]:
    """Once the machine's nspawn has gone: kill what still runs in its cgroups (a pod's processes live in no
    namespace of the lab's, so nothing else finds them), then remove the cgroups depth first. Returns what is still
    busy after `timeout`."""
    tops = [Path(p) for p in paths if Path(p).is_dir()]
    deadline = time.monotonic() + timeout
    while True:
        pids = {int(pid) for top in tops for procs in top.rglob("cgroup.procs")
                for pid in _read_or_empty(procs).split()}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    busy = []
    for top in tops:
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: len(d.parts),
                                reverse=True) + [top]:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                busy.append(directory)
    return busy


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:     # removed meanwhile
        return ""


def _join_cgroups(paths: list[Path]) -> None:
    """Runs in the forked child, before systemd-nspawn is executed."""
    pid = str(os.getpid())
    for path in paths:
        with open(path / "cgroup.procs", "w") as procs:
            procs.write(pid)


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
    """SIGTERM to all at once (nspawn powers its machine off, which waits for the machine's units to stop), then
    SIGKILL whatever still runs after `timeout` (what ran inside goes with remove_machine_cgroups)."""
    pids = [p for p in pids if _alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):    # gone since
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
        with contextlib.suppress(ProcessLookupError):
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
    behind (labs before machines had disks of their own booted with --ephemeral). A copy in use is locked by its nspawn (lock file `.#.#machine...lck`); only unlocked ones go."""
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
    cgroups: dict[str, list[str]] = field(default_factory=dict)   # machine name -> its cgroup in every hierarchy
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

    def start_resolver(self, names: dict[str, str]) -> int:
        """The VPC resolver's stand-in (locallab/resolver.py), answering `names` (name -> IPv4 address)."""
        if "resolver" not in self.lab.hosts:
            self.lab.add_host("resolver", RESOLVER_IP)
        log = open(self.workdir / "resolver.log", "a")
        proc = self.lab.popen("resolver", sys.executable, "-m", "locallab.resolver", "--listen", RESOLVER_IP,
                              *(f"--answer={name}={ip}" for name, ip in names.items()), stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                              cwd=Path(__file__).resolve().parents[1])
        self.pids["resolver"] = proc.pid
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

    def cgroup_name(self, name: str) -> str:
        """Unique across labs running side by side, like the network namespaces."""
        return self.lab.hosts[name]

    def _init_wrapper(self) -> Path:
        path = self.workdir / "lab-init"
        text = INIT_WRAPPER.format(resolver=RESOLVER_IP)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o755)
        return path

    @property
    def disks(self) -> Path:
        """Where each machine's root lives while the lab runs: on disk beside the image, not in /run (memory)."""
        return CACHE / "machines" / self.lab.tag

    def boot(self, name: str, ip: str, ssh_dir: Path) -> None:
        if name not in self.lab.hosts:
            self.lab.add_host(name, ip)
        self.ips[name] = ip
        Path("/run/systemd/nspawn").mkdir(parents=True, exist_ok=True)
        self.disks.mkdir(parents=True, exist_ok=True)
        unit = self.cgroup_name(name)
        remove_machine_cgroups(machine_cgroups(unit))     # a machine of this name that was killed
        cgroups = make_machine_cgroups(unit)
        self.cgroups[name] = [str(p) for p in cgroups]
        log = open(self.workdir / f"{name}.console.log", "a")
        proc = subprocess.Popen(
            # A disk of its own, copied from the image at the first boot and kept until `down`: powering a machine
            # off and on is a reboot, as on EC2, with the units, files and containers it had.
            ["systemd-nspawn", "-D", str(self.disks / name), f"--template={self.rootfs}", "--register=no",
             "--keep-unit",
             f"--network-namespace-path=/run/netns/{self.lab.hosts[name]}", f"--machine={name}", f"--hostname={name}",
             f"--bind={ssh_dir}:/home/{LAB_USER}/.ssh", "--console=passive",
             "--capability=all", "--system-call-filter=@keyring bpf", "--bind-ro=/dev/kmsg",
             f"--bind-ro={self._init_wrapper()}:{INIT_PATH}",
             # Not --boot: the init wrapper runs first and executes systemd, which powers off on SIGRTMIN+3.
             "--kill-signal=SIGRTMIN+3", INIT_PATH],
            env={**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},
            preexec_fn=lambda: _join_cgroups(cgroups),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids[name] = proc.pid

    def stop(self, name: str, timeout: float = 30) -> None:
        """Power the machine off the way nspawn asks its init to, wait for it, and remove its cgroups."""
        stop_process(self.pids.pop(name), timeout)
        remove_machine_cgroups(self.cgroups.pop(name, []))

    def stop_all(self) -> None:
        stop_processes(list(self.pids.values()))
        self.pids.clear()
        for name in list(self.cgroups):
            remove_machine_cgroups(self.cgroups.pop(name))

    def key_file(self, private_key: str) -> Path:
        digest = hashlib.sha256(private_key.encode()).hexdigest()[:12]
        if digest not in self._keys:
            path = self.workdir / f"id-{digest}"
            if not path.exists():
                path.write_text(private_key)
                path.chmod(0o600)
            self._keys[digest] = path
        return self._keys[digest]

    def ssh(self, host: str, user: str, private_key: str, command: str, stdin: str,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """What pulumi-command does for a step: connect as `user` with the stack's key and run `command`. Past
        `timeout` seconds the ssh client is killed (subprocess.TimeoutExpired), as when the deployer dies."""
        return self.lab.exec("deployer", "ssh", "-i", str(self.key_file(private_key)), *SSH_OPTIONS,
                             f"{user}@{host}", command, input=stdin, check=False, timeout=timeout)

    def local(self, command: str, stdin: str) -> subprocess.CompletedProcess:
        """What pulumi-command does for a local step: run `command` on the deployer (here: its namespace)."""
        return self.lab.exec("deployer", "sh", "-c", command, input=stdin, check=False)

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
