"""Pinned artifacts: every file a node downloads, with its version, upstream location and checksum per
architecture. Pure data and pure functions, no Pulumi.

Checksums come from the publishers, never from a download of our own:
- Kubernetes: the sha512 of the server and node tarballs in the release notes (CHANGELOG/CHANGELOG-1.37.md as
  carried in the k8s.io/kubernetes v1.38.0-beta.0 source, which holds the v1.37.2 notes; CHANGELOG-1.36.md for
  1.36.0). The individual binaries' `.sha256` files of 1.37.2 were not obtainable, so the tarball layout stays.
- crictl: the sha512 that Kubernetes itself pins for the cri-tools release tarballs
  (cluster/gce/gci/configure.sh in k8s.io/kubernetes v1.38.0-beta.0).
- etcd, containerd, runc and CNI plugins: etcd's SHA256SUMS and the `.sha256`/`.sha256sum` files next to the
  release assets, as collected in kubespray's checksums.yml (2026-08-21). Newer releases of these four had no
  publisher sums we could obtain, so they stay at the newest release that has them (see the README).
A node verifies each file before it installs anything from it.

Paths below a mirror keep the upstream host as their first directory (`dl.k8s.io/...`, `github.com/...`), the layout
kubespray recommends for offline installs: `downloadBaseUrl` swaps `https://` for the mirror's base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

ALGORITHMS = ("sha256", "sha512")


@dataclass(frozen=True)
class Component:
    name: str
    version_key: str                       # the key users override in `versions` (kubernetes covers two tarballs)
    path: str                              # below https:// (or the mirror), with {version} and {arch}
    installs: tuple[tuple[str, str], ...]  # (path inside the archive, or "" for a bare binary; installed name)
    algorithm: str
    checksums: Mapping[str, Mapping[str, str]]   # version -> arch -> hex digest


@dataclass(frozen=True)
class Artifact:
    """One file to fetch for one node: resolved URL, its checksum and what to install from it."""
    component: str
    version: str
    url: str
    filename: str
    algorithm: str
    digest: str
    installs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PinnedRelease:
    """One version key after the overrides: its version, and per component it covers the algorithm and the
    checksum per architecture."""
    version: str
    checksums: Mapping[str, tuple[str, Mapping[str, str]]]


@dataclass(frozen=True)
class Artifacts:
    """Every artifact the nodes download, resolved once for the stack's versions, architecture and mirror."""
    by_component: Mapping[str, Artifact]

    def __getitem__(self, component: str) -> Artifact:
        return self.by_component[component]


