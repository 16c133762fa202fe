"""Rolling changes of workers: the scripts that take a worker out of service before a restart of what its pods run
on, bring it back once it is Ready again, and drain it for good before its machine goes.

All three run on the first controller with the deployer's kubeconfig (the program's own identity, bound to
cluster-admin): a node's own identity may neither evict pods nor cordon. They carry names only, never a credential.

The node keeps, in an annotation, the fingerprint of the inputs its pods' runtime (containerd, kubelet) last came
up Ready with. That, not the reason the step runs, decides whether a drain is needed: a drain step run again for
any other reason (a new connection, a replaced controller) sees the same fingerprint and drains nothing.
"""

from __future__ import annotations

import shlex

from cluster.render import shell
from cluster.render.control_plane import DEPLOYER_KUBECTL

ANNOTATION_PREFIX = "k8s-from-scratch.io"
# The fingerprint of containerd's and the kubelet's inputs the node last came up Ready with.
RUNTIME_INPUTS = f"{ANNOTATION_PREFIX}/pod-runtime-inputs"
# Set when the drain cordoned a node that was schedulable: only then does the rollout uncordon it (a node someone
# cordoned by hand stays cordoned).
CORDONED_FOR_RESTART = f"{ANNOTATION_PREFIX}/cordoned-for-restart"
# The EC2 instance the node last came into service on (its uncordon step records it): a removal step made for an
# earlier machine of the same name (a worker lost, refreshed and created again) leaves the new one alone.
INSTANCE_ID = f"{ANNOTATION_PREFIX}/instance-id"
# The Ready condition's heartbeat when the drain began: Ready again means a heartbeat after it (a restarted kubelet
# reports its status at once; before that the API still shows the old, stale Ready).
HEARTBEAT_AT_DRAIN = f"{ANNOTATION_PREFIX}/heartbeat-at-drain"

DRAIN_TIMEOUT_SECONDS = 300
READY_TIMEOUT_SECONDS = 600
# What `kubectl drain` is told, here and in docs/operations.md: skip DaemonSet pods (they would be recreated at once), allow
# deleting emptyDir data (it goes with the pod anyway), and evict through the Eviction API, which refuses an
# eviction a PodDisruptionBudget forbids; drain retries it until its timeout.
DRAIN_FLAGS = ("--ignore-daemonsets", "--delete-emptydir-data")


def _jsonpath_key(annotation: str) -> str:
    """An annotation as a kubectl jsonpath key (dots escaped)."""
    return annotation.replace(".", "\\.")


def _prelude(node: str) -> str:
    return shell.render("rollout/prelude.sh", NODE=shlex.quote(node),
                        KUBECTL=" ".join(shlex.quote(a) for a in DEPLOYER_KUBECTL))


def _drain_block(timeout_seconds: int, then: str) -> str:
    """Cordon and drain `$node` within the bound; `then` says in the failure message what the user does next."""
    return shell.render("rollout/drain-block.sh", TIMEOUT_SECONDS=timeout_seconds,
                        OUTER_TIMEOUT_SECONDS=timeout_seconds + 30, DRAIN_FLAGS=" ".join(DRAIN_FLAGS), THEN=then,
                        KUBECTL=" ".join(shlex.quote(a) for a in DEPLOYER_KUBECTL))


def drain_script(node: str, runtime_inputs: str, timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before a restart of containerd or the kubelet on `node`: cordon and drain it, unless it is not registered
    (a new machine) or its pods' runtime already runs `runtime_inputs` (nothing it runs pods on will restart)."""
    return shell.render(
        "rollout/drain.sh", NODE=node, PRELUDE=_prelude(node), WANT=shlex.quote(runtime_inputs),
        RUNTIME_INPUTS_KEY=_jsonpath_key(RUNTIME_INPUTS), CORDONED_FOR_RESTART=CORDONED_FOR_RESTART,
        HEARTBEAT_AT_DRAIN=HEARTBEAT_AT_DRAIN,
        DRAIN=_drain_block(timeout_seconds, "Fix what holds the pod and run pulumi up again."))


def uncordon_script(node: str, runtime_inputs: str, instance_id: str, timeout_seconds: int = READY_TIMEOUT_SECONDS,
                    poll_seconds: int = 5) -> str:
    """After `node`'s services are (re)started: wait until it is Ready again (a heartbeat after the drain's, when it
    was drained), uncordon it if the drain cordoned it, and record `runtime_inputs` as what it now runs and
    `instance_id` as the machine it runs on."""
    return shell.render(
        "rollout/uncordon.sh", NODE=node, PRELUDE=_prelude(node), WANT=shlex.quote(runtime_inputs),
        INSTANCE_ID=shlex.quote(instance_id), INSTANCE_ID_ANNOTATION=INSTANCE_ID,
        HEARTBEAT_AT_DRAIN_KEY=_jsonpath_key(HEARTBEAT_AT_DRAIN), TIMEOUT_SECONDS=timeout_seconds,
        POLL_SECONDS=poll_seconds, CORDONED_FOR_RESTART_KEY=_jsonpath_key(CORDONED_FOR_RESTART),
        RUNTIME_INPUTS=RUNTIME_INPUTS, CORDONED_FOR_RESTART=CORDONED_FOR_RESTART, HEARTBEAT_AT_DRAIN=HEARTBEAT_AT_DRAIN)


def remove_node_script(node: str, instance_id: str, timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before `node`'s machine `instance_id` goes (a lower `workers.count`, or the machine replaced): cordon and
    drain it, then delete its Node object. Nothing to do when it is not registered, or when its uncordon step
    recorded another machine (a newer one of the same name: this step's delete comes after it came up)."""
    return shell.render(
        "rollout/remove-node.sh", NODE=node, PRELUDE=_prelude(node), INSTANCE_ID=shlex.quote(instance_id),
        INSTANCE_ID_KEY=_jsonpath_key(INSTANCE_ID), DRAIN=_drain_block(
            timeout_seconds, "Fix what holds the pod and run pulumi up again; the machine is kept until then."))


def node_listed_script(node: str) -> str:
    """What the removal step checks when it is created: the node it will remove is registered."""
    return shell.render("rollout/node-listed.sh", NODE=node, PRELUDE=_prelude(node))
