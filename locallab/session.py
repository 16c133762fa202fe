"""One lab: the lab stack run under realistic mocks, its machines booted, its remote steps replayed.

`up` builds what is missing (the Go build, the rootfs, the mirror's archives), boots the machines and replays the
program; the lab then keeps running until `down`. Between commands its state (machine process ids, namespaces,
the replay state, the stack's keys) lives under STATE_ROOT/<tag>. Used by `./lab`, the lab's integration tests
and bench/lab_bench.py.

The stack runs under the mocks the tests use (simulator/program.py): they stand in for AWS and mint real keys
and certificates, which the lab keeps so that a second run of the program gives the same ones, as Pulumi state
would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlparse

from locallab import build as go_build
from locallab import images, registry, releases
from cluster.render import podcidrs
from infra.settings import parse_settings
from locallab.machines import (DEPLOYER_IP, MIRROR_URL, REGISTRY_PORT, REGISTRY_URL, SSH_OPTIONS, Machines, lab_architecture, prepare_host_sysctls,
                               remove_abandoned_copies, remove_abandoned_propagation_dirs, remove_machine_cgroups,
                               restore_host_sysctls, stop_processes)
from locallab.netns import Lab, remove_stale
from locallab.mirror import publish
from locallab.replay import Replayer, Report, Row, Step, collect
from locallab.rootfs import CACHE, LAB_USER, ensure_rootfs, rootfs_path
from simulator.program import ClusterMocks, ProgramRun, run_program

STATE_ROOT = Path(os.environ.get("K8S_FROM_SCRATCH_LAB_STATE", "/run/k8s-from-scratch-lab"))


def lab_config(*, versions: dict, arch: str, etcd: int = 3, controllers: int = 3, workers: int = 3) -> dict:
    """The lab stack: the stack's own addresses, host routing, artifacts from the lab's mirror, pinned by the
    checksums of what the lab built (`versions`, as a mirror's own build would be given), and images from the
    registry in the deployer namespace. The machines only have cgroup v1 and share this host's kernel, which the
    two worker settings say (docs/lab.md)."""
    # Instance types of the architecture: the program checks them against it before anything, lab or not.
    small, medium = {"amd64": ("t3.small", "t3.medium"), "arm64": ("t4g.small", "t4g.medium")}[arch]
    return {
        "adminCidrs": ["10.43.0.0/20"], "clusterName": "lab", "architecture": arch, "podRouting": "host",
        "etcd": {"count": etcd, "instanceType": small}, "controllers": {"count": controllers, "instanceType": medium},
        "workers": {"count": workers, "instanceType": medium, "allowCgroupV1": True, "systemContainer": True},
        "downloadBaseUrl": MIRROR_URL, "versions": versions, "imageRegistryMirror": REGISTRY_URL,
    }


def _lab_addresses(args) -> dict:
    # The lab has no public addresses: SSH reaches each machine at its private address, as through a VPN.
    if args.typ == "aws:ec2/instance:Instance":
        return {"publicIp": args.inputs.get("privateIp")}
    return {}


def run_lab_program(config: dict, key_material: dict, pod_cidrs: dict[str, str] | None = None,
                    existing: ProgramRun | None = None, *, registered: dict[str, str] | None = None,
                    generations: dict[str, int] | None = None,
                    deployer: Callable[[str, str], str] | None = None) -> ProgramRun:
    """`pod_cidrs` and `registered`: what the workers' read-pod-cidr steps answered on the lab (None: the mocks' own
    answer). `existing`: what AWS holds when this update begins (None: a first creation). `generations`: how many
    times each node's machine was made anew. `deployer`: runs the program's live read of the API for real."""
    return run_program(config, stack="lab", mocks=ClusterMocks(
        extra_outputs=_lab_addresses, key_material=key_material, pod_cidrs=pod_cidrs, existing=existing,
        registered=registered, generations=generations, deployer=deployer), lab_machines=True)


def _save_keys(key_material: dict) -> list:
    return [[list(k), v] for k, v in key_material.items()]


def _load_keys(saved: list) -> dict:
    return {tuple(k): v for k, v in saved}


class UpdateKilled(BaseException):
    """The deployer running `pulumi up` died (a drill): not an error of a step, so nothing catches it."""


@dataclass
class LabSession:
    tag: str
    state_dir: Path
    config: dict
    run: ProgramRun
    machines: Machines
    replayer: Replayer
    key_material: dict
    build: go_build.Build
    timings: dict[str, float] = field(default_factory=dict)
    first_report: Report | None = None
    pod_cidrs: dict[str, str] | None = None
    registered: dict[str, str] | None = None        # when each worker's Node was created, as its reader read it
    # What AWS held when the current update began: the instances the program's EC2 lookups find, and the bootstrapped
    # tags of the nodes whose health check passed (rolling restarts chain only those). None during the first creation.
    existing: ProgramRun | None = None
    generations: dict[str, int] = field(default_factory=dict)   # node -> times its machine was made anew
    killed_after: list[str] = field(default_factory=list)       # the steps after which an update was killed

    @property
    def nodes(self) -> dict[str, str]:
        """node name -> address, every role."""
        return {name: n["privateIp"] for role in self.run.outputs["nodes"].values() for name, n in role.items()}

    @property
    def private_key(self) -> str:
        return self.run.outputs["sshPrivateKey"]

    def on(self, node: str, script: str) -> subprocess.CompletedProcess:
        """Run a script as root on a lab machine, over SSH with the stack's key."""
        return self.machines.ssh(self.nodes[node], LAB_USER, self.private_key, "sudo bash -s", script)

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """The built kubectl with the stack's admin kubeconfig, from the deployer (the API's load balancer name
        resolves to the first controller there)."""
        return self.machines.lab.exec("deployer", str(self.build.binary("kubectl")), "--kubeconfig",
                                      str(self.state_dir / "admin.kubeconfig"), *args, input=stdin, check=False)

    def restart(self, node: str, timeout: float = 120) -> float:
        """Power a machine off and on again (a reboot: its disk stays), until it answers SSH; returns the seconds."""
        started = time.monotonic()
        self.machines.stop(node)
        self.machines.boot(node, self.nodes[node], self.state_dir / "authorized")
        self.save()
        deadline = started + timeout
        while self.on(node, "true").returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{node} does not answer SSH {timeout:.0f}s after its restart")
            time.sleep(1)
        return time.monotonic() - started

    def resize(self, workers: int, log=print) -> Report:
        """`pulumi up` after changing workers.count on the running lab: machines for new workers boot first (as the
        engine creates instances), the program's steps replay (a leaving worker's removal step drains it and deletes
        its Node), then the leaving workers' machines power off (as their instances are terminated)."""
        self.config = {**self.config, "workers": {**self.config["workers"], "count": workers}}
        self.new_update()
        nodes = self.nodes
        new = {name: ip for name, ip in nodes.items() if name not in self.machines.pids}
        if new:
            log(f"lab: booting {', '.join(new)}")
            self.machines.boot_all(new, self.state_dir / "authorized", self.private_key, LAB_USER)
            self.save()
        report = replay_program(self)
        for name in [n for n in self.machines.ips if n not in nodes and n in self.machines.pids]:
            log(f"lab: powering off {name}, which the program no longer declares, and removing its disk")
            self.machines.stop(name)
            self.machines.ips.pop(name, None)
            shutil.rmtree(self.machines.disks / name, ignore_errors=True)
        _write_deployer_files(self)
        self.save()
        return report

    def upgrade(self, kubernetes: str, log=print) -> Report:
        """`pulumi up` after changing the stack's `versions.kubernetes` on the running lab: that release is built
        (cached) and served by the mirror beside the running one, and the program's steps replay as an update
        (each node switches to it in its own start step, in the skew order)."""
        self.build = go_build.ensure_build(dataclasses.replace(self.build.versions, kubernetes=kubernetes), log=log)
        versions = publish(go_build.BUILD_ROOT / "mirror", self.build.versions.program_versions(), self.build.binaries,
                           self.config["architecture"])
        self.config = {**self.config, "versions": versions}
        self.new_update()
        report = replay_program(self)
        _write_deployer_files(self)
        self.save()
        return report

    def new_update(self, gone: Sequence[str] = ()) -> ProgramRun:
        """The program at the start of another `pulumi up` (after a change of config or keys): the machines of the
        last run are the instances AWS reports, less the `gone` nodes' (terminated, then `pulumi refresh`), so a
        change of nodes that came up rolls."""
        self.existing = self.aws_view(self.run, gone)
        self.run = self.rerun_program()
        return self.run

    def rerun_program(self) -> ProgramRun:
        """The same stack again within the same update (the same keys, as Pulumi would keep them in state, and the
        same instances found running when the update began); its live read of the API runs on the deployer."""
        return run_lab_program(self.config, self.key_material, self.pod_cidrs, existing=self.existing,
                               registered=self.registered, generations=self.generations,
                               deployer=lambda command, stdin: self.machines.local(command, stdin).stdout)

    def aws_view(self, run: ProgramRun, gone: Sequence[str] = ()) -> ProgramRun:
        """What AWS holds after `run`'s update as far as the replay got: a node's bootstrapped tag only once every
        step it waits for ran (the replay, unlike the mocks, can stop part way), and nothing of the `gone` nodes'
        instances."""
        done = set(self.replayer.state)
        steps = {r.urn for r in run.resources if r.type.startswith("command:")}
        lost = {r.urn for r in run.of_type("aws:ec2/instance:Instance")
                if re.search(r"^hostname: (\S+)$", r.inputs.get("userData", ""), re.M).group(1) in gone}
        kept = [r for r in run.resources if r.urn not in lost and not (
            r.type == "aws:ec2/tag:Tag" and ((r.edges() & steps) - done or r.edges() & lost))]
        return ProgramRun(kept, run.outputs, run.secret_outputs)

    def recreate(self, node: str, log=print) -> Report:
        """A node's machine terminated out of band, `pulumi refresh`, then `pulumi up`: its machine powers off and
        loses its disk, a new one (a new instance id) boots at the same address, and the program's steps replay."""
        log(f"lab: {node}'s machine is terminated; a new one boots at {self.nodes[node]}")
        self.machines.stop(node)
        shutil.rmtree(self.machines.disks / node, ignore_errors=True)
        self.generations[node] = self.generations.get(node, 0) + 1
        self.new_update(gone=[node])
        self.machines.boot_all({node: self.nodes[node]}, self.state_dir / "authorized", self.private_key, LAB_USER)
        self.save()
        return replay_program(self)

    def replay(self, run: ProgramRun | None = None, **kwargs) -> Report:
        report = self.replayer.replay(collect(run or self.run), **kwargs)
        self.save()
        return report

    def replay_killed_after(self, step_name: str) -> bool:
        """`pulumi up` killed as soon as `step_name` is recorded: the steps in flight then end unrecorded (as the
        engine's pending operations), and nothing after runs. False when the update ended before that step ran."""
        def kill(row: Row) -> None:
            self.step_done(row)
            if row.step == step_name and row.status == "replayed":
                raise UpdateKilled(step_name)

        self.replayer.on_step = kill
        try:
            replay_program(self)
            return False
        except UpdateKilled:
            return True
        finally:
            self.replayer.on_step = self.step_done
            self.save()

    def step_done(self, row: Row) -> None:
        """The replayer's report of a step: once one is recorded, the lab's state is saved, as the engine saves its
        snapshot after each step (a replay killed part way keeps what finished)."""
        if row.status != "running":
            self.save()

    def save(self) -> None:
        state = {
            "tag": self.tag, "config": self.config, "rootfs": str(self.machines.rootfs),
            "build": {"versions": self.build.versions.__dict__,
                      "groups": {g: str(d) for g, d in self.build.groups.items()}},
            "kubectl": str(self.build.binary("kubectl")),
            "namespaces": self.machines.lab.hosts, "addresses": self.machines.lab.addresses,
            "pids": self.machines.pids, "ips": self.machines.ips, "cgroups": self.machines.cgroups,
            "nodes": self.nodes,
            "replay_state": self.replayer.state, "replay_deletes": self.replayer.deletes,
            "replay_ids": self.replayer.ids,
            "served": sorted(self.replayer.served),
            "keys": _save_keys(self.key_material), "timings": self.timings, "pod_cidrs": self.pod_cidrs,
            "registered": self.registered, "generations": self.generations,
            "replay_old_halves": self.replayer.old_halves,
        }
        path = self.state_dir / "state.json"
        path.write_text(json.dumps(state, indent=1))
        path.chmod(0o600)


