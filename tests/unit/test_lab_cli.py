"""`./lab kubectl ARGS...` and `./lab ssh NODE COMMAND...` pass every argument on as typed, options included."""

from __future__ import annotations

import pytest

from locallab import cli


@pytest.mark.parametrize("argv, own, passed", [
    (["kubectl", "-n", "kube-system", "get", "pods"], ["kubectl"], ["-n", "kube-system", "get", "pods"]),
    (["--tag", "mine", "kubectl", "--help"], ["--tag", "mine", "kubectl"], ["--help"]),
    (["--tag=mine", "kubectl", "get", "nodes", "-o", "wide"], ["--tag=mine", "kubectl"],
     ["get", "nodes", "-o", "wide"]),
    (["ssh", "worker-1", "sudo", "journalctl", "-u", "haproxy", "--no-pager"], ["ssh", "worker-1"],
     ["sudo", "journalctl", "-u", "haproxy", "--no-pager"]),
    (["ssh", "controller-0"], ["ssh", "controller-0"], []),
    (["up", "--workers", "4"], ["up", "--workers", "4"], []),
])
def test_what_follows_kubectl_or_ssh_node_is_passed_unchanged(argv, own, passed):
    assert cli.split_pass_through(argv) == (own, passed)


def test_kubectl_options_reach_kubectl_instead_of_being_refused_by_the_lab(monkeypatch):
    executed = []
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli.session, "running", lambda tag: True)
    monkeypatch.setattr(cli.session, "kubectl_command", lambda tag, args: ["kubectl", *args])
    monkeypatch.setattr(cli.os, "execvp", lambda file, args: executed.append(args))
    cli.main(["kubectl", "-n", "kube-system", "get", "pods"])
    assert executed == [["kubectl", "-n", "kube-system", "get", "pods"]]
