"""The cluster's PKI as a table: one row per identity. Pure data, no Pulumi.

`infra/pki.py` turns each row into key -> request -> signed certificate with pulumi-tls; tests (and the lab) mint
real certificates from the very same rows with `cryptography`. SAN values may be Pulumi Outputs (the load balancer's
DNS name is only known once it exists): this module never looks inside them, it only places them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

# pulumi-tls `allowed_uses` names
SERVER = ("digital_signature", "key_encipherment", "server_auth")
CLIENT = ("digital_signature", "key_encipherment", "client_auth")
SERVER_AND_CLIENT = ("digital_signature", "key_encipherment", "server_auth", "client_auth")
CA_USES = ("cert_signing", "crl_signing", "digital_signature")

CA_VALIDITY_HOURS = 10 * 365 * 24
LEAF_VALIDITY_HOURS = 365 * 24
# pulumi-tls marks a certificate for replacement this long before it expires, so a routine `pulumi up` renews it.
LEAF_EARLY_RENEWAL_HOURS = 30 * 24
# The break-glass identity (system:masters, which RBAC cannot revoke) lasts a week, and any `pulumi up` after its
# first day renews it: a copy that leaks stops working within days, and the one on controller-0 stays fresh.
SUPER_ADMIN_VALIDITY_HOURS = 7 * 24
SUPER_ADMIN_EARLY_RENEWAL_HOURS = 6 * 24

KUBERNETES_CA = "kubernetes-ca"
ETCD_CA = "etcd-ca"
FRONT_PROXY_CA = "front-proxy-ca"

# The in-cluster names of the API server; the full family, including the one the 2016 tutorial mistyped.
KUBERNETES_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
)

# What people's clients verify the API server certificate against when they come through the load balancer: a
# name the certificate carries from the start, so that it need not wait for the load balancer's own name.
API_TLS_SERVER_NAME = KUBERNETES_SERVICE_NAMES[0]

# Identities the control plane components present to the API server (and that RBAC binds).
APISERVER_KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
APISERVER_ETCD_CLIENT_CN = "kube-apiserver-etcd-client"

# The components' certificates, by name (the keys of Pki.certs and of the tests' minted PKI).
KUBE_APISERVER = "kube-apiserver"
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
APISERVER_ETCD_CLIENT = "kube-apiserver-etcd-client"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
KUBE_PROXY = "kube-proxy"
# What the API server presents when it proxies a request to an aggregated API (metrics-server, say), which then
# trusts the X-Remote-User/Group/Extra- headers it sends. The CN is the one name the API servers and every aggregated
# API accept for that (--requestheader-allowed-names), as kubeadm names it.
FRONT_PROXY_CLIENT = "front-proxy-client"
# metrics-server's serving certificate: the API server verifies it with the cluster CA (the APIService's caBundle).
METRICS_SERVER = "metrics-server"

# People. The everyday admin is a member of a group of ours that RBAC binds to `cluster-admin` (kubeadm does the same
# with `kubeadm:cluster-admins` since 1.29), so its rights can be narrowed or revoked with a ClusterRoleBinding.
# `system:masters` bypasses authorization altogether and cannot be revoked short of replacing the CA: only the
# break-glass identity carries it.
CLUSTER_ADMINS_GROUP = "k8s-from-scratch:cluster-admins"
ADMIN = "admin"
SUPER_ADMIN = "super-admin"
# The program's own steps (drains, add-ons, the pod range reader): an identity and a binding of their own, so that
# narrowing or revoking the people's group never breaks `pulumi up`.
DEPLOYERS_GROUP = "k8s-from-scratch:deployers"
DEPLOYER = "deployer"
DEPLOYER_CN = "k8s-from-scratch:deployer"


@dataclass(frozen=True)
class CaSpec:
    name: str
    common_name: str
    validity_hours: int = CA_VALIDITY_HOURS


@dataclass(frozen=True)
class CertSpec:
    name: str                       # unique; names the resources and the files on nodes
    ca: str                         # which CaSpec signs it
    common_name: str
    organization: str | None
    usages: tuple[str, ...]
    dns_names: tuple[Any, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    validity_hours: int = LEAF_VALIDITY_HOURS
    early_renewal_hours: int = LEAF_EARLY_RENEWAL_HOURS


@dataclass(frozen=True)
class Host:
    name: str
    ip: str


CA_SPECS = (
    CaSpec(KUBERNETES_CA, "Kubernetes CA"),
    # etcd trusts only its own CA: a certificate of the Kubernetes CA (any kubelet's, say) opens no etcd door.
    CaSpec(ETCD_CA, "etcd CA"),
    # Aggregated APIs believe whoever presents a certificate of this CA about who the user is: it signs the API
    # server's front-proxy client and nothing else, so no kubelet or user certificate can speak for another user.
    CaSpec(FRONT_PROXY_CA, "front-proxy CA"),
)


def worker_cert_name(worker: str) -> str:
    return worker


def etcd_server_cert_name(member: str) -> str:
    return f"{member}-server"


def etcd_peer_cert_name(member: str) -> str:
    return f"{member}-peer"


def service_dns_names(service: str, namespace: str) -> tuple[str, ...]:
    """The names a Service answers to inside the cluster, as a serving certificate for it lists them."""
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")


def api_server_sans(controllers: Sequence[Host], service_ip: str, extra_dns_names: Sequence[Any] = ()
                    ) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """DNS and IP SANs of the API server's serving certificate."""
    dns = (*KUBERNETES_SERVICE_NAMES, "localhost", *(c.name for c in controllers), *extra_dns_names)
    ips = ("127.0.0.1", service_ip, *(c.ip for c in controllers))
    return dns, ips


