#!/bin/bash
# Rebuild this etcd member (@MEMBER@) from a snapshot. Run it on every member with the same snapshot file, with the
# API servers stopped (k8s-cluster-restore does both, and restarts what watches the API afterwards); the cluster is
# back once a majority has started. Verification: the snapshot must pass `etcdutl snapshot status`.
set -euo pipefail
umask 077
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 SNAPSHOT   (a file saved by k8s-etcd-snapshot; the same one on every member)" >&2
  exit 2
fi
snapshot=$1
data=@DATA_DIR@
timeout @STATUS_SECONDS@ @BIN_DIR@/etcdutl snapshot status "$snapshot" -w table
token="@CLUSTER_NAME@-restore-$(sha256sum "$snapshot" | cut -c1-16)"
echo "stopping the snapshot and defragmentation timers and etcd on @MEMBER@"
# Started again once the whole cluster is back (k8s-cluster-restore's last phase, or by hand).
timeout 60 systemctl stop @TIMERS@
timeout 120 systemctl stop etcd
restoring="$data.restoring"
rm -rf "$restoring"
timeout @RESTORE_SECONDS@ @BIN_DIR@/etcdutl snapshot restore "$snapshot" \
  --name @MEMBER@ \
  --initial-cluster @INITIAL_CLUSTER@ \
  --initial-advertise-peer-urls https://@MEMBER_IP@:@PEER_PORT@ \
  --initial-cluster-token "$token" \
  --bump-revision @BUMP_REVISION@ --mark-compacted \
  --data-dir "$restoring"
if [ -e "$data" ]; then
  aside="$data.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$data" "$aside"
  echo "the previous data dir is kept at $aside; delete it once the cluster is healthy"
fi
mv "$restoring" "$data"
chown -R @OWNER@: "$data"
chmod 0700 "$data"
# Without --no-block, the first member would wait for a quorum that only the next members' restores can bring.
timeout 60 systemctl start --no-block etcd
echo "restored @MEMBER@ from $snapshot (cluster token $token); etcd is starting"
