"""Rolling changes of workers: the scripts that take a worker out of service before a restart of what its pods run
on, bring it back once it is Ready again, and drain it for good before its machine goes.

All three run on the first controller with the admin kubeconfig (the admin group is bound to cluster-admin): a
node's own identity may neither evict pods nor cordon. They carry names only, never a credential.

The node keeps, in an annotation, the fingerprint of the inputs its pods' runtime (containerd, kubelet) last came
up Ready with. That, not the reason the step runs, decides whether a drain is needed: a drain step run again for
any other reason (a new connection, a replaced controller) sees the same fingerprint and drains nothing.
"""

from __future__ import annotations

import shlex

from cluster.render.control_plane import ADMIN_KUBECTL

ANNOTATION_PREFIX = "k8s-from-scratch.io"
# The fingerprint of containerd's and the kubelet's inputs the node last came up Ready with.
RUNTIME_INPUTS = f"{ANNOTATION_PREFIX}/pod-runtime-inputs"
# Set when the drain cordoned a node that was schedulable: only then does the rollout uncordon it (a node someone
# cordoned by hand stays cordoned).
CORDONED_FOR_RESTART = f"{ANNOTATION_PREFIX}/cordoned-for-restart"
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
    kubectl = " ".join(shlex.quote(a) for a in ADMIN_KUBECTL)
    return f"""set -uo pipefail
node={shlex.quote(node)}
kubectl() {{ timeout 60 {kubectl} "$@"; }}
fail() {{ echo "$1" >&2; exit 1; }}
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() {{ kubectl get node "$node" -o "jsonpath=$1"; }}
ready_status() {{ field '{{.status.conditions[?(@.type=="Ready")].status}}'; }}
heartbeat() {{ field '{{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}}'; }}
"""


def _drain_block(timeout_seconds: int, then: str) -> str:
    """Cordon and drain `$node` within the bound; `then` says in the failure message what the user does next."""
    flags = " ".join(DRAIN_FLAGS)
    return f"""kubectl cordon "$node" >/dev/null || fail "cannot cordon $node"
if [ "$(ready_status)" != True ]; then
  # Its kubelet is not running pods: evictions would never complete, and there is nothing on it to move.
  echo "$node is not Ready: cordoned, nothing to drain"
else
  echo "draining $node (at most {timeout_seconds}s; PodDisruptionBudgets are respected)"
  if ! out=$(timeout {timeout_seconds + 30} {" ".join(shlex.quote(a) for a in ADMIN_KUBECTL)} drain "$node" {flags} \\
      --timeout={timeout_seconds}s 2>&1); then
    echo "$out" | tail -n 20 >&2
    fail "$node could not be drained within {timeout_seconds}s (a PodDisruptionBudget that allows no disruption, a \\
pod that does not stop, or a pod no controller manages, which drain does not delete): it stays cordoned. {then}"
  fi
  echo "$out" | tail -n 5
fi
"""


def drain_script(node: str, runtime_inputs: str, timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before a restart of containerd or the kubelet on `node`: cordon and drain it, unless it is not registered
    (a new machine) or its pods' runtime already runs `runtime_inputs` (nothing it runs pods on will restart)."""
    return f"""#!/bin/bash
# Take {node} out of service before containerd or its kubelet restart. Verification: the node is cordoned and only
# DaemonSet pods are left on it, or it needs no drain.
{_prelude(node)}want={shlex.quote(runtime_inputs)}
if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node (a new machine): nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API: $out"
fi
running=$(field '{{.metadata.annotations.{_jsonpath_key(RUNTIME_INPUTS)}}}') || fail "cannot read node $node"
if [ "$running" = "$want" ]; then
  echo "$node: containerd and the kubelet already run these inputs, nothing to drain"
  exit 0
fi
if [ "$(field '{{.spec.unschedulable}}')" != true ]; then
  kubectl annotate --overwrite node "$node" {CORDONED_FOR_RESTART}=true >/dev/null || fail "cannot annotate $node"
fi
kubectl annotate --overwrite node "$node" "{HEARTBEAT_AT_DRAIN}=$(heartbeat)" >/dev/null || \\
  fail "cannot annotate $node"
{_drain_block(timeout_seconds, "Fix what holds the pod and run pulumi up again.")}echo "$node is drained"
"""


def uncordon_script(node: str, runtime_inputs: str, timeout_seconds: int = READY_TIMEOUT_SECONDS,
                    poll_seconds: int = 5) -> str:
    """After `node`'s services are (re)started: wait until it is Ready again (a heartbeat after the drain's, when it
    was drained), uncordon it if the drain cordoned it, and record `runtime_inputs` as what it now runs."""
    return f"""#!/bin/bash
# Bring {node} back into service. Verification: the node is Ready with a status reported since its drain, and
# schedulable unless someone else cordoned it.
{_prelude(node)}want={shlex.quote(runtime_inputs)}
before=$(field '{{.metadata.annotations.{_jsonpath_key(HEARTBEAT_AT_DRAIN)}}}') || fail "cannot read node $node"
deadline=$((SECONDS + {timeout_seconds}))
until [ "$(ready_status)" = True ] && {{ [ -z "$before" ] || [ "$(heartbeat)" != "$before" ]; }}; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    kubectl get node "$node" -o wide >&2 || true
    fail "$node is not Ready again after {timeout_seconds}s (Ready: $(ready_status), last heartbeat $(heartbeat), \\
before the drain $before): it stays cordoned"
  fi
  sleep {poll_seconds}
done
if [ "$(field '{{.metadata.annotations.{_jsonpath_key(CORDONED_FOR_RESTART)}}}')" = true ]; then
  kubectl uncordon "$node" >/dev/null || fail "cannot uncordon $node"
  echo "$node uncordoned"
fi
kubectl annotate --overwrite node "$node" "{RUNTIME_INPUTS}=$want" {CORDONED_FOR_RESTART}- \\
  {HEARTBEAT_AT_DRAIN}- >/dev/null || fail "cannot annotate $node"
echo "$node is Ready and in service"
"""


def remove_node_script(node: str, timeout_seconds: int = DRAIN_TIMEOUT_SECONDS) -> str:
    """Before `node`'s machine goes (a lower `workers.count`, or the machine replaced): cordon and drain it, then
    delete its Node object. Nothing to do when it is not registered."""
    return f"""#!/bin/bash
# Remove {node} from the cluster before its machine goes. Verification: no Node named {node} is left.
{_prelude(node)}if ! out=$(kubectl get node "$node" -o name 2>&1); then
  if grep -q NotFound <<<"$out"; then
    echo "$node is not a registered node: nothing to drain"
    exit 0
  fi
  fail "cannot read node $node from the API, so it cannot be drained before its machine goes: $out"
fi
{_drain_block(timeout_seconds, "Fix what holds the pod and run pulumi up again; the machine is kept until then.")}\
kubectl delete node "$node" --wait=true >/dev/null || fail "cannot delete node $node"
echo "$node drained and deleted: its machine can go"
"""


def node_listed_script(node: str) -> str:
    """What the removal step checks when it is created: the node it will remove is registered."""
    return f"""#!/bin/bash
# Verification: {node} is a registered node (drained and deleted before its machine goes).
{_prelude(node)}kubectl get node "$node" -o name || fail "$node is not a registered node"
"""
