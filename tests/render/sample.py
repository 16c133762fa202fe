"""Everything the program renders for the default 3/3/3 cluster, from real certificates minted off its PKI table."""

from __future__ import annotations

import base64
import functools
import os

from cluster import versions
from cluster.render import (access, addons, control_plane, deployer_checks, etcd, etcd_backup, install,
                           metrics_server, podcidrs, podnet, restore, rollout, steps, workers)
from cluster.render.workers import cni, node, prepare_os
from cluster.render.common import NodeFile, write_files_script
from infra.certs import ETCD_CA, FRONT_PROXY_CA, FRONT_PROXY_CLIENT, KUBERNETES_CA, METRICS_SERVER, Host
from tests.support.pki import mint_cluster
from simulator.realistic_tls import private_key_outputs

ETCD = [etcd.Member(f"etcd-{i}", f"10.43.0.{10 + i}") for i in range(3)]
CONTROLLERS = [Host(f"controller-{i}", f"10.43.0.{20 + i}") for i in range(3)]
WORKERS = [Host(f"worker-{i}", f"10.43.0.{30 + i}") for i in range(3)]
LB_DNS = "k8s-dev-api-nlb-0123456789abcdef.elb.eu-west-1.amazonaws.com"


@functools.lru_cache(maxsize=1)
def pki():
    return mint_cluster([Host(m.name, m.ip) for m in ETCD], CONTROLLERS, WORKERS, api_dns_names=[LB_DNS],
                        metrics_server_namespace=metrics_server.NAMESPACE)


@functools.lru_cache(maxsize=1)
def service_account_key() -> dict[str, str]:
    return private_key_outputs({"algorithm": "RSA", "rsaBits": 2048})


def etcd_tls(name: str) -> etcd.EtcdTls:
    p = pki()
    return etcd.EtcdTls(p[ETCD_CA].cert_pem, p[f"{name}-server"].cert_pem, p[f"{name}-server"].key_pem,
                        p[f"{name}-peer"].cert_pem, p[f"{name}-peer"].key_pem)


def control_plane_inputs(i: int = 0) -> control_plane.ControlPlaneInputs:
    p = pki()
    return control_plane.ControlPlaneInputs(
        cluster_name="k8s-dev", node_name=CONTROLLERS[i].name, node_ip=CONTROLLERS[i].ip,
        etcd_servers=etcd.client_urls(ETCD), service_cidr="10.32.0.0/24", pod_cidr="10.200.0.0/16",
        pod_cidr_mask_size=24, ca_pem=p[KUBERNETES_CA].cert_pem, etcd_ca_pem=p[ETCD_CA].cert_pem,
        apiserver_cert_pem=p["kube-apiserver"].cert_pem, apiserver_key_pem=p["kube-apiserver"].key_pem,
        kubelet_client_cert_pem=p["kube-apiserver-kubelet-client"].cert_pem,
        kubelet_client_key_pem=p["kube-apiserver-kubelet-client"].key_pem,
        etcd_client_cert_pem=p["kube-apiserver-etcd-client"].cert_pem,
        etcd_client_key_pem=p["kube-apiserver-etcd-client"].key_pem,
        service_account_key_pem=service_account_key()["privateKeyPem"],
        service_account_pub_pem=service_account_key()["publicKeyPem"],
        controller_manager_cert_pem=p["kube-controller-manager"].cert_pem,
        controller_manager_key_pem=p["kube-controller-manager"].key_pem,
        scheduler_cert_pem=p["kube-scheduler"].cert_pem, scheduler_key_pem=p["kube-scheduler"].key_pem,
        admin_cert_pem=p["admin"].cert_pem, admin_key_pem=p["admin"].key_pem,
        super_admin_cert_pem=p["super-admin"].cert_pem, super_admin_key_pem=p["super-admin"].key_pem,
        deployer_cert_pem=p["deployer"].cert_pem, deployer_key_pem=p["deployer"].key_pem,
        front_proxy_ca_pem=p[FRONT_PROXY_CA].cert_pem, front_proxy_client_cert_pem=p[FRONT_PROXY_CLIENT].cert_pem,
        front_proxy_client_key_pem=p[FRONT_PROXY_CLIENT].key_pem,
        encryption_key_b64=base64.b64encode(os.urandom(32)).decode(), holds_break_glass=i == 0,
    )


