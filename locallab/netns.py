"""Hosts made of network namespaces: each host namespace is joined by a veth pair to a bridge that lives in a hub
namespace of its own. Only addresses inside these namespaces are used; nothing leaves them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

PREFIX = "k8sfs"


def sh(*args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=capture, text=True, **kwargs)


def can_run() -> str | None:
    """None when namespaces can be built here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass
class Lab:
    """`hosts` maps host name -> namespace name. Use as a context manager; everything is removed on exit."""
    tag: str
    prefix_len: int = 20
    hosts: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def hub(self) -> str:
        return f"{PREFIX}-{self.tag}-hub"

    def __enter__(self) -> "Lab":
        remove_stale(self.tag)
        sh("ip", "netns", "add", self.hub)
        self.exec_in_hub("ip", "link", "add", "br0", "type", "bridge")
        self.exec_in_hub("ip", "link", "set", "br0", "up")
        self.exec_in_hub("ip", "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc) -> None:
        for ns in [*self.hosts.values(), self.hub]:
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)

    def add_host(self, name: str, address: str) -> str:
        ns = f"{PREFIX}-{self.tag}-{name}"
        index = len(self.hosts)
        outside, inside = f"v{self.tag[:6]}{index}h", f"v{self.tag[:6]}{index}n"
        sh("ip", "netns", "add", ns)
        self.hosts[name] = ns
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", outside, "netns", self.hub)
        sh("ip", "link", "set", inside, "netns", ns)
        self.exec_in_hub("ip", "link", "set", outside, "master", "br0")
        self.exec_in_hub("ip", "link", "set", outside, "up")
        self.exec(name, "ip", "link", "set", inside, "name", "eth0")
        self.exec(name, "ip", "addr", "add", f"{address}/{self.prefix_len}", "dev", "eth0")
        self.exec(name, "ip", "link", "set", "eth0", "up")
        self.exec(name, "ip", "link", "set", "lo", "up")
        self.addresses[name] = address
        return ns

    def exec(self, host: str, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.hosts[host], *args, check=check, **kwargs)

    def exec_in_hub(self, *args: str) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.hub, *args)

    def popen(self, host: str, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.hosts[host], *args], **kwargs)


def remove_stale(tag: str) -> None:
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if ns.startswith(f"{PREFIX}-{tag}-"):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