class VersionError(ValueError):
    pass


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component(
        "kubernetes-server", "kubernetes",
        "dl.k8s.io/v{version}/kubernetes-server-linux-{arch}.tar.gz",
        (("kubernetes/server/bin/kube-apiserver", "kube-apiserver"),
         ("kubernetes/server/bin/kube-controller-manager", "kube-controller-manager"),
         ("kubernetes/server/bin/kube-scheduler", "kube-scheduler"),
         ("kubernetes/server/bin/kubectl", "kubectl")),
        "sha512",
        {"1.37.2": {
            "amd64": "0956faf23fbe144f7b7d787bd3c9fa601a2916c30152d7788f4d5155168d1db353e252ee865f196c55c24b5c1e8ef9"
                     "aa351ce5aa34afe2506ed5f88864f6ce0c",
            "arm64": "cd1b134bbc30a3ba07579556ee03b630412adbc443b262d5fe42527c6c316393b1cc4a58ba2fb83b030c571494dcae"
                     "6a8d49818245c192efc97ffcedd90b0b41"},
         "1.36.0": {
            "amd64": "1c64da92575451c2c7ff97c79b772e603995f8e76da1371a6b0746aaa27b65dce81c4d734cbb50f40e71486a8e08df36"
                     "f14e12974f97d4d29e41f23a172a6a25",
            "arm64": "7f95e451baedd9368a2fa637afa84c9ed1b958736540ca27a379e5e292e1a10c5d9a29539f833047574bf5d3b6f907"
                     "f32dee5735acecc11aa4686f078108dcf8"}},
    ),
    Component(
        "kubernetes-node", "kubernetes",
        "dl.k8s.io/v{version}/kubernetes-node-linux-{arch}.tar.gz",
        (("kubernetes/node/bin/kubelet", "kubelet"),
         ("kubernetes/node/bin/kube-proxy", "kube-proxy"),
         ("kubernetes/node/bin/kubectl", "kubectl")),
        "sha512",
        {"1.37.2": {
            "amd64": "6e9f34d35a40f5b4e0026b98cfaa30b52530d2b3e0dc78a8600ce66ae0552e8966e5db78a360d62908d0fe35ef0f81"
                     "6d6da0e21d0f6bc7f26beba3a3a0b3ecdb",
            "arm64": "841361fa8a16fa523d7cb4f936f09a9abe1eb240bcc25e07bc31b42964e7ba11c4c762b4f6f53c0efcaf1af466cabb"
                     "c7b847e7b0e036582ab5ab25706559eb95"},
         "1.36.0": {
            "amd64": "8bba5bd0cb77997ad965739caff3c8839fd16f284cf28a0e46c44538ce0b6fd83c5f3c608dd86c4831c3de9306bbfd"
                     "02ce26bbe9a426754b6253efa1d5cc030f",
            "arm64": "10a4c3660e6e19fae998b04345dbe42711e61745bf374405c33e8604335b12ff55ce7b68f8a0d67d1f7ce4519f706f"
                     "bd8d80781b7128369fe047c38915e8d189"}},
    ),
    Component(
        "etcd", "etcd",
        "github.com/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-{arch}.tar.gz",
        (("etcd-v{version}-linux-{arch}/etcd", "etcd"),
         ("etcd-v{version}-linux-{arch}/etcdctl", "etcdctl")),
        "sha256",
        {"3.6.14": {"amd64": "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5",
                    "arm64": "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e"}},
    ),
    Component(
        "containerd", "containerd",
        "github.com/containerd/containerd/releases/download/v{version}/containerd-{version}-linux-{arch}.tar.gz",
        (("bin/containerd", "containerd"),
         ("bin/containerd-shim-runc-v2", "containerd-shim-runc-v2"),
         ("bin/ctr", "ctr")),
        "sha256",
        {"2.3.4": {"amd64": "9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168",
                   "arm64": "a985fbb7e18fc0362d31a055338f5d7b0e087a3e27f14c70d1c5965399a29f95"}},
    ),
    Component(
        "runc", "runc",
        "github.com/opencontainers/runc/releases/download/v{version}/runc.{arch}",
        (("", "runc"),),
        "sha256",
        {"1.4.3": {"amd64": "f6ae8efc0fa40079e1475e97cbe9d1bd3f106a28d6af78a11d9f1bd565515e60",
                   "arm64": "633301e2e32f8a5ad54031aab4901eb00308bec677dd15faa2751e8f9dab5ca4"}},
    ),
    Component(
        "cni-plugins", "cni-plugins",
        "github.com/containernetworking/plugins/releases/download/v{version}/cni-plugins-linux-{arch}-v{version}.tgz",
        (("./bridge", "/opt/cni/bin/bridge"),
         ("./host-local", "/opt/cni/bin/host-local"),
         ("./loopback", "/opt/cni/bin/loopback"),
         ("./portmap", "/opt/cni/bin/portmap")),
        "sha256",
        {"1.9.1": {"amd64": "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303",
                   "arm64": "56171987d3947707c3563db2f4001bccaf50fd63468611b9f3cbecb1375ee7ec"}},
    ),
    Component(
        "crictl", "crictl",
        "github.com/kubernetes-sigs/cri-tools/releases/download/v{version}/crictl-v{version}-linux-{arch}.tar.gz",
        (("crictl", "crictl"),),
        "sha512",
        {"1.37.0": {
            "amd64": "27aa50f7dbb49301e87276a743e67c037ab422037b9847e038647976d2628aff3c2fda623dab67214f2eb016f1b952"
                     "bc47e178eb23e8e32d45f5c0e52c4dbd0e",
            "arm64": "2ca055a859d11ce771f4e9d2aa94d4b9e0c16124ce89f4e36d131f3c61d9e9d50de8dbe96b02affe0025e0e580af5b"
                     "9e904947141568762999b6c56e2ad34d34"}},
    ),
)}

DEFAULT_VERSIONS = {"kubernetes": "1.37.2", "etcd": "3.6.14", "containerd": "2.3.4", "runc": "1.4.3",
                    "cni-plugins": "1.9.1", "crictl": "1.37.0"}