def save_report(state_dir: Path, report: Report) -> None:
    """The first replay's report, as a table for people and with every step's output for attach()."""
    (state_dir / "replay-report.txt").write_text(report.table() + "\n")
    path = state_dir / "replay-report.json"
    path.write_text(json.dumps([dataclasses.asdict(r) for r in report.rows]))
    path.chmod(0o600)


def load_report(state_dir: Path) -> Report | None:
    path = state_dir / "replay-report.json"
    return Report([Row(**r) for r in json.loads(path.read_text())]) if path.exists() else None


def _state_dir(tag: str) -> Path:
    return STATE_ROOT / tag


def _write_deployer_files(session: LabSession) -> None:
    """The admin kubeconfig as the stack exports it, and a hosts file for the deployer namespace (`ip netns exec`
    mounts /etc/netns/<namespace>/hosts over /etc/hosts) that resolves the API load balancer's name to the first
    controller, as the load balancer would forward."""
    kubeconfig = session.run.outputs["kubeconfig"]
    path = session.state_dir / "admin.kubeconfig"
    path.write_text(kubeconfig)
    path.chmod(0o600)
    (session.state_dir / "ssh_key").write_text(session.private_key)
    (session.state_dir / "ssh_key").chmod(0o600)
    lb_name = urlparse(session.run.outputs["apiEndpoint"] if "://" in session.run.outputs["apiEndpoint"]
                       else f"https://{session.run.outputs['apiEndpoint']}").hostname
    first_controller = next(ip for name, ip in session.nodes.items() if name.startswith("controller-"))
    etc = Path("/etc/netns") / session.machines.lab.hosts["deployer"]
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text(f"127.0.0.1 localhost\n{first_controller} {lb_name}\n")


