"""One lab session: the lab stack run under realistic mocks, its machines booted, its remote steps replayed.

Used by the lab's integration tests and by bench/lab_bench.py.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.integration.netns import Lab
from tests.lab.machines import MIRROR_URL, Machines, lab_architecture, repack_debian_etcd
from tests.lab.replay import Replayer, Report, collect
from tests.lab.rootfs import ensure_rootfs
from tests.support.program import ClusterMocks, ProgramRun, run_program


def lab_config(*, etcd_version: str, etcd_sha256: str, arch: str, etcd: int = 3, controllers: int = 3,
               workers: int = 3) -> dict:
    """The lab stack: the stack's own addresses, host routing, artifacts from the lab's mirror, and etcd as
    Debian ships it with its own checksum."""
    return {
        "adminCidrs": ["10.43.0.0/20"], "clusterName": "lab", "architecture": arch, "podRouting": "host",
        "etcd": {"count": etcd}, "controllers": {"count": controllers}, "workers": {"count": workers},
        "downloadBaseUrl": MIRROR_URL,
        "versions": {"etcd": {"version": etcd_version, "sha256": {arch: etcd_sha256}}},
    }


def _lab_addresses(args) -> dict:
    # The lab has no public addresses: SSH reaches each machine at its private address, as through a VPN.
    if args.typ == "aws:ec2/instance:Instance":
        return {"publicIp": args.inputs.get("privateIp")}
    return {}


def run_lab_program(config: dict, key_material: dict) -> ProgramRun:
    return run_program(config, stack="lab", mocks=ClusterMocks(extra_outputs=_lab_addresses,
                                                               key_material=key_material))


@dataclass
class LabSession:
    config: dict
    run: ProgramRun
    machines: Machines
    replayer: Replayer
    workdir: Path
    key_material: dict
    timings: dict[str, float] = field(default_factory=dict)
    first_report: Report | None = None

    @property
    def nodes(self) -> dict[str, str]:
        """node name -> address, every role."""
        return {name: n["privateIp"] for role in self.run.outputs["nodes"].values() for name, n in role.items()}

    @property
    def private_key(self) -> str:
        return self.run.outputs["sshPrivateKey"]

    def on(self, node: str, script: str):
        """Run a script as root on a lab machine, over SSH with the stack's key."""
        return self.machines.ssh(self.nodes[node], "ubuntu", self.private_key, "sudo bash -s", script)

    def rerun_program(self) -> ProgramRun:
        """The same stack again (the same keys: as Pulumi would keep them in state)."""
        return run_lab_program(self.config, self.key_material)


@contextlib.contextmanager
def lab_session(*, etcd: int = 3, controllers: int = 3, workers: int = 3, tag: str = "lab") -> Iterator[LabSession]:
    workdir = Path(tempfile.mkdtemp(prefix="k8s-from-scratch-lab-"))
    timings: dict[str, float] = {}
    started = time.monotonic()
    rootfs = ensure_rootfs()
    timings["rootfs"] = time.monotonic() - started

    arch = lab_architecture()
    mirror = workdir / "mirror"
    version, sha = repack_debian_etcd(mirror, arch)
    config = lab_config(etcd_version=version, etcd_sha256=sha, arch=arch, etcd=etcd, controllers=controllers,
                        workers=workers)
    key_material: dict = {}
    run = run_lab_program(config, key_material)

    with Lab(tag) as lab:
        machines = Machines(lab, rootfs, workdir)
        try:
            machines.start_deployer(mirror)
            public_key = run.of_type("aws:ec2/keyPair:KeyPair")[0].inputs["publicKey"]
            ssh_dir = machines.authorize(public_key)
            session = LabSession(config, run, machines, Replayer(machines.ssh), workdir, key_material, timings)
            started = time.monotonic()
            machines.boot_all(session.nodes, ssh_dir, session.private_key, "ubuntu")
            timings["boot"] = time.monotonic() - started
            started = time.monotonic()
            session.first_report = session.replayer.replay(collect(run))
            timings["replay"] = time.monotonic() - started
            (workdir / "replay-report.txt").write_text(session.first_report.table() + "\n")
            yield session
        finally:
            machines.stop_all()
    shutil.rmtree(workdir, ignore_errors=True)
