"""Shapes shared by every renderer: node file paths, systemd units, kubeconfigs, and the script that writes a
bundle of files on a node."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from cluster.render import shell

# Where things live on every node.
BIN_DIR = "/usr/local/bin"
PKI_DIR = "/etc/kubernetes/pki"
KUBE_DIR = "/etc/kubernetes"
CA_CERT = f"{PKI_DIR}/ca.crt"
UNIT_DIR = "/etc/systemd/system"
CACHE_DIR = "/var/cache/k8s-from-scratch"


@dataclass(frozen=True)
class NodeFile:
    path: str
    content: str
    mode: str = "0644"
    owner: str = "root"
    secret: bool = False


def digest(*parts: str) -> str:
    """A short, stable fingerprint of what a step installs: the step's trigger."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def files_digest(files: Iterable[NodeFile]) -> str:
    return digest(*(f"{f.path}|{f.mode}|{f.owner}|{f.content}" for f in sorted(files, key=lambda f: f.path)))


def systemd_unit(*, description: str, exec_start: Sequence[str], documentation: str | None = None,
                 after: Sequence[str] = ("network-online.target",), wants: Sequence[str] = ("network-online.target",),
                 requires: Sequence[str] = (), service: Mapping[str, str] | None = None) -> str:
    """A service unit whose ExecStart is `exec_start[0]` with one flag per continuation line."""
    command = " \\\n  ".join(exec_start)
    lines = ["[Unit]", f"Description={description}"]
    if documentation:
        lines.append(f"Documentation={documentation}")
    if after:
        lines.append(f"After={' '.join(after)}")
    if wants:
        lines.append(f"Wants={' '.join(wants)}")
    if requires:
        lines.append(f"Requires={' '.join(requires)}")
    lines += ["", "[Service]", f"ExecStart={command}"]
    settings = {"Restart": "always", "RestartSec": "5", **(service or {})}
    if settings["Restart"] == "no":
        del settings["RestartSec"]
    for key, value in settings.items():
        lines.append(f"{key}={value}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def flags(binary: str, options: Sequence[tuple[str, str | None]]) -> list[str]:
    """`--name=value` per option (`--name` alone when the value is None), in the order given."""
    return [binary, *(f"--{name}" if value is None else f"--{name}={value}" for name, value in options)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(*, cluster: str, server: str, ca_pem: str, user: str, cert_pem: str, key_pem: str,
               tls_server_name: str | None = None) -> str:
    """A kubeconfig with everything embedded (no paths to go stale). JSON is YAML, and every client reads it.
    `tls_server_name`: the name to verify the server's certificate against when the server's address is not one
    of its names (the API through the load balancer)."""
    cluster_entry = {"server": server, "certificate-authority-data": _b64(ca_pem)}
    if tls_server_name:
        cluster_entry["tls-server-name"] = tls_server_name
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": user, "user": {"client-certificate-data": _b64(cert_pem),
                                          "client-key-data": _b64(key_pem)}}],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}",
        "preferences": {},
    }
    return json.dumps(doc, indent=2) + "\n"


def kubectl_apply(kubectl: str, manifest: str) -> str:
    """Server-side apply of one manifest, fed on a here-document (idempotent)."""
    return shell.render("lib/kubectl-apply.sh", KUBECTL=kubectl, MANIFEST=manifest)


def write_files_script(files: Sequence[NodeFile], absent: Sequence[str] = ()) -> str:
    """A bash script, sent on stdin, that writes each file atomically with its mode and owner, only when its
    content differs, and prints the paths it changed. Contents travel base64-encoded inside the script, so no
    secret ever appears in a command line or in `ps`. `absent`: paths removed when present."""
    lines = ["#!/bin/bash", "set -euo pipefail", "umask 077", ""]
    for path in absent:
        lines += [f"if [ -e {shlex.quote(path)} ]; then", f"  rm -f {shlex.quote(path)}",
                  f"  echo \"removed: {path}\"", "fi", ""]
    for f in files:
        path = shlex.quote(f.path)
        lines += [
            f"install -d -m 0755 \"$(dirname {path})\"",
            f"tmp=$(mktemp {shlex.quote(f.path + '.XXXXXX')})",
            "base64 -d > \"$tmp\" <<'K8S_FROM_SCRATCH_EOF'",
            _b64(f.content),
            "K8S_FROM_SCRATCH_EOF",
            f"chmod {f.mode} \"$tmp\"",
            f"chown {shlex.quote(f.owner)}: \"$tmp\"",
            f"if [ -f {path} ] && cmp -s \"$tmp\" {path} && [ \"$(stat -c '%a %U' {path})\" = "
            f"\"$(stat -c '%a %U' \"$tmp\")\" ]; then",
            "  rm -f \"$tmp\"",
            "else",
            f"  mv -f \"$tmp\" {path}",
            f"  echo \"changed: {f.path}\"",
            "fi",
            "",
        ]
    lines.append("exit 0")
    return "\n".join(lines) + "\n"