def worker_inputs(i: int = 0) -> node.WorkerInputs:
    p = pki()
    return node.WorkerInputs(
        cluster_name="k8s-dev", node_name=WORKERS[i].name, node_ip=WORKERS[i].ip,
        controller_ips=[c.ip for c in CONTROLLERS], pod_cidr="10.200.0.0/16", cluster_dns_ip="10.32.0.10",
        pause_image=versions.IMAGES["pause"], registry_mirror="http://10.43.0.4:5000", ca_pem=p[KUBERNETES_CA].cert_pem,
        kubelet_cert_pem=p[WORKERS[i].name].cert_pem, kubelet_key_pem=p[WORKERS[i].name].key_pem,
        kube_proxy_cert_pem=p["kube-proxy"].cert_pem, kube_proxy_key_pem=p["kube-proxy"].key_pem,
    )


def worker_files_by_path(i: int = 0) -> dict[str, NodeFile]:
    """Every file one worker receives, by its path on the node."""
    return {f.path: f for fs in workers.worker_files(worker_inputs(i)).values() for f in fs}


def all_files() -> list[NodeFile]:
    files = etcd.etcd_files(ETCD[0], ETCD, "k8s-dev", etcd_tls("etcd-0"))
    files += [f for fs in control_plane.control_plane_files(control_plane_inputs()).values() for f in fs]
    files += [f for fs in workers.worker_files(worker_inputs()).values() for f in fs]
    return files


