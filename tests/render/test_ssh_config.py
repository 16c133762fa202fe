"""The sshConfig output, read by the real ssh client: it finds the generated key wherever its user saved it (the
bastion hop included), and says what is missing when the variable naming the key is unset. ssh never dials out:
ProxyCommand stands in for the connection."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cluster.render.ssh_config import SSH_KEY_VARIABLE, render_ssh_config

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                                reason="needs the OpenSSH client (ssh, ssh-keygen)")
HOSTS = {"etcd-0": "10.43.128.10", "worker-0": "10.43.128.30"}


def offered_identities(config: str, host: str, tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """ssh's own account of the identity files it would offer to `host`; ProxyCommand replaces the network."""
    path = tmp_path / "ssh.cfg"
    path.write_text(config)
    return subprocess.run(["ssh", "-v", "-F", str(path), "-o", "ProxyCommand=sleep 1", "-o", "BatchMode=yes",
                           "-o", "UserKnownHostsFile=/dev/null", host, "true"],
                          capture_output=True, text=True, timeout=30, env={**os.environ, **env})


@pytest.mark.parametrize("host", ["worker-0", "bastion"])
def test_the_generated_key_is_found_wherever_it_was_saved(tmp_path, host):
    key = tmp_path / "somewhere" / "else" / "cluster-key"
    key.parent.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = render_ssh_config(user="ubuntu", hosts=HOSTS, bastion="198.51.100.7")
    result = offered_identities(config, host, tmp_path, {SSH_KEY_VARIABLE: str(key)})
    assert f"identity file {key} type 3" in result.stderr, result.stderr     # type 3: an ed25519 key, read


def test_an_unset_key_variable_stops_ssh_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != SSH_KEY_VARIABLE}
    config = render_ssh_config(user="ubuntu", hosts=HOSTS)
    path = tmp_path / "ssh.cfg"
    path.write_text(config)
    result = subprocess.run(["ssh", "-F", str(path), "-o", "ProxyCommand=sleep 1", "-o", "BatchMode=yes",
                             "worker-0", "true"], capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 255 and SSH_KEY_VARIABLE in result.stderr, result.stderr


def test_with_the_users_own_key_the_config_names_no_key_file():
    config = render_ssh_config(user="ubuntu", hosts=HOSTS, generated_key=False)
    assert "IdentityFile" not in config and "IdentitiesOnly" not in config