HOST_SYSCTLS_FILE = STATE_ROOT / "host-sysctls.json"
DOWN_GRACE_SECONDS = 15


def hold_host_sysctls(tag: str) -> None:
    """Set the host sysctls the machines' kubelets need (locallab.machines.HOST_SYSCTLS). They are global, so one
    record serves every lab on this host: the values from before the first lab, and which labs hold them."""
    STATE_ROOT.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = json.loads(HOST_SYSCTLS_FILE.read_text()) if HOST_SYSCTLS_FILE.exists() else {"previous": {}, "labs": []}
    for key, value in prepare_host_sysctls().items():
        record["previous"].setdefault(key, value)
    record["labs"] = sorted(set(record["labs"]) | {tag})
    HOST_SYSCTLS_FILE.write_text(json.dumps(record, indent=1))


def release_host_sysctls(tag: str, log=lambda message: None) -> None:
    """The last lab to go puts the host's own values back."""
    if not HOST_SYSCTLS_FILE.exists():
        return
    record = json.loads(HOST_SYSCTLS_FILE.read_text())
    record["labs"] = [t for t in record["labs"] if t != tag and running(t)]
    if record["labs"]:
        HOST_SYSCTLS_FILE.write_text(json.dumps(record, indent=1))
        return
    restore_host_sysctls(record["previous"])
    if record["previous"]:
        log("lab: host sysctls restored: " + ", ".join(f"{k}={v}" for k, v in record["previous"].items()))
    HOST_SYSCTLS_FILE.unlink()


