"""An ssh_config for the cluster's nodes, given as a stack output."""

from __future__ import annotations

from typing import Mapping


def render_ssh_config(*, user: str, identity_file: str, hosts: Mapping[str, str],
                      bastion: str | None = None) -> str:
    """`hosts` maps node name to the address SSH should dial: the public IP in the public topology, the private IP
    behind `bastion` in the private one. Host keys are not pinned: nodes are replaced by `pulumi up`."""
    lines: list[str] = []
    if bastion is not None:
        lines += ["Host bastion", f"  HostName {bastion}", f"  User {user}", f"  IdentityFile {identity_file}",
                  "  IdentitiesOnly yes", "  StrictHostKeyChecking accept-new", ""]
    for name, address in hosts.items():
        lines += [f"Host {name}", f"  HostName {address}", f"  User {user}", f"  IdentityFile {identity_file}",
                  "  IdentitiesOnly yes", "  StrictHostKeyChecking accept-new"]
        if bastion is not None:
            lines.append("  ProxyJump bastion")
        lines.append("")
    return "\n".join(lines)