# Images the cluster pulls (pinned by tag; CoreDNS and pause as kubeadm 1.37.2 deploys them: CoreDNSVersion and
# PauseVersion in cmd/kubeadm/app/constants/constants.go). metrics-server as its release's manifest names it
# (manifests/components/release in sigs.k8s.io/metrics-server v0.9.0; 0.9.x supports Kubernetes 1.34 and later).
# 0.9.1 exists but needs Go 1.26.10 to build, and the lab builds the very version the cluster runs.
IMAGES = {"pause": "registry.k8s.io/pause:3.10.2", "coredns": "registry.k8s.io/coredns/coredns:v1.14.6",
          "nginx": "docker.io/library/nginx:1.29", "busybox": "docker.io/library/busybox:1.37",
          "metrics-server": "registry.k8s.io/metrics-server/metrics-server:v0.9.0"}


def _is_hex(value: Any, algorithm: str) -> bool:
    length = {"sha256": 64, "sha512": 128}[algorithm]
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def resolve_versions(overrides: Mapping[str, Any]) -> dict[str, PinnedRelease]:
    """Merge user overrides into the defaults. An override is a version string that has pins here, or an object
    {"version": "...", "<component>": {"sha256"|"sha512": {"<arch>": hex}}} bringing its own checksums (a mirror's
    own build, say). Returns the pinned release per version key."""
    resolved: dict[str, PinnedRelease] = {}
    for key, default in DEFAULT_VERSIONS.items():
        value = overrides.get(key, default)
        components = [c for c in COMPONENTS.values() if c.version_key == key]
        if isinstance(value, str):
            sums = {}
            for c in components:
                if value not in c.checksums:
                    raise VersionError(
                        f"setting 'versions.{key}' = {value!r} is invalid: no checksums are pinned for {c.name} "
                        f"{value}; pinned versions are {', '.join(sorted(c.checksums))}. Add them to "
                        f"cluster/versions.py or give them in the override (see the README)")
                sums[c.name] = (c.algorithm, dict(c.checksums[value]))
            resolved[key] = PinnedRelease(value, sums)
        elif isinstance(value, Mapping) and isinstance(value.get("version"), str):
            sums = {}
            for c in components:
                given = value.get(c.name) if len(components) > 1 else value
                algorithm = next((a for a in ALGORITHMS if isinstance(given, Mapping) and a in given), None)
                if algorithm is None or not isinstance(given[algorithm], Mapping) or not given[algorithm]:
                    raise VersionError(
                        f"setting 'versions.{key}' = {value!r} is invalid: give the checksums of {c.name} as "
                        f"{{\"sha256\": {{\"amd64\": \"<hex>\"}}}} (or sha512)")
                for arch, digest in given[algorithm].items():
                    if not _is_hex(digest, algorithm):
                        raise VersionError(f"setting 'versions.{key}' is invalid: {c.name} {algorithm} for {arch} "
                                           f"is {digest!r}, expected lowercase hex")
                sums[c.name] = (algorithm, dict(given[algorithm]))
            resolved[key] = PinnedRelease(value["version"], sums)
        else:
            raise VersionError(f"setting 'versions.{key}' = {value!r} is invalid: expected a version string or an "
                               "object with a version and checksums")
    unknown = sorted(set(overrides) - set(DEFAULT_VERSIONS))
    if unknown:
        raise VersionError(f"setting 'versions.{unknown[0]}' is invalid: unknown component; known components are "
                           + ", ".join(DEFAULT_VERSIONS))
    return resolved


def artifact(component: str, versions: Mapping[str, PinnedRelease], arch: str, base_url: str | None = None
             ) -> Artifact:
    c = COMPONENTS[component]
    pinned = versions[c.version_key]
    version = pinned.version
    algorithm, digests = pinned.checksums[component]
    if arch not in digests:
        raise VersionError(f"no {algorithm} checksum for {component} {version} on {arch}; known: {', '.join(digests)}")
    path = c.path.format(version=version, arch=arch)
    url = f"{base_url.rstrip('/')}/{path}" if base_url else f"https://{path}"
    installs = tuple((src.format(version=version, arch=arch), dest) for src, dest in c.installs)
    return Artifact(component, version, url, path.rsplit("/", 1)[1], algorithm, digests[arch], installs)


def resolve_artifacts(overrides: Mapping[str, Any], arch: str, base_url: str | None = None) -> Artifacts:
    """Every component's artifact for these version overrides (the `versions` setting), architecture and mirror."""
    pinned = resolve_versions(overrides)
    return Artifacts({name: artifact(name, pinned, arch, base_url) for name in COMPONENTS})