def running(tag: str = "lab") -> bool:
    state = _state_dir(tag) / "state.json"
    if not state.exists():
        return False
    pids = json.loads(state.read_text())["pids"]
    return bool(pids) and all(Path(f"/proc/{pid}").exists() for pid in pids.values())


def attach(tag: str = "lab") -> LabSession:
    """The running lab `tag`, from its saved state (the program is run again, with the same keys)."""
    state_dir = _state_dir(tag)
    state = json.loads((state_dir / "state.json").read_text())
    key_material = _load_keys(state["keys"])
    lab = Lab(tag, hosts=dict(state["namespaces"]), addresses=dict(state["addresses"]))
    machines = Machines(lab, Path(state["rootfs"]), state_dir, pids={k: int(v) for k, v in state["pids"].items()},
                        ips=dict(state["ips"]), cgroups=dict(state.get("cgroups", {})))
    replayer = Replayer(machines.ssh, local=machines.local, served=set(state["served"]))
    replayer.state = dict(state["replay_state"])
    replayer.deletes = dict(state.get("replay_deletes", {}))
    replayer.ids = dict(state.get("replay_ids", {}))
    replayer.old_halves = list(state.get("replay_old_halves", []))
    known = {f.name for f in dataclasses.fields(go_build.BuildVersions)}
    build = go_build.Build(go_build.BuildVersions(**{k: v for k, v in state["build"]["versions"].items() if k in known}),
                           {g: Path(d) for g, d in state["build"]["groups"].items()}, {})
    generations = {k: int(v) for k, v in (state.get("generations") or {}).items()}
    # Another update of a running lab: every machine of its last run is an instance AWS reports.
    last = run_lab_program(state["config"], key_material, state["pod_cidrs"], registered=state.get("registered"),
                           generations=generations)
    session = LabSession(tag, state_dir, state["config"], last, machines, replayer, key_material, build,
                         dict(state["timings"]), first_report=load_report(state_dir), pod_cidrs=state["pod_cidrs"],
                         registered=state.get("registered"), generations=generations)
    replayer.on_step = session.step_done
    session.new_update()
    return session


