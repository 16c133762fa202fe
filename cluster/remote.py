"""pulumi-command building blocks: an SSH connection, a host with its readiness gate, and steps on it.

Every step runs `sudo bash -s` with its script on stdin: the command line never varies and never holds a value,
so no secret can reach it, `ps` or a log. A step that carries secrets gets its stdin as a Pulumi secret and its
logging off. Every step depends on its host's gate and is deleted with the host's instance; its triggers hold
the fingerprint of what it installs, so a change re-runs exactly the steps it affects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_command as command

from cluster.render.steps import GATE_TIMEOUT_SECONDS, readiness_gate_script

RUN_SCRIPT = "sudo bash -s"
# pulumi-command retries the SSH dial this many times, each attempt bounded by the timeout below: a node whose sshd
# never comes up fails its gate after about ten minutes instead of hanging the update.
DIAL_ATTEMPTS = 60
DIAL_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Ssh:
    user: str
    private_key: pulumi.Input[str] | None      # secret; None: the deployer's SSH agent holds the key
    bastion: pulumi.Input[str] | None = None   # jump host in the private topology


def connection(ssh: Ssh, host: pulumi.Input[str]) -> command.remote.ConnectionArgs:
    proxy = None
    if ssh.bastion is not None:
        proxy = command.remote.ProxyConnectionArgs(
            host=ssh.bastion, user=ssh.user, private_key=ssh.private_key,
            dial_error_limit=DIAL_ATTEMPTS, per_dial_timeout=DIAL_TIMEOUT_SECONDS)
    return command.remote.ConnectionArgs(
        host=host, user=ssh.user, private_key=ssh.private_key, proxy=proxy,
        dial_error_limit=DIAL_ATTEMPTS, per_dial_timeout=DIAL_TIMEOUT_SECONDS)


class RemoteHost:
    """One machine reached over SSH: its gate, and a factory for the steps that run after it."""

    def __init__(self, name: str, address: pulumi.Input[str], ssh: Ssh, instance: pulumi.Resource,
                 parent: pulumi.Resource):
        self.name = name
        self.instance = instance
        self.parent = parent
        self.connection = connection(ssh, address)
        self.gate = command.remote.Command(
            f"{name}-ready",
            connection=self.connection,
            create=RUN_SCRIPT,
            stdin=readiness_gate_script(),
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=parent, deleted_with=instance,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{GATE_TIMEOUT_SECONDS // 60 + 5}m")),
        )

    def step(self, step_name: str, script: pulumi.Input[str], *, triggers: Sequence[pulumi.Input],
             depends_on: Sequence[pulumi.Resource] = (), secret: bool = False,
             timeout_minutes: int = 20) -> command.remote.Command:
        stdin = pulumi.Output.secret(script) if secret else script
        return command.remote.Command(
            f"{self.name}-{step_name}",
            connection=self.connection,
            create=RUN_SCRIPT,
            stdin=stdin,
            # A fingerprint of secret files is itself an Output derived from secrets, so it stays secret in state.
            triggers=list(triggers),
            logging="none" if secret else "stdoutAndStderr",
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self.parent, depends_on=[self.gate, *depends_on], deleted_with=self.instance,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout_minutes}m", update=f"{timeout_minutes}m")),
        )
