"""pulumi-command building blocks: an SSH connection, a host with its readiness gate, and steps on it.

Every step runs its script with `bash -s` on stdin: the command line never holds a value, so no secret can reach
it, `ps` or a log. A step that carries secrets gets its stdin as a Pulumi secret and its logging off.

What makes a step run again:
- its triggers (the fingerprint of what it installs) change: the step is replaced, so it runs;
- its host's instance changes (a node replaced at the same address): the instance id is in every step's triggers,
  so a new machine is installed from scratch;
- only the connection changes (a new public address after a stop and start): the step is updated, which re-runs
  its script; every script is idempotent, and a service start restarts nothing whose inputs are unchanged (the
  node keeps the fingerprint it last started each service with).
Every script is bounded by `timeout` on the node: pulumi-command cannot interrupt a running SSH session, so an
unbounded script could hang `pulumi up` for ever.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from cluster.render.common import digest
from cluster.render.steps import (GATE_TIMEOUT_SECONDS, NO_SWITCH, readiness_gate_script,
                                  restart_services_script, time_sync_script)
from infra.aws_facts import BOOTSTRAPPED, BOOTSTRAPPED_TAG

if TYPE_CHECKING:
    from infra.nodes import Node

# pulumi-command retries the SSH dial this many times, each attempt bounded by the timeout below: a node whose sshd
# never comes up fails its gate after about ten minutes instead of hanging the update.
DIAL_ATTEMPTS = 60
DIAL_TIMEOUT_SECONDS = 10
DEFAULT_STEP_MINUTES = 20


def run_command(host: str, step: str, seconds: int) -> str:
    """The command line of a step: its stdin script as root, killed after `seconds`, and on a timeout a message
    that names the host, the step and the bound. Holds no value but names, so it is safe in state and logs."""
    says = shlex.quote(f"k8s-from-scratch: step {step} on {host} did not finish within {seconds}s")
    return (f"sudo timeout --kill-after=30 {seconds} bash -s || "
            f"{{ rc=$?; if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo {says} >&2; fi; exit $rc; }}")


def deployer_python() -> str:
    """The command line of a local step: a Python program on stdin, run by the interpreter running this program
    (Linux or macOS alike; no shell idioms)."""
    return f"{shlex.quote(sys.executable)} -"


@dataclass(frozen=True)
class Ssh:
    user: str
    private_key: pulumi.Input[str] | None      # secret; None: the deployer's SSH agent holds the key
    bastion: pulumi.Input[str] | None = None   # jump host in the private topology
    # Values of secret settings (a mirror URL with credentials): a step whose script or triggers carry one is
    # secret in state and has its logging off.
    secret_values: tuple[str, ...] = ()


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
    """One machine reached over SSH: its gate, and a factory for the steps that run after it.

    `parent` is the component the host's own steps belong to; a cluster-level step run from this host (applying
    add-ons, say) passes the component it belongs to instead."""

    def __init__(self, name: str, address: pulumi.Input[str], ssh: Ssh, node: "Node", parent: pulumi.Resource):
        self.name = name
        self.secret_values = ssh.secret_values
        self.instance = node.instance
        self.parent = parent
        self.connection = connection(ssh, address)
        gate_seconds = GATE_TIMEOUT_SECONDS
        self.gate = command.remote.Command(
            f"{name}-ready",
            connection=self.connection,
            create=run_command(name, "ready", gate_seconds),
            stdin=readiness_gate_script(gate_seconds),
            triggers=[node.instance.id],
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=parent, deleted_with=node.instance,
                # Nothing runs before the node exists and can reach the internet (in the private topology, its
                # zone's NAT route): the first steps download packages and binaries.
                depends_on=[node.instance, *node.egress_ready],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{gate_seconds // 60 + 10}m",
                                                      update=f"{gate_seconds // 60 + 10}m")),
        )
        # Every node's clock on the Amazon Time Sync Service; nothing waits for it (EC2 boots with a set clock).
        sync = time_sync_script()
        self.time_sync = self.step("time-sync", sync, triggers=[sync])

    def step(self, step_name: str, script: pulumi.Input[str], *, triggers: Sequence[pulumi.Input],
             depends_on: Sequence[pulumi.Resource] = (), secret: bool = False,
             timeout_minutes: int = DEFAULT_STEP_MINUTES, parent: pulumi.Resource | None = None
             ) -> command.remote.Command:
        stdin = pulumi.Output.secret(script) if secret else self._guarded(script)
        logging: pulumi.Input[str] = "none" if secret else pulumi.Output.from_input(stdin).apply(
            lambda text: "none" if self._carries_secret(text) else "stdoutAndStderr")
        owner = parent or self.parent
        return command.remote.Command(
            f"{self.name}-{step_name}",
            connection=self.connection,
            # The script's own bound is a minute under the step's, so the node's message arrives first.
            create=run_command(self.name, step_name, timeout_minutes * 60 - 60),
            stdin=stdin,
            # A fingerprint of secret files is itself an Output derived from secrets, so it stays secret in state.
            triggers=[*(self._guarded(t) for t in triggers), self.instance.id],
            logging=logging,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=owner, depends_on=[self.gate, *depends_on], deleted_with=self.instance,
                # Steps that used to sit under the host's component keep their identity (and are not re-run).
                aliases=[pulumi.Alias(parent=self.parent)] if owner is not self.parent else None,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout_minutes}m", update=f"{timeout_minutes}m")),
        )

    def removal_step(self, step_name: str, *, check: str, remove: pulumi.Input[str],
                     depends_on: Sequence[pulumi.Resource], deleted_with: pulumi.Resource, parent: pulumi.Resource, timeout_seconds: int,
                     triggers: Sequence[pulumi.Input] | None = None,
                     engine_timeouts: pulumi.CustomTimeouts | None = None) -> command.remote.Command:
        """A step on this host whose work is its deletion: created, it runs `check`; deleted, it runs `remove`.
        Whatever it depends on is deleted after it, so a step that depends on another node's instance runs
        `remove` before that instance is terminated. It has no `update`: a new connection runs `check` again.
        `remove` travels in the delete command line (a delete gets no stdin of its own): it must hold names,
        addresses and instance ids only, never a secret. `deleted_with` skips the removal when that resource goes
        too: the cluster's VPC, which only `pulumi destroy` deletes, and which no refresh drops (a refresh that
        dropped this host would clear a deletedWith that named it, and destroy would dial a machine that is gone).
        `triggers`: what replaces it (none: nothing does). `engine_timeouts`: by default ten minutes
        to create or update, and the scripts' bound plus two minutes to delete."""
        return command.remote.Command(
            f"{self.name}-{step_name}",
            connection=self.connection,
            create=run_command(self.name, step_name, timeout_seconds),
            stdin=check,
            delete=pulumi.Output.from_input(remove).apply(
                lambda text: f"sudo timeout --kill-after=30 {timeout_seconds} bash -c {shlex.quote(text)}"),
            triggers=None if triggers is None else list(triggers),
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=parent, depends_on=[self.gate, *depends_on], deleted_with=deleted_with,
                custom_timeouts=engine_timeouts or pulumi.CustomTimeouts(
                    create="10m", update="10m", delete=f"{timeout_seconds // 60 + 2}m")))

    def mark_bootstrapped(self, after: Sequence[pulumi.Resource], value: pulumi.Input[str] = BOOTSTRAPPED
                          ) -> aws.ec2.Tag:
        """Tag the node's primary interface once `after` (its health check) passed: the next `pulumi up` counts the
        node as running (infra/aws_facts.py). A node whose first `pulumi up` failed before is new to the next one:
        no rolling restart waits for it, and no etcd member joins a cluster it never formed."""
        return aws.ec2.Tag(f"{self.name}-bootstrapped", resource_id=self.instance.primary_network_interface_id,
                           key=BOOTSTRAPPED_TAG, value=value,
                           # A terminated instance's interface is gone with it: nothing to untag.
                           opts=pulumi.ResourceOptions(parent=self.parent, depends_on=list(after),
                                                       deleted_with=self.instance))

    def _carries_secret(self, value) -> bool:
        return any(secret in str(value) for secret in self.secret_values)

    def _guarded(self, value: pulumi.Input) -> pulumi.Input:
        """The value as a secret Output when it carries the value of a secret setting; unchanged otherwise."""
        if not self.secret_values:
            return value
        return pulumi.Output.from_input(value).apply(
            lambda v: pulumi.Output.secret(v) if self._carries_secret(v) else v)

    def start_services(self, units: Sequence[str], *, triggers: Sequence[pulumi.Input],
                       depends_on: Sequence[pulumi.Resource] = (), step_name: str | None = None,
                       reload: bool = False, switch: str = NO_SWITCH) -> command.remote.Command:
        """(Re)start units whose inputs are `triggers`. The script restarts them only when the node last started
        them with other inputs, so re-running it after a connection change restarts nothing. `reload`: a running
        unit reloads instead of restarting. `switch`: moves the binaries they run to their new release first."""
        script = fingerprint(triggers).apply(
            lambda f: restart_services_script(list(units), f, reload=reload, switch=switch))
        return self.step(step_name or f"start-{'-'.join(units)}", script, triggers=triggers, depends_on=depends_on)


def fingerprint(inputs: Sequence[pulumi.Input]) -> pulumi.Output[str]:
    """One digest of what a service runs on (file digests, artifact checksums): what the node keeps to tell whether
    a service must restart. In the clear: a digest of key material reveals none of it, so the scripts that carry it
    stay plain and keep their logs."""
    return pulumi.Output.unsecret(pulumi.Output.all(*inputs).apply(lambda values: digest(*(str(v) for v in values))))
