"""k8s-from-scratch: the table of contents. Read settings, compose the components in order, export outputs."""

import pulumi

from cluster.access import admin_kubeconfig_output, load_balancer_check, super_admin_kubeconfig_output
from cluster.addons import Addons, AddonsArgs
from cluster.control_plane import ControlPlane, ControlPlaneArgs
from cluster.etcd import EtcdCluster, EtcdClusterArgs
from cluster.etcd_backup import EtcdBackups, EtcdBackupsArgs
from cluster.podnet import PodNetwork, PodNetworkArgs
from cluster.remote import Ssh
from cluster.render import metrics_server
from cluster.render.ssh_config import render_ssh_config
from cluster.render.workers.node import NodeHost
from cluster.smoke import SmokeTest, SmokeTestArgs
from cluster.versions import resolve_artifacts
from cluster.workers import Workers, WorkersArgs
from infra.apilb import ApiLoadBalancer, ApiLoadBalancerArgs
from infra.backup_bucket import BackupBucket, BackupBucketArgs
from infra.certs import CA_SPECS, KUBERNETES_CA, METRICS_SERVER, Host, cluster_cert_specs
from infra.aws_facts import STACK_TAG
from infra.guards import refuse_unsafe_changes
from infra.network import Network, NetworkArgs
from infra.nodes import Nodes, NodesArgs
from infra.pki import Pki, PkiArgs
from infra.settings import read_stack_settings

settings = read_stack_settings()
existing = refuse_unsafe_changes(settings)   # what AWS holds that the settings cannot take stops here, before anything
# Every resource names the stack that made it: that is how a later run finds its nodes, and nobody else's.
tags = {"cluster": settings.cluster_name, "project": "k8s-from-scratch", STACK_TAG: existing.stack}

# 1. Network: VPC, subnets, gateways, route tables, security groups.
network = Network(settings.cluster_name, NetworkArgs(settings=settings, tags=tags, zone_names=existing.zones))

# 2. Nodes: etcd members, controllers, workers (and a bastion in the private topology); with etcd snapshots in S3,
#    their bucket and the role that lets etcd members (and no other node) upload to it.
backup_bucket = BackupBucket(f"{settings.cluster_name}-etcd-snapshots", BackupBucketArgs(
    cluster_name=settings.cluster_name, tags=tags, keep_days=settings.etcd_snapshots.s3_keep_days,
    noncurrent_days=settings.etcd_snapshots.s3_noncurrent_days)) if settings.etcd_snapshots.s3 else None
nodes = Nodes(settings.cluster_name, NodesArgs(
    settings=settings,
    subnet_ids=network.node_subnet_ids,
    public_subnet_ids=network.public_subnet_ids,
    security_group_ids=network.security_group_ids,
    tags=tags,
    egress_ready_by_zone=network.egress_ready_by_zone,
    egress_rules=network.egress_rules,
    etcd_instance_profile=backup_bucket.instance_profile_name if backup_bucket else None,
    instance_types=existing.staged_instance_types(settings),
))

# 3. API load balancer in front of the controllers.
api_lb = ApiLoadBalancer(f"{settings.cluster_name}-api", ApiLoadBalancerArgs(
    cluster_name=settings.cluster_name,
    vpc_id=network.vpc.id,
    subnet_ids=network.public_subnet_ids,
    controller_instance_ids={n.name: n.instance.id for n in nodes.controllers},
    tags=tags,
    depends_on=[network.internet_gateway, *network.address_reservations],
))

# 4. PKI: CAs and one certificate per identity. Nothing here waits for the load balancer: kubeconfigs that go
#    through it verify the API server as `kubernetes` (tls-server-name), a name its certificate always carries.
pki = Pki(f"{settings.cluster_name}-pki", PkiArgs(cas=CA_SPECS, certs=cluster_cert_specs(
    etcd=[Host(n.name, n.private_ip) for n in nodes.etcd],
    controllers=[Host(n.name, n.private_ip) for n in nodes.controllers],
    workers=[Host(n.name, n.private_ip) for n in nodes.workers],
    service_ip=settings.service_ip,
    metrics_server_namespace=metrics_server.NAMESPACE if settings.metrics_server else None,
)))

# 5. Node bootstrap over SSH: etcd, then the control plane; workers install in parallel with both.
ssh = Ssh(user=settings.ssh_user, private_key=nodes.ssh_private_key,
          bastion=nodes.bastion.public_ip if nodes.bastion else None, secret_values=settings.secret_values)

artifacts = resolve_artifacts(settings.versions, settings.architecture, settings.download_base_url)
etcd = EtcdCluster(f"{settings.cluster_name}-etcd", EtcdClusterArgs(
    cluster_name=settings.cluster_name, members=nodes.etcd, addresses=nodes.ssh_addresses(nodes.etcd), ssh=ssh,
    pki=pki, artifacts=artifacts, vpc=network.vpc, bootstrapped=existing.bootstrapped("etcd"),
    running_instance_ids=existing.instance_ids("etcd"),
))
etcd_backups = EtcdBackups(f"{settings.cluster_name}-etcd-backups", EtcdBackupsArgs(
    cluster_name=settings.cluster_name, etcd=etcd, schedule=settings.etcd_snapshots,
    bucket=backup_bucket.bucket if backup_bucket else None))