def cluster_cert_specs(*, etcd: Sequence[Host], controllers: Sequence[Host], workers: Sequence[Host],
                       service_ip: str, api_dns_names: Sequence[Any] = (),
                       metrics_server_namespace: str | None = None) -> list[CertSpec]:
    """Every certificate the cluster needs. `api_dns_names`: extra API server names (a DNS name of your own in
    front of the API, say); the load balancer's is not one of them (see API_TLS_SERVER_NAME).
    `metrics_server_namespace`: where metrics-server runs, when it does (its serving certificate names its
    Service there)."""
    api_dns, api_ips = api_server_sans(controllers, service_ip, api_dns_names)
    specs = [
        CertSpec(ADMIN, KUBERNETES_CA, ADMIN, CLUSTER_ADMINS_GROUP, CLIENT),
        CertSpec(SUPER_ADMIN, KUBERNETES_CA, SUPER_ADMIN, "system:masters", CLIENT,
                 validity_hours=SUPER_ADMIN_VALIDITY_HOURS, early_renewal_hours=SUPER_ADMIN_EARLY_RENEWAL_HOURS),
        CertSpec(DEPLOYER, KUBERNETES_CA, DEPLOYER_CN, DEPLOYERS_GROUP, CLIENT),
        CertSpec(KUBE_APISERVER, KUBERNETES_CA, "kube-apiserver", None, SERVER, api_dns, api_ips),
        CertSpec(APISERVER_KUBELET_CLIENT, KUBERNETES_CA, APISERVER_KUBELET_CLIENT_CN, None, CLIENT),
        CertSpec(KUBE_CONTROLLER_MANAGER, KUBERNETES_CA, "system:kube-controller-manager", None, CLIENT),
        CertSpec(KUBE_SCHEDULER, KUBERNETES_CA, "system:kube-scheduler", None, CLIENT),
        CertSpec(KUBE_PROXY, KUBERNETES_CA, "system:kube-proxy", "system:node-proxier", CLIENT),
        CertSpec(APISERVER_ETCD_CLIENT, ETCD_CA, APISERVER_ETCD_CLIENT_CN, None, CLIENT),
        CertSpec(FRONT_PROXY_CLIENT, FRONT_PROXY_CA, FRONT_PROXY_CLIENT, None, CLIENT),
    ]
    if metrics_server_namespace:
        specs.append(CertSpec(METRICS_SERVER, KUBERNETES_CA, METRICS_SERVER, None, SERVER,
                              service_dns_names(METRICS_SERVER, metrics_server_namespace)))
    for worker in workers:
        # The Node authorizer maps this CN to the node; the SANs let the API server verify the kubelet it calls
        # for logs, exec and port-forward, by IP (InternalIP is preferred) or by name.
        specs.append(CertSpec(worker_cert_name(worker.name), KUBERNETES_CA, f"system:node:{worker.name}",
                              "system:nodes", SERVER_AND_CLIENT, (worker.name,), (worker.ip,)))
    for member in etcd:
        sans_dns = (member.name, "localhost")
        sans_ip = (member.ip, "127.0.0.1")
        # Server certificates also carry client use so that etcdctl on the member can run health checks.
        specs.append(CertSpec(etcd_server_cert_name(member.name), ETCD_CA, member.name, None, SERVER_AND_CLIENT,
                              sans_dns, sans_ip))
        specs.append(CertSpec(etcd_peer_cert_name(member.name), ETCD_CA, member.name, None, SERVER_AND_CLIENT,
                              sans_dns, sans_ip))
    names = [s.name for s in specs]
    assert len(names) == len(set(names)), f"duplicate certificate names in {names}"
    return specs
