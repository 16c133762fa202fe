"""Control plane: kube-apiserver, kube-controller-manager and kube-scheduler on one controller.

Components on a controller reach the API at https://127.0.0.1:6443 (a network load balancer does not hairpin).
The cluster CA's private key never leaves the deployer: no CSR signing happens on the nodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cluster.render import apiserver_config as policy
from cluster.render import shell
from cluster.render.apiserver_config import ENCRYPTION_CONFIG, encryption_config
from cluster.render.common import (BIN_DIR, CA_CERT, KUBE_DIR, PKI_DIR, UNIT_DIR, NodeFile, flags, kubeconfig,
                                   kubectl_apply, systemd_unit)
from cluster.render.services import Service, Skew, in_report_order
from infra.certs import ADMIN, DEPLOYER_CN, FRONT_PROXY_CLIENT, SUPER_ADMIN

LOCAL_API = "https://127.0.0.1:6443"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_KUBECONFIG = f"{KUBE_DIR}/admin.kubeconfig"
# The break-glass identity (system:masters), on the first controller only. There it runs the one step that must
# work before any RBAC of ours exists: binding the admin and deployer groups to cluster-admin.
SUPER_ADMIN_KUBECONFIG = f"{KUBE_DIR}/super-admin.kubeconfig"
# The program's own identity, bound to cluster-admin by a binding of its own: the cluster-level steps (drains, add-ons,
# the pod range reader) run as it, so revoking the people's admin group never breaks `pulumi up`.
DEPLOYER_KUBECONFIG = f"{KUBE_DIR}/deployer.kubeconfig"
# kubectl as the cluster-level steps run it on a controller.
DEPLOYER_KUBECTL = (f"{BIN_DIR}/kubectl", "--kubeconfig", DEPLOYER_KUBECONFIG)
SUPER_ADMIN_KUBECTL = (f"{BIN_DIR}/kubectl", "--kubeconfig", SUPER_ADMIN_KUBECONFIG)
# The service-account signing key: the API server signs tokens with it, and so does the controller-manager.
SERVICE_ACCOUNT_KEY = f"{PKI_DIR}/service-account.key"
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

FRONT_PROXY_CA_CERT = f"{PKI_DIR}/front-proxy-ca.crt"
FRONT_PROXY_CLIENT_CERT = f"{PKI_DIR}/front-proxy-client.crt"
FRONT_PROXY_CLIENT_KEY = f"{PKI_DIR}/front-proxy-client.key"


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
    deployer_cert_pem: str
    deployer_key_pem: str
    front_proxy_ca_pem: str
    front_proxy_client_cert_pem: str
    front_proxy_client_key_pem: str
    encryption_key_b64: str           # 32 random bytes, base64
    holds_break_glass: bool = False   # the first controller: it keeps the super-admin kubeconfig, no other does


def apiserver_flags(inputs: ControlPlaneInputs) -> list[tuple[str, str | None]]:
    return [
        ("advertise-address", inputs.node_ip),
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
        ("etcd-servers", inputs.etcd_servers),
        ("etcd-cafile", f"{PKI_DIR}/etcd-ca.crt"),
        ("etcd-certfile", f"{PKI_DIR}/kube-apiserver-etcd-client.crt"),
        ("etcd-keyfile", f"{PKI_DIR}/kube-apiserver-etcd-client.key"),
        ("kubelet-certificate-authority", CA_CERT),
        ("kubelet-client-certificate", f"{PKI_DIR}/kube-apiserver-kubelet-client.crt"),
        ("kubelet-client-key", f"{PKI_DIR}/kube-apiserver-kubelet-client.key"),
        ("kubelet-preferred-address-types", "InternalIP,Hostname,ExternalIP"),
        # Webhooks and aggregated APIs are dialled at their Services' endpoints (pod addresses, which controllers
        # route to) instead of the cluster IP, which only kube-proxy translates and controllers run none.
        ("enable-aggregator-routing", "true"),
        # The aggregation layer as kubeadm sets it up: the API server proxies to an aggregated API with the
        # front-proxy client certificate and names the user in these headers, which only that CA may send.
        ("requestheader-client-ca-file", FRONT_PROXY_CA_CERT),
        ("requestheader-allowed-names", FRONT_PROXY_CLIENT),
        ("requestheader-username-headers", "X-Remote-User"),
        ("requestheader-group-headers", "X-Remote-Group"),
        ("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        ("proxy-client-cert-file", FRONT_PROXY_CLIENT_CERT),
        ("proxy-client-key-file", FRONT_PROXY_CLIENT_KEY),
        # The 2016 tutorial and today's KTHW leave this out; then the `kubernetes` Service is not 10.32.0.1.
        ("service-cluster-ip-range", inputs.service_cidr),
        ("service-node-port-range", "30000-32767"),
        ("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        ("service-account-key-file", f"{PKI_DIR}/service-account.pub"),
        ("service-account-signing-key-file", SERVICE_ACCOUNT_KEY),
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


def controller_manager_flags(inputs: ControlPlaneInputs) -> list[tuple[str, str | None]]:
    kc = f"{KUBE_DIR}/kube-controller-manager.kubeconfig"
    return [
        ("bind-address", "127.0.0.1"),
        ("kubeconfig", kc),
        ("authentication-kubeconfig", kc),
        ("authorization-kubeconfig", kc),
        ("cluster-name", inputs.cluster_name),
        # Each node gets a slice of the pod range in node.spec.podCIDR: the CNI config and the routes follow it.
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", inputs.pod_cidr),
        ("node-cidr-mask-size", str(inputs.pod_cidr_mask_size)),
        ("service-cluster-ip-range", inputs.service_cidr),
        ("root-ca-file", CA_CERT),
        ("service-account-private-key-file", SERVICE_ACCOUNT_KEY),
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


def apiserver_files(inputs: ControlPlaneInputs) -> list[NodeFile]:
    return [
        NodeFile(CA_CERT, inputs.ca_pem),
        NodeFile(f"{PKI_DIR}/etcd-ca.crt", inputs.etcd_ca_pem),
        NodeFile(f"{PKI_DIR}/kube-apiserver.crt", inputs.apiserver_cert_pem),
        NodeFile(f"{PKI_DIR}/kube-apiserver.key", inputs.apiserver_key_pem, "0600", secret=True),
        NodeFile(f"{PKI_DIR}/kube-apiserver-kubelet-client.crt", inputs.kubelet_client_cert_pem),
        NodeFile(f"{PKI_DIR}/kube-apiserver-kubelet-client.key", inputs.kubelet_client_key_pem, "0600", secret=True),
        NodeFile(f"{PKI_DIR}/kube-apiserver-etcd-client.crt", inputs.etcd_client_cert_pem),
        NodeFile(f"{PKI_DIR}/kube-apiserver-etcd-client.key", inputs.etcd_client_key_pem, "0600", secret=True),
        NodeFile(f"{PKI_DIR}/service-account.pub", inputs.service_account_pub_pem),
        NodeFile(SERVICE_ACCOUNT_KEY, inputs.service_account_key_pem, "0600", secret=True),
        NodeFile(FRONT_PROXY_CA_CERT, inputs.front_proxy_ca_pem),
        NodeFile(FRONT_PROXY_CLIENT_CERT, inputs.front_proxy_client_cert_pem),
        NodeFile(FRONT_PROXY_CLIENT_KEY, inputs.front_proxy_client_key_pem, "0600", secret=True),
        NodeFile(ENCRYPTION_CONFIG, encryption_config(inputs.encryption_key_b64), "0600", secret=True),
        NodeFile(policy.AUTHENTICATION_CONFIG, policy.authentication_config(), "0600"),
        NodeFile(policy.ADMISSION_CONFIG, policy.admission_config(), "0600"),
        NodeFile(policy.AUDIT_POLICY, policy.audit_policy(), "0600"),
        NodeFile(f"{UNIT_DIR}/{API_SERVER.unit}", apiserver_unit(inputs)),
    ]


def controller_manager_files(inputs: ControlPlaneInputs) -> list[NodeFile]:
    return [
        NodeFile(CA_CERT, inputs.ca_pem),
        NodeFile(SERVICE_ACCOUNT_KEY, inputs.service_account_key_pem, "0600", secret=True),
        NodeFile(f"{KUBE_DIR}/kube-controller-manager.kubeconfig",
                 _local_kubeconfig(inputs, "system:kube-controller-manager", inputs.controller_manager_cert_pem,
                                   inputs.controller_manager_key_pem), "0600", secret=True),
        NodeFile(f"{UNIT_DIR}/kube-controller-manager.service", controller_manager_unit(inputs)),
    ]


def scheduler_files(inputs: ControlPlaneInputs) -> list[NodeFile]:
    return [
        NodeFile(f"{KUBE_DIR}/kube-scheduler.yaml", scheduler_config()),
        NodeFile(f"{KUBE_DIR}/kube-scheduler.kubeconfig",
                 _local_kubeconfig(inputs, "system:kube-scheduler", inputs.scheduler_cert_pem,
                                   inputs.scheduler_key_pem), "0600", secret=True),
        NodeFile(f"{UNIT_DIR}/kube-scheduler.service", scheduler_unit()),
    ]


def admin_files(inputs: ControlPlaneInputs) -> list[NodeFile]:
    """For the operator on the controller (the admin group) and for the cluster-level steps run from here (the
    deployer); on the first controller, the break-glass identity for the step that binds those groups. No service
    reads them."""
    files = [
        NodeFile(ADMIN_KUBECONFIG, _local_kubeconfig(inputs, ADMIN, inputs.admin_cert_pem, inputs.admin_key_pem),
                 "0600", secret=True),
        NodeFile(DEPLOYER_KUBECONFIG, _local_kubeconfig(inputs, DEPLOYER_CN, inputs.deployer_cert_pem,
                                                        inputs.deployer_key_pem), "0600", secret=True),
    ]
    if inputs.holds_break_glass:
        files.append(NodeFile(SUPER_ADMIN_KUBECONFIG, _local_kubeconfig(
            inputs, SUPER_ADMIN, inputs.super_admin_cert_pem, inputs.super_admin_key_pem), "0600", secret=True))
    return files


def retired_files(inputs: ControlPlaneInputs) -> list[str]:
    """Files a controller must no longer hold: the break-glass kubeconfig, everywhere but on the first controller
    (earlier versions wrote it on every controller)."""
    return [] if inputs.holds_break_glass else [SUPER_ADMIN_KUBECONFIG]


# The control plane's services in start order. Each restarts when a file it reads or the server release changes. In
# the skew order the API servers come first (on a running cluster one controller at a time, each ready before the
# next), then the controller-managers and schedulers.
API_SERVER = Service("kube-apiserver", files=apiserver_files, artifacts=("kubernetes-server",), skew=Skew.API_SERVER,
                     runs=("kube-apiserver",))
SERVICES = (
    API_SERVER,
    Service("kube-controller-manager", files=controller_manager_files, artifacts=("kubernetes-server",),
            skew=Skew.CONTROLLERS, runs=("kube-controller-manager",)),
    Service("kube-scheduler", files=scheduler_files, artifacts=("kubernetes-server",), skew=Skew.CONTROLLERS,
            runs=("kube-scheduler",)),
)
# The controller-manager and the scheduler: after their controller's API server and, on a running cluster, after
# every API server.
CONTROLLERS = tuple(s for s in SERVICES if s.skew == Skew.CONTROLLERS)


def control_plane_files(inputs: ControlPlaneInputs) -> dict[str, list[NodeFile]]:
    """Files by the service that reads them (a change restarts exactly those services), and the admin files."""
    return {**{service.name: service.files(inputs) for service in SERVICES}, "admin": admin_files(inputs)}


def _local_kubeconfig(inputs: ControlPlaneInputs, user: str, cert_pem: str, key_pem: str) -> str:
    return kubeconfig(cluster=inputs.cluster_name, server=LOCAL_API, ca_pem=inputs.ca_pem, user=user,
                      cert_pem=cert_pem, key_pem=key_pem)


def apiserver_unit(inputs: ControlPlaneInputs) -> str:
    return systemd_unit(description="Kubernetes API Server", documentation=DOCS + "kube-apiserver/",
                        exec_start=flags(f"{BIN_DIR}/kube-apiserver", apiserver_flags(inputs)),
                        service={"TimeoutStopSec": str(APISERVER_STOP_TIMEOUT_SECONDS)})


def controller_manager_unit(inputs: ControlPlaneInputs) -> str:
    return systemd_unit(description="Kubernetes Controller Manager", documentation=DOCS + "kube-controller-manager/",
                        exec_start=flags(f"{BIN_DIR}/kube-controller-manager", controller_manager_flags(inputs)))


def scheduler_unit() -> str:
    return systemd_unit(description="Kubernetes Scheduler", documentation=DOCS + "kube-scheduler/",
                        exec_start=flags(f"{BIN_DIR}/kube-scheduler", scheduler_flags()))


def control_plane_units(inputs: ControlPlaneInputs) -> dict[str, str]:
    """Unit name -> unit text."""
    return {"kube-apiserver": apiserver_unit(inputs), "kube-controller-manager": controller_manager_unit(inputs),
            "kube-scheduler": scheduler_unit()}


# RBAC objects earlier versions of this program created and the current RBAC replaces: the wildcard role for the API
# server's kubelet client (now the built-in system:kubelet-api-admin) and its binding, whose roleRef cannot change.
RETIRED_RBAC = ("clusterrolebinding/system:kube-apiserver-to-kubelet", "clusterrole/system:kube-apiserver-to-kubelet")


def rbac_apply_script(manifests: dict[str, str], retired: tuple[str, ...] = RETIRED_RBAC) -> str:
    """Server-side apply (idempotent) of the cluster's own RBAC as the break-glass identity, since the admin group
    has no rights until the binding applied here exists; then removal of what it replaces (after, so that no
    permission is missing in between)."""
    kubectl = " ".join(SUPER_ADMIN_KUBECTL)
    apply_each = "".join(f'echo "applying {name}"\n' + kubectl_apply(kubectl, manifest)
                         for name, manifest in manifests.items())
    return shell.render("control-plane/apply-rbac.sh", IDENTITY=SUPER_ADMIN, APPLY_EACH=apply_each,
                        DELETE_RETIRED=f"{kubectl} delete --ignore-not-found {' '.join(retired)}" if retired else "")


def apiserver_ready_script(timeout_seconds: int = 300) -> str:
    """Verification: this controller's API server answers /readyz (with its checks) over TLS it can verify.
    Otherwise, the last log lines of each control plane service."""
    log_tails = shell.render("lib/journal-tails.sh", UNITS=" ".join(in_report_order(SERVICES)), HOST="$(hostname)")
    return shell.render("control-plane/apiserver-ready.sh", TIMEOUT_SECONDS=timeout_seconds, CA_CERT=CA_CERT,
                        LOCAL_API=LOCAL_API, LOG_TAILS=log_tails)