control_plane = ControlPlane(f"{settings.cluster_name}-control-plane", ControlPlaneArgs(
    cluster_name=settings.cluster_name, controllers=nodes.controllers,
    addresses=nodes.ssh_addresses(nodes.controllers), ssh=ssh, pki=pki, etcd_client_urls=etcd.client_urls, etcd_healthy=etcd.healthy,
    service_cidr=settings.service_cidr, pod_cidr=settings.pod_cidr, pod_cidr_mask_size=settings.pod_cidr_mask_size,
    artifacts=artifacts, running_controllers=existing.names("controllers"),
))
workers = Workers(f"{settings.cluster_name}-workers", WorkersArgs(
    cluster_name=settings.cluster_name, workers=nodes.workers, addresses=nodes.ssh_addresses(nodes.workers),
    controller_ips=[n.private_ip for n in nodes.controllers], ssh=ssh, pki=pki, pod_cidr=settings.pod_cidr,
    cluster_dns_ip=settings.cluster_dns_ip, control_plane_ready=[*control_plane.ready, control_plane.rbac],
    cluster_host=control_plane.first_host, artifacts=artifacts, vpc=network.vpc,
    image_registry_mirror=settings.image_registry_mirror,
    # Running workers restart after the whole control plane, in batches (the version skew order).
    control_plane_rolled=[*control_plane.rolled, control_plane.rbac],
    running_workers=existing.names("workers"),
    rollout_batch_size=settings.workers.rollout_batch_size,
    host=NodeHost(settings.workers.allow_cgroup_v1, settings.workers.system_container),
))
kubeconfig = admin_kubeconfig_output(settings.cluster_name, api_lb.endpoint, pki)
api_through_lb = load_balancer_check(f"{settings.cluster_name}-api-through-load-balancer", kubeconfig,
                                     control_plane.ready, parent=api_lb)

# 6. Pod network from the podCIDRs the cluster assigned, CoreDNS, metrics-server, and the nginx smoke test.
pod_network = PodNetwork(f"{settings.cluster_name}-pod-network", PodNetworkArgs(
    pod_routing=settings.pod_routing, pod_cidr=settings.pod_cidr, vpc_cidr=settings.vpc_cidr,
    workers=nodes.workers, worker_hosts=workers.hosts, controllers=nodes.controllers,
    controller_hosts=control_plane.hosts, workers_ready=workers.ready, route_table_ids=network.node_route_table_ids,
    kubeconfig=kubeconfig,
))
workers.declare_removals(pod_network.routes)     # a leaving worker is drained before its routes go
addons = Addons(f"{settings.cluster_name}-addons", AddonsArgs(
    host=control_plane.first_host, cluster_dns_ip=settings.cluster_dns_ip, kubernetes_service_ip=settings.service_ip,
    dns_check_name=settings.dns_check_name, workers=[n.name for n in nodes.workers],
    control_plane_ready=[control_plane.rbac], pod_network_ready=pod_network.ready,
    cluster_ca_pem=pki.cas[KUBERNETES_CA].cert_pem, metrics_server_tls=pki.certs.get(METRICS_SERVER),
))
smoke = SmokeTest(f"{settings.cluster_name}-smoke-test", SmokeTestArgs(
    host=control_plane.first_host, workers=nodes.workers,
    # Private nodes have no address you can reach: the first worker fetches the other workers' pages.
    fetch_from=None if settings.topology == "public" else next(iter(workers.hosts.values())),
    ready=[*pod_network.ready, addons.dns_ready],
))

# --- outputs: access ----------------------------------------------------------------------------------------------
pulumi.export("apiEndpoint", api_lb.endpoint)
pulumi.export("caCertificate", pki.cas[KUBERNETES_CA].cert_pem)
pulumi.export("kubeconfig", kubeconfig)
if settings.export_super_admin_kubeconfig:
    pulumi.export("superAdminKubeconfig", super_admin_kubeconfig_output(settings.cluster_name, api_lb.endpoint, pki))

ssh_targets = dict(zip((n.name for n in nodes.all), nodes.ssh_addresses(nodes.all)))
pulumi.export("sshConfig", pulumi.Output.all(hosts=ssh_targets, bastion=ssh.bastion).apply(
    lambda v: render_ssh_config(user=settings.ssh_user, hosts=v["hosts"], bastion=v["bastion"],
                                generated_key=nodes.ssh_private_key is not None)))
pulumi.export("nginxUrls", smoke.urls)
if nodes.ssh_private_key is not None:
    pulumi.export("sshPrivateKey", nodes.ssh_private_key)
if nodes.bastion is not None:
    pulumi.export("bastionPublicIp", nodes.bastion.public_ip)
if backup_bucket is not None:
    pulumi.export("etcdSnapshotBucket", backup_bucket.bucket)

# --- outputs: debugging -------------------------------------------------------------------------------------------
pulumi.export("podCidrs", pod_network.ranges.apply(lambda rs: {r.name: r.pod_cidr for r in rs}))
# When each CA and certificate expires (RFC 3339): leaves are renewed by any `pulumi up` in their last 30 days.
pulumi.export("certificateExpiry", {name: keys.not_after for name, keys in {**pki.cas, **pki.certs}.items()})
pulumi.export("nodes", {
    role: {n.name: {"privateIp": n.private_ip, "publicIp": n.instance.public_ip} for n in members}
    for role, members in (("etcd", nodes.etcd), ("controllers", nodes.controllers), ("workers", nodes.workers))
})
