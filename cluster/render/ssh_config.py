"""An ssh_config for the cluster's nodes, given as a stack output."""

from __future__ import annotations

from typing import Mapping

# The generated key is wherever its user saved it: the config names it through this variable, which ssh expands
# (OpenSSH 8.4 and later), for the bastion hop too. Unset, ssh stops with "env var ${...} has no value".
SSH_KEY_VARIABLE = "K8S_FROM_SCRATCH_SSH_KEY"


def render_ssh_config(*, user: str, hosts: Mapping[str, str], bastion: str | None = None,
                      generated_key: bool = True) -> str:
    """`hosts` maps node name to the address SSH should dial: the public IP in the public topology, the private IP
    behind `bastion` in the private one. `generated_key`: the stack made the key pair (its private key is the
    `sshPrivateKey` output), so the config names it; with the user's own key, ssh offers what its agent and default
    files hold. Host keys are not pinned: nodes are replaced by `pulumi up`."""
    identity = [f"  IdentityFile ${{{SSH_KEY_VARIABLE}}}", "  IdentitiesOnly yes"] if generated_key else []
    lines: list[str] = []
    if bastion is not None:
        lines += ["Host bastion", f"  HostName {bastion}", f"  User {user}", *identity,
                  "  StrictHostKeyChecking accept-new", ""]
    for name, address in hosts.items():
        lines += [f"Host {name}", f"  HostName {address}", f"  User {user}", *identity,
                  "  StrictHostKeyChecking accept-new"]
        if bastion is not None:
            lines.append("  ProxyJump bastion")
        lines.append("")
    return "\n".join(lines)
