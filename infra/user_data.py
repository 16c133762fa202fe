"""cloud-init user data: the only thing a node receives at launch (pure; infra/nodes.py passes it to EC2).
Everything else arrives over SSH."""

from __future__ import annotations


def render_user_data(hostname: str) -> str:
    """Set the hostname to the node's Kubernetes name, so that the kubelet registers under the name its
    certificate carries (`system:node:<hostname>`), and keep it across reboots."""
    return (
        "#cloud-config\n"
        f"hostname: {hostname}\n"
        f"fqdn: {hostname}\n"
        "preserve_hostname: false\n"
        "prefer_fqdn_over_hostname: false\n"
        "manage_etc_hosts: true\n"
    )