def scripts() -> dict[str, str]:
    """name -> script text, for every script a node runs."""
    resolved = versions.resolve_versions({})
    out = {
        "readiness-gate": steps.readiness_gate_script(),
        "time-sync": steps.time_sync_script(),
        "restart-services": steps.restart_services_script(["kubelet", "kube-proxy"], "0123456789abcdef0123456789abcdef"),
        "worker-os-prep": prepare_os.os_prep_script(),
        "worker-os-prep-cgroup-v1-system-container": prepare_os.os_prep_script(node.NodeHost(True, True)),
        "cni-config-sync": cni.cni_config_sync_script(WORKERS[0].name),
        "etcd-user": etcd.etcd_user_script(),
        "etcd-health": etcd.etcd_health_script(ETCD),
        "etcd-start": etcd.etcd_start_script(ETCD[1], ETCD, "k8s-dev", "0123456789abcdef", new_machine=False),
        "etcd-start-joining": etcd.etcd_start_script(ETCD[2], ETCD, "k8s-dev", "0123456789abcdef", new_machine=True),
        "etcd-member-remove": etcd.etcd_member_remove_script(ETCD[2], via=ETCD[0]),
        "etcd-member-listed": etcd.etcd_member_listed_script(ETCD[2], via=ETCD[0]),
        "etcd-snapshot": etcd_backup.snapshot_script(ETCD[0], 24, None),
        "etcd-snapshot-to-s3": etcd_backup.snapshot_script(ETCD[0], 24, "k8s-dev-etcd-0123456789"),
        "etcd-restore": etcd_backup.restore_script(ETCD[0], ETCD, "k8s-dev"),
        "etcd-defrag": etcd_backup.defrag_script(ETCD[0]),
        "etcd-snapshots-step": etcd_backup.install_script(etcd_backup.backup_files(
            ETCD[0], ETCD, "k8s-dev", interval_minutes=60, keep=24, bucket="k8s-dev-etcd-0123456789")),
        "apiserver-ready": control_plane.apiserver_ready_script(),
        "node-ready": workers.node_ready_script("worker-0"),
        "drain-worker": rollout.drain_script("worker-0", "0123456789abcdef"),
        "uncordon-worker": rollout.uncordon_script("worker-0", "0123456789abcdef", "i-0123456789abcdef0"),
        "remove-worker": rollout.remove_node_script("worker-0", "i-0123456789abcdef0"),
        "worker-listed": rollout.node_listed_script("worker-0"),
        "rbac-apply": control_plane.rbac_apply_script({"cluster-admins": access.cluster_admins_rbac(),
                                                       "deployers": access.deployers_rbac(),
                                                       "kubelet access": addons.apiserver_to_kubelet_rbac()}),
        "write-files": write_files_script(all_files()),
        "read-pod-cidrs": podcidrs.reader_script([w.name for w in WORKERS], 300, list(control_plane.DEPLOYER_KUBECTL)),
        "pod-network-host-mode": podnet.install_script(pod_network_apply()),
        "pod-network-vpc-mode": podnet.install_script(podnet.apply_script(
            routes=[], cluster_pod_cidr="10.200.0.0/16", vpc_cidr="10.43.0.0/16", dns_resolver="10.43.0.2",
            masquerade=True)),
        "apply-coredns": addons.kubectl_apply_script("CoreDNS", coredns()),
        "dns-check": addons.dns_check_script(image=versions.IMAGES["busybox"], kubernetes_service_ip="10.32.0.1",
                                             external_name="sts.amazonaws.com"),
        "apply-metrics-server": addons.kubectl_apply_script("metrics-server", metrics_server_manifest()),
        "metrics-check": metrics_server.check_script(nodes=[w.name for w in WORKERS]),
        "apply-nginx": addons.kubectl_apply_script("nginx", nginx()),
        "nginx-rollout": addons.nginx_rollout_script(),
        "smoke-check-on-a-worker": deployer_checks.on_node(deployer_checks.nodeport_check_program(
            {w.name: f"http://{w.ip}:30080/" for w in WORKERS})),
    }
    plan = restore.cluster_restore_plan(snapshot="/root/restore.db", etcd=[m.name for m in ETCD],
                                        controllers=[c.name for c in CONTROLLERS], workers=[w.name for w in WORKERS])
    out.update({f"cluster-restore-{i}": phase.script for i, phase in enumerate(plan)})
    for component in versions.COMPONENTS:
        for arch in ("amd64", "arm64"):
            out[f"install-{component}-{arch}"] = install.install_artifact_script(
                versions.artifact(component, resolved, arch))
    return out


def pod_network_apply() -> str:
    ranges = [(w.ip, f"10.200.{i}.0/24") for i, w in enumerate(WORKERS)]
    return podnet.apply_script(routes=podnet.routes_for(WORKERS[0].ip, ranges), cluster_pod_cidr="10.200.0.0/16",
                               vpc_cidr="10.43.0.0/16", dns_resolver=podnet.vpc_resolver("10.43.0.0/16"),
                               masquerade=True, vpc_routes_pods=False)


def coredns() -> str:
    return addons.coredns_manifest(cluster_dns_ip="10.32.0.10", image=versions.IMAGES["coredns"], replicas=2)


def metrics_server_manifest() -> str:
    p = pki()
    return metrics_server.manifest(image=versions.IMAGES["metrics-server"], replicas=2, ca_pem=p[KUBERNETES_CA].cert_pem,
                                   cert_pem=p[METRICS_SERVER].cert_pem, key_pem=p[METRICS_SERVER].key_pem)


def nginx() -> str:
    return addons.nginx_manifest(replicas=3, image=versions.IMAGES["nginx"], node_port=30080)


def units() -> dict[str, str]:
    out = {"etcd": etcd.etcd_unit(ETCD[0], ETCD, "k8s-dev"), "k8s-pod-network": podnet.boot_unit(),
           etcd_backup.SNAPSHOT_UNIT: etcd_backup.snapshot_service(), etcd_backup.DEFRAG_UNIT: etcd_backup.defrag_service()}
    out.update(control_plane.control_plane_units(control_plane_inputs()))
    out.update(workers.worker_units(worker_inputs()))
    return out