@dataclass
class Phase:
    """One named part of `./lab up`, timed and announced as it runs (kind's create lists its actions the same way).
    `timing`: the key of its figure in the lab's timings."""
    name: str
    timing: str
    action: Callable[[], None]


def run_phases(phases: list[Phase], timings: dict[str, float], log=print) -> None:
    for number, phase in enumerate(phases, 1):
        log(f"[{number}/{len(phases)}] {phase.name}")
        started = time.monotonic()
        phase.action()
        timings[phase.timing] = time.monotonic() - started
        log(f"[{number}/{len(phases)}] {phase.name}: {timings[phase.timing]:.0f}s")


def up(*, tag: str = "lab", etcd: int | None = None, controllers: int | None = None, workers: int | None = None,
       kubernetes: str | None = None, log=print, kill_first_up_after: Sequence[str] = ()) -> LabSession:
    """Build what is missing, boot the lab and replay the program; a lab already running is replayed again
    (only what changed runs), with another worker count when `workers` differs from its own. A count left out
    is 3 for a new lab and the running lab's own otherwise. `kubernetes`: a new lab's Kubernetes release (default:
    the program's pin); a running lab is upgraded to it (LabSession.upgrade). `kill_first_up_after` (a drill): a new
    lab's first `pulumi up` is killed once the first of these steps is recorded, the next once the second is, and so
    on; `session.killed_after` lists those that were."""
    if running(tag):
        return _update(tag, etcd, controllers, workers, kubernetes, log)
    etcd, controllers, workers = etcd or 3, controllers or 3, workers or 3
    down(tag)   # whatever a lab of this tag left behind
    state_dir = _state_dir(tag)
    arch = lab_architecture()
    mirror = go_build.BUILD_ROOT / "mirror"
    timings: dict[str, float] = {}
    made: dict = {}

    def binaries() -> None:
        made["binaries"] = releases.lab_binaries(arch, mirror, log=log, kubernetes=kubernetes)
        log(f"binaries: {made['binaries'].source}")

    def network() -> None:
        config = lab_config(versions=made["binaries"].versions_setting, arch=arch, etcd=etcd,
                            controllers=controllers, workers=workers)
        key_material: dict = {}
        run = run_lab_program(config, key_material)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        machines = Machines(Lab(tag).__enter__(), rootfs_path(), state_dir)   # built in `machines`
        replayer = Replayer(machines.ssh, local=machines.local, served=set(made["binaries"].served))
        made["session"] = session = LabSession(tag, state_dir, config, run, machines, replayer, key_material,
                                               made["binaries"].build, timings)
        session.replayer.on_step = session.step_done
        hold_host_sysctls(tag)
        machines.start_deployer(mirror)
        machines.start_resolver({parse_settings(config, lab_machines=True).dns_check_name: DEPLOYER_IP})
        _write_deployer_files(session)

    def images() -> None:
        session = made["session"]
        serve_images(session.machines, session.build, state_dir, log)

    def machines() -> None:
        session = made["session"]
        ensure_rootfs(log=log)
        public_key = session.run.of_type("aws:ec2/keyPair:KeyPair")[0].inputs["publicKey"]
        ssh_dir = session.machines.authorize(public_key)
        session.machines.boot_all(session.nodes, ssh_dir, session.private_key, LAB_USER)
        session.save()

    def replay() -> None:
        session = made["session"]
        for step_name in kill_first_up_after:
            if session.replay_killed_after(step_name):
                session.killed_after.append(step_name)
            session.new_update()
        session.first_report = replay_program(session)
        save_report(state_dir, session.first_report)
        session.save()

    phases = [Phase("binaries: the publishers' release archives, or a build from Go modules", "build", binaries),
              Phase("network: namespaces, the deployer's mirror and the VPC resolver's stand-in", "network", network),
              Phase("images: pause, CoreDNS, nginx, busybox in the deployer's registry", "images", images),
              Phase(f"machines: the Debian image, then {etcd} etcd, {controllers} controllers, {workers} workers "
                    "booted", "boot", machines),
              Phase("replay: the program's remote steps, as one pulumi up", "replay", replay),
              Phase("checks: every worker a Ready node, nginx on every worker's NodePort", "checks",
                    lambda: check(made["session"], log))]
    try:
        run_phases(phases, timings, log)
    except BaseException:
        if "session" in made:
            log(f"lab: bringing the lab up failed; consoles and logs in {state_dir} until `./lab down`")
            made["session"].save()
        raise
    made["session"].save()      # with every phase's time, for `./lab status`
    return made["session"]


