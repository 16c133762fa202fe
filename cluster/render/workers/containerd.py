"""containerd and runc, the pods' runtime; crictl to inspect it; a hosts.toml per registry when images come through a
mirror."""

from __future__ import annotations

from cluster.render.common import BIN_DIR, UNIT_DIR, NodeFile, systemd_unit
from cluster.render.services import Service
from cluster.render.workers.node import CNI_BIN_DIR, CNI_CONF_DIR, PRIVATE, UNIT, NodeHost, WorkerInputs

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CRICTL_CONFIG = "/etc/crictl.yaml"
# The registries the cluster's images come from (cluster/versions.py IMAGES), each with the address containerd
# would use without hosts.toml.
UPSTREAM_REGISTRIES = {"docker.io": "https://registry-1.docker.io", "registry.k8s.io": "https://registry.k8s.io"}
REGISTRY_HOSTS_DIR = "/etc/containerd/certs.d"


def files(inputs: WorkerInputs) -> list[NodeFile]:
    hosts = registry_hosts(inputs.registry_mirror) if inputs.registry_mirror else {}
    return [
        NodeFile(CONTAINERD_CONFIG, containerd_config(inputs.pause_image, inputs.host), PRIVATE),
        *(NodeFile(f"{REGISTRY_HOSTS_DIR}/{registry}/hosts.toml", text, PRIVATE) for registry, text in hosts.items()),
        NodeFile(CRICTL_CONFIG, crictl_config(), PRIVATE),
        NodeFile(f"{UNIT_DIR}/{SERVICE.unit}", unit(), UNIT),
    ]


# Its restart stops the pods' runtime (and restarts the kubelet, whose unit requires it): drain a running node first.
SERVICE = Service("containerd", files=files, artifacts=("containerd", "runc", "cni-plugins", "crictl"), drains=True,
                  report_rank=1)


def registry_hosts(mirror: str) -> dict[str, str]:
    """containerd's hosts.toml per upstream registry: pull and resolve through the mirror first, then the upstream
    (`server`), so an air-gapped node only ever asks the mirror and a mirrored one survives the mirror's outage."""
    return {registry: f"""server = '{upstream}'

[host.'{mirror}']
  capabilities = ['pull', 'resolve']
""" for registry, upstream in UPSTREAM_REGISTRIES.items()}


def containerd_config(pause_image: str, host: NodeHost = NodeHost()) -> str:
    # A system container may raise a process's OOM score but not lower it (no CAP_SYS_RESOURCE over the host's
    # kernel): the pod sandbox's -998 would fail the container's start.
    oom = """
  restrict_oom_score_adj = true
""" if host.system_container else ""
    return f"""version = 3

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

  [plugins.'io.containerd.cri.v1.images'.registry]
    # hosts.toml per registry (a mirror, when imageRegistryMirror is set); none there: the registry itself.
    config_path = '{REGISTRY_HOSTS_DIR}'

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{pause_image}'

[plugins.'io.containerd.cri.v1.runtime']{oom}
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{BIN_DIR}/runc'
        SystemdCgroup = true

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{CNI_BIN_DIR}']
    conf_dir = '{CNI_CONF_DIR}'
"""


def crictl_config() -> str:
    """crictl talks to containerd straight away instead of probing every known socket (warning about each)."""
    return f"""runtime-endpoint: unix://{CONTAINERD_SOCKET}
image-endpoint: unix://{CONTAINERD_SOCKET}
timeout: 10
"""


def unit() -> str:
    """Upstream's containerd.service (v2.4.2). No LimitNOFILE: the CRI passes containerd's own limit on to every
    container, and `infinity` gives each about a billion open files (upstream dropped it in 3ca39ef01, 2023)."""
    return systemd_unit(
        description="containerd container runtime",
        documentation="https://containerd.io",
        exec_start=[f"{BIN_DIR}/containerd", f"--config={CONTAINERD_CONFIG}"],
        after=("network.target", "dbus.service"), wants=(),
        service={"ExecStartPre": "-/sbin/modprobe overlay", "Type": "notify", "Delegate": "yes",
                 "KillMode": "process", "LimitNPROC": "infinity", "LimitCORE": "infinity",
                 "TasksMax": "infinity", "OOMScoreAdjust": "-999"},
    )
