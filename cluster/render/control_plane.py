"""Control plane: kube-apiserver, kube-controller-manager and kube-scheduler on one controller.

Components on a controller reach the API at https://127.0.0.1:6443 (a network load balancer does not hairpin).
The cluster CA's private key never leaves the deployer: no CSR signing happens on the nodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cluster.render import apiserver_config as policy
from cluster.render.apiserver_config import ENCRYPTION_CONFIG, encryption_config
from cluster.render.common import BIN_DIR, CA_CERT, KUBE_DIR, PKI_DIR, NodeFile, flags, kubeconfig, systemd_unit
from infra.certs import ADMIN, SUPER_ADMIN

LOCAL_API = "https://127.0.0.1:6443"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_KUBECONFIG = f"{KUBE_DIR}/admin.kubeconfig"
# The break-glass identity (system:masters). On the controller it runs the one step that must work before any RBAC
# of ours exists: binding the admin group to cluster-admin.
SUPER_ADMIN_KUBECONFIG = f"{KUBE_DIR}/super-admin.kubeconfig"
# kubectl as the cluster-level steps run it on a controller (the admin group, bound to cluster-admin).
ADMIN_KUBECTL = (f"{BIN_DIR}/kubectl", "--kubeconfig", ADMIN_KUBECONFIG)
SUPER_ADMIN_KUBECTL = (f"{BIN_DIR}/kubectl", "--kubeconfig", SUPER_ADMIN_KUBECONFIG)
# Finished pods kept before the garbage collector deletes the oldest (the default, 12500, is sized for 5000-node
# clusters): enough to read the logs of recent Jobs, few enough that finished pods do not crowd etcd.
TERMINATED_POD_GC_THRESHOLD = 1000

# How an API server leaves service without failing a request. The API load balancer checks each controller's /readyz
# every API_LB_CHECK_INTERVAL_SECONDS and takes it out after API_LB_UNHEALTHY_THRESHOLD failures (each worker's
# haproxy checks more often, cluster/render/workers/haproxy.py). Asked to stop, an API server fails /readyz at once
# but keeps serving for SHUTDOWN_DELAY_SECONDS, one check interval more than the load balancer needs to notice; then
# it answers what still reaches it with 429 and Retry-After (which clients retry, on a new connection: another API
# server) until its requests in flight are done, and stops within 2 s. Without the delay its port closes at once and
# clients of the load balancer are refused until it notices; without --shutdown-send-retry-after the HTTP server waits
# the whole request timeout (60 s) for the open watch streams, which made every API server restart 60 s longer.
API_LB_CHECK_INTERVAL_SECONDS = 10
API_LB_UNHEALTHY_THRESHOLD = 2
SHUTDOWN_DELAY_SECONDS = (API_LB_UNHEALTHY_THRESHOLD + 1) * API_LB_CHECK_INTERVAL_SECONDS
# systemd's stop timeout for the API server: the delay, requests in flight (each bounded by the API server's 60 s
# request timeout) and a margin, before it is killed.
APISERVER_STOP_TIMEOUT_SECONDS = SHUTDOWN_DELAY_SECONDS + 60 + 30


@dataclass(frozen=True)
class ControlPlaneInputs:
    cluster_name: str
    node_name: str
    node_ip: str
    etcd_servers: str                 # https://ip:2379,...
    service_cidr: str
    pod_cidr: str
    pod_cidr_mask_size: int
    ca_pem: str
    etcd_ca_pem: str
    apiserver_cert_pem: str
    apiserver_key_pem: str
    kubelet_client_cert_pem: str
    kubelet_client_key_pem: str
    etcd_client_cert_pem: str
    etcd_client_key_pem: str
    service_account_key_pem: str
    service_account_pub_pem: str
    controller_manager_cert_pem: str
    controller_manager_key_pem: str
    scheduler_cert_pem: str
    scheduler_key_pem: str
    admin_cert_pem: str
    admin_key_pem: str
    super_admin_cert_pem: str
    super_admin_key_pem: str
    encryption_key_b64: str           # 32 random bytes, base64


def apiserver_flags(i: ControlPlaneInputs) -> list[tuple[str, str | None]]:
    return [
        ("advertise-address", i.node_ip),
        ("bind-address", "0.0.0.0"),
        ("secure-port", "6443"),
        ("allow-privileged", "true"),
        # Anonymous requests reach the health endpoints only; no --anonymous-auth, which this file replaces.
        ("authentication-config", policy.AUTHENTICATION_CONFIG),
        ("authorization-mode", "Node,RBAC"),
        ("enable-admission-plugins", ",".join(policy.ADMISSION_PLUGINS)),
        ("admission-control-config-file", policy.ADMISSION_CONFIG),
        ("client-ca-file", CA_CERT),
        ("tls-cert-file", f"{PKI_DIR}/kube-apiserver.crt"),
        ("tls-private-key-file", f"{PKI_DIR}/kube-apiserver.key"),
        ("tls-cipher-suites", ",".join(policy.TLS_CIPHER_SUITES)),
        ("etcd-servers", i.etcd_servers),
        ("etcd-cafile", f"{PKI_DIR}/etcd-ca.crt"),
        ("etcd-certfile", f"{PKI_DIR}/kube-apiserver-etcd-client.crt"),
        ("etcd-keyfile", f"{PKI_DIR}/kube-apiserver-etcd-client.key"),
        ("kubelet-certificate-authority", CA_CERT),
        ("kubelet-client-certificate", f"{PKI_DIR}/kube-apiserver-kubelet-client.crt"),
        ("kubelet-client-key", f"{PKI_DIR}/kube-apiserver-kubelet-client.key"),
        ("kubelet-preferred-address-types", "InternalIP,Hostname,ExternalIP"),
        # The 2016 tutorial and today's KTHW leave this out; then the `kubernetes` Service is not 10.32.0.1.
        ("service-cluster-ip-range", i.service_cidr),
        ("service-node-port-range", "30000-32767"),
        ("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        ("service-account-key-file", f"{PKI_DIR}/service-account.pub"),
        ("service-account-signing-key-file", f"{PKI_DIR}/service-account.key"),
        # Tokens live as long as they say: no silent one-year extension of the ones that ask for an hour.
        ("service-account-extend-token-expiration", "false"),
        ("encryption-provider-config", ENCRYPTION_CONFIG),
        ("audit-policy-file", policy.AUDIT_POLICY),
        ("audit-log-path", policy.AUDIT_LOG),
        ("audit-log-maxage", str(policy.AUDIT_LOG_MAXAGE_DAYS)),
        ("audit-log-maxbackup", str(policy.AUDIT_LOG_MAXBACKUP)),
        ("audit-log-maxsize", str(policy.AUDIT_LOG_MAXSIZE_MB)),
        ("profiling", "false"),
        ("event-ttl", "1h"),
        # Leaving service without a failed request (SHUTDOWN_DELAY_SECONDS above).
        ("shutdown-delay-duration", f"{SHUTDOWN_DELAY_SECONDS}s"),
        ("shutdown-send-retry-after", "true"),
        ("v", "2"),
    ]


def controller_manager_flags(i: ControlPlaneInputs) -> list[tuple[str, str | None]]:
    kc = f"{KUBE_DIR}/kube-controller-manager.kubeconfig"
    return [
        ("bind-address", "127.0.0.1"),
        ("kubeconfig", kc),
        ("authentication-kubeconfig", kc),
        ("authorization-kubeconfig", kc),
        ("cluster-name", i.cluster_name),
        # Each node gets a slice of the pod range in node.spec.podCIDR: the CNI config and the routes follow it.
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", i.pod_cidr),
        ("node-cidr-mask-size", str(i.pod_cidr_mask_size)),
        ("configure-cloud-routes", "false"),
        ("service-cluster-ip-range", i.service_cidr),
        ("root-ca-file", CA_CERT),
        ("service-account-private-key-file", f"{PKI_DIR}/service-account.key"),
        ("use-service-account-credentials", "true"),
        ("terminated-pod-gc-threshold", str(TERMINATED_POD_GC_THRESHOLD)),
        ("leader-elect", "true"),
        ("profiling", "false"),
        ("v", "2"),
    ]


def scheduler_config() -> str:
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": f"{KUBE_DIR}/kube-scheduler.kubeconfig"},
        "leaderElection": {"leaderElect": True},
        # What turns profiling off: with --config, kube-scheduler ignores its --profiling flag.
        "enableProfiling": False,
    }
    return json.dumps(doc, indent=2) + "\n"


def scheduler_flags() -> list[tuple[str, str | None]]:
    kc = f"{KUBE_DIR}/kube-scheduler.kubeconfig"
    return [("config", f"{KUBE_DIR}/kube-scheduler.yaml"), ("bind-address", "127.0.0.1"),
            ("authentication-kubeconfig", kc), ("authorization-kubeconfig", kc),
            # Ignored beside --config (enableProfiling above decides); stated so that audits reading the command
            # line (CIS 1.4.1, kube-bench) see it.
            ("profiling", "false"), ("v", "2")]


DOCS = "https://kubernetes.io/docs/reference/command-line-tools-reference/"


def control_plane_units(i: ControlPlaneInputs) -> dict[str, str]:
    """Unit name -> unit text."""
    return {
        "kube-apiserver": systemd_unit(description="Kubernetes API Server", documentation=DOCS + "kube-apiserver/",
                                       exec_start=flags(f"{BIN_DIR}/kube-apiserver", apiserver_flags(i)),
                                       service={"TimeoutStopSec": str(APISERVER_STOP_TIMEOUT_SECONDS)}),
        "kube-controller-manager": systemd_unit(
            description="Kubernetes Controller Manager", documentation=DOCS + "kube-controller-manager/",
            exec_start=flags(f"{BIN_DIR}/kube-controller-manager", controller_manager_flags(i))),
        "kube-scheduler": systemd_unit(description="Kubernetes Scheduler", documentation=DOCS + "kube-scheduler/",
                                       exec_start=flags(f"{BIN_DIR}/kube-scheduler", scheduler_flags())),
    }


def control_plane_files(i: ControlPlaneInputs) -> dict[str, list[NodeFile]]:
    """Files by the service that reads them (a change restarts exactly those services)."""
    def local(user: str, cert: str, key: str) -> str:
        return kubeconfig(cluster=i.cluster_name, server=LOCAL_API, ca_pem=i.ca_pem, user=user, cert_pem=cert,
                          key_pem=key)

    units = control_plane_units(i)
    shared = [NodeFile(CA_CERT, i.ca_pem)]
    return {
        "kube-apiserver": shared + [
            NodeFile(f"{PKI_DIR}/etcd-ca.crt", i.etcd_ca_pem),
            NodeFile(f"{PKI_DIR}/kube-apiserver.crt", i.apiserver_cert_pem),
            NodeFile(f"{PKI_DIR}/kube-apiserver.key", i.apiserver_key_pem, "0600", secret=True),
            NodeFile(f"{PKI_DIR}/kube-apiserver-kubelet-client.crt", i.kubelet_client_cert_pem),
            NodeFile(f"{PKI_DIR}/kube-apiserver-kubelet-client.key", i.kubelet_client_key_pem, "0600", secret=True),
            NodeFile(f"{PKI_DIR}/kube-apiserver-etcd-client.crt", i.etcd_client_cert_pem),
            NodeFile(f"{PKI_DIR}/kube-apiserver-etcd-client.key", i.etcd_client_key_pem, "0600", secret=True),
            NodeFile(f"{PKI_DIR}/service-account.pub", i.service_account_pub_pem),
            NodeFile(f"{PKI_DIR}/service-account.key", i.service_account_key_pem, "0600", secret=True),
            NodeFile(ENCRYPTION_CONFIG, encryption_config(i.encryption_key_b64), "0600", secret=True),
            NodeFile(policy.AUTHENTICATION_CONFIG, policy.authentication_config(), "0600"),
            NodeFile(policy.ADMISSION_CONFIG, policy.admission_config(), "0600"),
            NodeFile(policy.AUDIT_POLICY, policy.audit_policy(), "0600"),
            NodeFile("/etc/systemd/system/kube-apiserver.service", units["kube-apiserver"]),
        ],
        "kube-controller-manager": shared + [
            NodeFile(f"{PKI_DIR}/service-account.key", i.service_account_key_pem, "0600", secret=True),
            NodeFile(f"{KUBE_DIR}/kube-controller-manager.kubeconfig",
                     local("system:kube-controller-manager", i.controller_manager_cert_pem,
                           i.controller_manager_key_pem), "0600", secret=True),
            NodeFile("/etc/systemd/system/kube-controller-manager.service", units["kube-controller-manager"]),
        ],
        "kube-scheduler": [
            NodeFile(f"{KUBE_DIR}/kube-scheduler.yaml", scheduler_config()),
            NodeFile(f"{KUBE_DIR}/kube-scheduler.kubeconfig",
                     local("system:kube-scheduler", i.scheduler_cert_pem, i.scheduler_key_pem), "0600", secret=True),
            NodeFile("/etc/systemd/system/kube-scheduler.service", units["kube-scheduler"]),
        ],
        # For the operator on the controller and for the cluster-level steps run from here: the admin group for
        # everything, the break-glass identity for the step that binds that group.
        "admin": [
            NodeFile(ADMIN_KUBECONFIG, local(ADMIN, i.admin_cert_pem, i.admin_key_pem), "0600", secret=True),
            NodeFile(SUPER_ADMIN_KUBECONFIG, local(SUPER_ADMIN, i.super_admin_cert_pem, i.super_admin_key_pem),
                     "0600", secret=True),
        ],
    }


# RBAC objects earlier versions of this program created and the current RBAC replaces: the wildcard role for the API
# server's kubelet client (now the built-in system:kubelet-api-admin) and its binding, whose roleRef cannot change.
RETIRED_RBAC = ("clusterrolebinding/system:kube-apiserver-to-kubelet", "clusterrole/system:kube-apiserver-to-kubelet")


def rbac_apply_script(manifests: dict[str, str], retired: tuple[str, ...] = RETIRED_RBAC) -> str:
    """Server-side apply (idempotent) of the cluster's own RBAC as the break-glass identity, since the admin group
    has no rights until the binding applied here exists; then removal of what it replaces (after, so that no
    permission is missing in between)."""
    kubectl = " ".join(SUPER_ADMIN_KUBECTL)
    blocks = "".join(f"""echo "applying {name}"
{kubectl} apply --server-side --force-conflicts \\
  --field-manager k8s-from-scratch -f - <<'K8S_FROM_SCRATCH_EOF'
{manifest}K8S_FROM_SCRATCH_EOF
""" for name, manifest in manifests.items())
    cleanup = f"{kubectl} delete --ignore-not-found {' '.join(retired)}\n" if retired else ""
    return f"""#!/bin/bash
# Apply the cluster RBAC as {SUPER_ADMIN}. Verification: kubectl reports each object applied.
set -euo pipefail
{blocks}{cleanup}"""


def apiserver_ready_script(timeout_seconds: int = 300) -> str:
    """Verification: this controller's API server answers /readyz (with its checks) over TLS it can verify."""
    return f"""#!/bin/bash
# Verification: the local API server is ready.
set -uo pipefail
deadline=$((SECONDS + {timeout_seconds}))
until out=$(curl --silent --show-error --fail --cacert {CA_CERT} "{LOCAL_API}/readyz?verbose" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kube-apiserver on $(hostname) is not ready after {timeout_seconds}s:" >&2
    echo "$out" | tail -n 20 >&2
    for unit in kube-apiserver kube-controller-manager kube-scheduler; do
      echo "--- last lines of the $unit log on $(hostname):" >&2
      journalctl -u "$unit" --no-pager -n 20 >&2 || true
    done
    exit 1
  fi
  sleep 5
done
echo "kube-apiserver on $(hostname) is ready"
"""