def _update(tag: str, etcd: int | None, controllers: int | None, workers: int | None, kubernetes: str | None,
            log) -> LabSession:
    """`./lab up` on a running lab: another `pulumi up` (an upgrade when `kubernetes` names another release, a
    resize when the worker count changes)."""
    session = attach(tag)
    shape = {role: session.config[role]["count"] for role in ("etcd", "controllers", "workers")}
    for role, wanted in (("etcd", etcd), ("controllers", controllers)):
        if wanted is not None and wanted != shape[role]:
            raise SystemExit(f"lab {tag} runs {shape[role]} {role}; the lab changes only the worker count of a "
                             f"running lab: `./lab down` first for {wanted} {role}")
    upgrade = kubernetes is not None and kubernetes != session.build.versions.kubernetes
    resize = workers is not None and workers != shape["workers"]
    if upgrade and resize:
        raise SystemExit(f"lab {tag}: upgrade to {kubernetes} and resize to {workers} workers in two `./lab up`s")

    def replay() -> None:
        if upgrade:
            session.first_report = session.upgrade(kubernetes, log=log)
        else:
            session.first_report = session.resize(workers, log=log) if resize else replay_program(session)
        save_report(session.state_dir, session.first_report)
        session.save()

    name = (f"replay: upgrade to Kubernetes {kubernetes}, in the skew order" if upgrade else
            f"replay: resize to {workers} workers" if resize else "replay: the program again, only what changed runs")
    run_phases([Phase(name, "replay", replay),
                Phase("checks: every worker a Ready node, nginx on every worker's NodePort", "checks",
                      lambda: check(session, log))], session.timings, log)
    session.save()
    return session


def check(session: LabSession, log=print) -> None:
    """What a person would look at first: every worker a Ready node, and nginx answering on every worker's
    NodePort from the deployer (the smoke test's page, fetched again now)."""
    nodes = json.loads(session.kubectl("get", "nodes", "-o", "json").stdout or "{}").get("items", [])
    ready = {n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
    workers = {name: ip for name, ip in session.nodes.items() if name.startswith("worker-")}
    if set(workers) - ready:
        raise RuntimeError(f"lab check: not Ready: {', '.join(sorted(set(workers) - ready))}")
    for name, ip in workers.items():
        page = session.machines.lab.exec("deployer", "curl", "-s", "-m", "10", f"http://{ip}:30080/", check=False)
        if "Welcome to nginx!" not in page.stdout:
            raise RuntimeError(f"lab check: {name} did not answer \"Welcome to nginx!\" on {ip}:30080")
    log(f"checks: {len(workers)} workers Ready, nginx answered on each")


def serve_images(machines: Machines, build: go_build.Build, state_dir: Path, log=print) -> None:
    """The cluster's images (pause, CoreDNS, nginx, busybox, metrics-server), built in the lab, in a registry on the
    deployer at REGISTRY_URL: the lab stack's imageRegistryMirror."""
    built = images.ensure_images(build.binaries, log=log)
    pid = registry.start_registry(machines.lab, "deployer", storage=state_dir / "registry",
                                  workdir=state_dir, port=REGISTRY_PORT)
    machines.pids["registry"] = pid
    registry.push_images(machines.lab, "deployer", REGISTRY_URL, built.values())


def replay_program(session: LabSession) -> Report:
    """Replay the program as one `pulumi up` would run it. Under mocks the program ran with the mocks' answers to
    the workers' read-pod-cidr steps, but in an update the steps after them use their real answers: so the steps
    that do not wait for them are replayed first, then the program runs again with the answers they gave (as Pulumi
    would keep them in state) and the rest is replayed. One report: each step's row from the replay that ran it."""
    steps = collect(session.run)
    readers = [s for s in steps if s.name.endswith("-read-pod-cidr")]
    waiting = set().union(*(_waiting_for(r, steps) for r in readers))
    first = session.replayer.replay([s for s in steps if s.urn not in waiting])
    rows = {r.step: r for r in first.rows}
    read = [p for s in readers if rows.get(s.name) and rows[s.name].status == "replayed"
            for p in podcidrs.parse_reader_output(rows[s.name].output)]
    if read:
        session.pod_cidrs = {**(session.pod_cidrs or {}), **{r.name: r.pod_cidr for r in read}}
        session.registered = {**(session.registered or {}), **{r.name: r.registered for r in read}}
        session.run = session.rerun_program()
    second = session.replayer.replay(collect(session.run))
    for row in second.rows:
        if row.step not in rows or row.status != "unchanged":
            rows[row.step] = row
    # As the engine ends an update: the steps the program no longer declares are deleted (their delete commands run).
    deleted = session.replayer.delete_absent(collect(session.run))
    session.save()
    return Report([rows[s.name] for s in collect(session.run)] + deleted.rows)


def _waiting_for(step: Step, steps: list[Step]) -> set[str]:
    """The urns of every step that waits for `step`, directly or through others."""
    waiting: set[str] = set()
    grew = True
    while grew:
        grew = False
        for s in steps:
            if s.urn not in waiting and s.dependencies & (waiting | {step.urn}):
                waiting.add(s.urn)
                grew = True
    return waiting


def down(tag: str = "lab", log=lambda message: None) -> None:
    """Power off every machine, stop the mirror, remove the namespaces, the deployer's hosts file and the state."""
    state_dir = _state_dir(tag)
    state_file = state_dir / "state.json"
    rootfs, machines = None, []
    if state_file.exists():
        state = json.loads(state_file.read_text())
        log(f"lab: powering off {', '.join(state.get('pids', {}))}")
        # The machines and their disks go: a short wait for a clean power-off, then whatever still runs in a
        # machine's cgroups is killed (nine machines powering off at once on two cores can take a minute).
        stop_processes([int(pid) for pid in state.get("pids", {}).values()], timeout=DOWN_GRACE_SECONDS)
        rootfs = Path(state["rootfs"]) if state.get("rootfs") else None
        machines = [name for name in state.get("pids", {}) if name != "mirror"]
    remove_stale(tag)     # also kills whatever still ran in the machines' namespaces
    if state_file.exists():
        for name, paths in state.get("cgroups", {}).items():
            busy = remove_machine_cgroups(paths)
            if busy:
                log(f"lab: cgroups of {name} still in use, left in place: {', '.join(map(str, busy))}")
    if rootfs:
        for copy in remove_abandoned_copies(rootfs):
            log(f"lab: removed {copy}, left by a machine that did not power off in time")
    remove_abandoned_propagation_dirs(machines)
    disks = CACHE / "machines" / tag
    if disks.exists():
        shutil.rmtree(disks, ignore_errors=True)
        log(f"lab: removed the machines' disks in {disks}")
    netns_etc = Path("/etc/netns")
    for etc in netns_etc.glob(f"k8sfs-{tag}-*") if netns_etc.exists() else []:
        shutil.rmtree(etc, ignore_errors=True)
    with contextlib.suppress(OSError):
        netns_etc.rmdir()     # only when empty: nothing else keeps files there
    shutil.rmtree(state_dir, ignore_errors=True)
    release_host_sysctls(tag, log)


def status(tag: str = "lab") -> str:
    state_file = _state_dir(tag) / "state.json"
    if not state_file.exists():
        return f"lab {tag}: not running"
    state = json.loads(state_file.read_text())
    lines = [f"lab {tag}: state in {_state_dir(tag)}"]
    for name, pid in state["pids"].items():
        alive = Path(f"/proc/{pid}").exists()
        lines.append(f"  {name:<14} {state['ips'].get(name, ''):<12} {'running' if alive else 'STOPPED'}")
    replayed = len(state["replay_state"])
    lines.append(f"  {replayed} steps replayed; timings (s): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in state["timings"].items()))
    return "\n".join(lines)


def ssh_command(tag: str, node: str, command: list[str]) -> list[str]:
    """The command line that opens SSH to a lab machine from the deployer namespace, as the lab user."""
    state_dir = _state_dir(tag)
    state = json.loads((state_dir / "state.json").read_text())
    if node not in state["nodes"]:
        raise SystemExit(f"lab: no node {node!r}; nodes: {', '.join(state['nodes'])}")
    tty = ["-t"] if not command and os.isatty(0) else []
    return ["ip", "netns", "exec", state["namespaces"]["deployer"], "ssh", *tty, "-i", str(state_dir / "ssh_key"),
            *SSH_OPTIONS, f"{LAB_USER}@{state['nodes'][node]}", *command]


def kubectl_command(tag: str, args: list[str]) -> list[str]:
    state_dir = _state_dir(tag)
    state = json.loads((state_dir / "state.json").read_text())
    return ["ip", "netns", "exec", state["namespaces"]["deployer"], state["kubectl"],
            "--kubeconfig", str(state_dir / "admin.kubeconfig"), *args]


@contextlib.contextmanager
def lab_session(*, etcd: int = 3, controllers: int = 3, workers: int = 3, tag: str = "lab",
                kubernetes: str | None = None, kill_first_up_after: Sequence[str] = ()) -> Iterator[LabSession]:
    """A lab for the length of a `with` block (tests, bench), removed afterwards whatever happens."""
    down(tag)
    try:
        yield up(tag=tag, etcd=etcd, controllers=controllers, workers=workers, kubernetes=kubernetes,
                 kill_first_up_after=kill_first_up_after)
    finally:
        down(tag)
