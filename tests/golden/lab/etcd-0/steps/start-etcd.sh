#!/bin/bash
# Start, restart or join etcd member etcd-0. Verification: after a restart or a join, this member and every
# member of the cluster answer a health check over mutual TLS.
set -uo pipefail
want=<fingerprint>
# Whether this machine is new to a cluster that ran (the program saw etcd machines running, not this one): then it
# joins, and never starts a cluster of its own.
new_machine_of_running_cluster=no
stamp=/var/lib/k8s-from-scratch/started/etcd
self=https://10.43.0.10:2379
peers=https://10.43.0.11:2379,https://10.43.0.12:2379
tls=(--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key)
ctl() { timeout 30 /usr/local/bin/etcdctl --dial-timeout 3s --command-timeout 10s "${tls[@]}" "$@"; }
fail() {
  echo "$1" >&2
  systemctl status etcd --no-pager -l >&2 || true
  journalctl -u etcd --no-pager -n 30 >&2 || true
  exit 1
}
# wait_healthy WHAT ETCDCTL-ARGS...: until `endpoint health` passes, within the bound.
wait_healthy() {
  local what=$1 deadline=$((SECONDS + 300)) out
  shift
  until out=$(ctl endpoint health "$@" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what is not healthy after 300s (seen from $(hostname)): $out"
    sleep 2
  done
  echo "$out"
}
has_data() { [ -d /var/lib/etcd/member ]; }
# switch_releases: etcd's binaries to the release this step installs, right before etcd (re)starts.
# switch LINK TARGET: point the path units and scripts name at a release's binary.
switch() {
  local link=$1 target=$2
  [ "$(readlink "$link" 2>/dev/null)" = "$target" ] && return 0
  if [ ! -x "$target" ]; then
    echo "$target is not installed (its install step runs first)" >&2
    return 1
  fi
  install -d -m 0755 "$(dirname "$link")"
  ln -sfn "$target" "$link.new"
  mv -Tf "$link.new" "$link"
  echo "switched $link to $target"
}
# prune COMPONENT LINK...: remove the component's release directories that none of its links points into.
prune() {
  local component=$1 dir link used
  shift
  for dir in /opt/k8s-from-scratch/releases/"$component"-*; do
    [ -d "$dir" ] || continue
    case "$dir" in *.new) continue ;; esac
    used=no
    for link in "$@"; do
      case "$(readlink "$link" 2>/dev/null)" in "$dir"/*) used=yes ;; esac
    done
    if [ "$used" = no ]; then
      rm -rf "$dir"
      echo "removed $dir, which no link uses"
    fi
  done
}
switch_releases() {
  switch /usr/local/bin/etcd /opt/k8s-from-scratch/releases/etcd-3.6.14-ffe840ff9295/etcd || return 1
  switch /usr/local/bin/etcdctl /opt/k8s-from-scratch/releases/etcd-3.6.14-ffe840ff9295/etcdctl || return 1
  switch /usr/local/bin/etcdutl /opt/k8s-from-scratch/releases/etcd-3.6.14-ffe840ff9295/etcdutl || return 1
  prune etcd /usr/local/bin/etcd /usr/local/bin/etcdctl /usr/local/bin/etcdutl
}

# How the running cluster sees this member, for a member without data: `none` (no cluster answers: a first
# creation, or peers still forming one), `unstarted` (listed by name or address without client addresses: a first
# creation in progress), `started` (listed with client addresses: this machine replaces a member that ran) or
# `absent` (a cluster answers without this member: it must join, even if the program knew its machine, say from an
# earlier `pulumi up` that failed before the member was added).
cluster_view() {
  local members
  # Short bounds: on a first creation nothing answers yet, and this check must not slow the start down.
  members=$(timeout 5 /usr/local/bin/etcdctl --dial-timeout 1s --command-timeout 2s "${tls[@]}" --endpoints "$peers" member list 2>/dev/null) || { echo none; return; }
  awk -F', ' -v url=https://10.43.0.10:2380 '$4 == url {view = ($5 == "" ? "unstarted" : "started")}
    END {print (view == "" ? "absent" : view)}' <<<"$members"
}

# First creation (no cluster ran before, no data here, no cluster answers): start without waiting; etcd-health checks
# the cluster.
first_start() {
  echo "etcd on $(hostname): first start of a new cluster, not waiting (etcd-health checks the whole cluster)"
  switch_releases || fail "etcd's release is not installed on $(hostname)"
  timeout 60 systemctl restart --no-block etcd || fail "etcd could not be started on $(hostname)"
  echo "$want" > "$stamp"
}

# A new member of a running cluster (a raised count, or a replaced machine): wait, within the bound, for a quorum;
# replace whatever is registered at this peer address; add this member as a learner (it does not count towards the
# quorum until it has caught up); start it with the initial cluster that printed (the join drop-in); promote it.
join_running_cluster() {
  local deadline members old out added initial id
  echo "etcd on $(hostname): joining the running cluster"
  # A member list answers only with a quorum (it is linearizable), so it is the check that the cluster runs.
  deadline=$((SECONDS + 300))
  until members=$(ctl --endpoints "$peers" member list 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "no etcd cluster answers at $peers after 300s, so etcd-0 \
is not started: a member of a cluster that ran never starts a new one (it would take the old member's place with an \
empty log). Run pulumi up again once a quorum of members runs. If this cluster never formed (no member has data: a \
first pulumi up stopped before etcd started), start etcd on every member first (systemctl start etcd). Last \
answer: $members"
    sleep 2
  done
  old=$(awk -F', ' -v url=https://10.43.0.10:2380 '$4 == url {print $1}' <<<"$members")
  if [ -n "$old" ]; then
    echo "removing member $old registered at https://10.43.0.10:2380 (the machine this one replaces)"
    deadline=$((SECONDS + 300))
    until out=$(ctl --endpoints "$peers" member remove "$old" 2>&1); do
      [ "$SECONDS" -lt "$deadline" ] || fail "cannot remove member $old: $out"
      sleep 3
    done
  fi
  # etcd (--strict-reconfig-check) refuses a change until every member has been connected for a few seconds (one
  # that has just joined or restarted): retry within the bound.
  deadline=$((SECONDS + 300))
  until added=$(ctl --endpoints "$peers" member add etcd-0 --learner --peer-urls=https://10.43.0.10:2380 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "cannot add etcd-0 to the etcd cluster: $added"
    sleep 3
  done
  initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$added")
  # etcdctl pads the id to 16 characters with spaces: "Member  aae89c4b8869ec4 added as learner ...".
  id=$(sed -n 's/^Member *\([0-9a-f]*\) added.*/\1/p' <<<"$added")
  if [ -z "$initial" ] || [ -z "$id" ]; then
    fail "member add printed no initial cluster or member id: $added"
  fi
  echo "added etcd-0 ($id) as a learner"
  echo "ETCD_JOIN_INITIAL_CLUSTER=$initial" > /etc/etcd/join.env
  install -d -m 0755 "$(dirname /etc/systemd/system/etcd.service.d/join.conf)"
  cat > /etc/systemd/system/etcd.service.d/join.conf <<'DROPIN'
[Service]
EnvironmentFile=/etc/etcd/join.env
ExecStart=
ExecStart=/usr/local/bin/etcd --name=etcd-0 --data-dir=/var/lib/etcd --listen-client-urls=https://10.43.0.10:2379,https://127.0.0.1:2379 --advertise-client-urls=https://10.43.0.10:2379 --listen-peer-urls=https://10.43.0.10:2380 --initial-advertise-peer-urls=https://10.43.0.10:2380 --initial-cluster=${ETCD_JOIN_INITIAL_CLUSTER} --initial-cluster-token=lab --initial-cluster-state=existing --client-cert-auth --trusted-ca-file=/etc/etcd/pki/ca.crt --cert-file=/etc/etcd/pki/server.crt --key-file=/etc/etcd/pki/server.key --peer-client-cert-auth --peer-trusted-ca-file=/etc/etcd/pki/ca.crt --peer-cert-file=/etc/etcd/pki/peer.crt --peer-key-file=/etc/etcd/pki/peer.key --listen-metrics-urls=http://127.0.0.1:2381 --strict-reconfig-check --feature-gates=InitialCorruptCheck=true --watch-progress-notify-interval=5s
DROPIN
  timeout 60 systemctl daemon-reload
  switch_releases || fail "etcd's release is not installed on $(hostname)"
  timeout 120 systemctl restart etcd || fail "etcd did not start within 120s on $(hostname)"
  # etcd promotes a learner only once its log has caught up with the leader's: retry within the bound.
  deadline=$((SECONDS + 300))
  until out=$(ctl --endpoints "$peers" member promote "$id" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "learner etcd-0 ($id) was not promoted within 300s: $out"
    sleep 2
  done
  echo "promoted etcd-0 ($id) to a voting member"
  healthy_and_recorded
}

# A member with data whose inputs changed: never take it down while another member is, then restart it.
rolling_restart() {
  if systemctl is-active --quiet etcd; then
    wait_healthy "the etcd cluster (before restarting etcd-0)" --endpoints "$self,$peers" --cluster
  fi
  switch_releases || fail "etcd's release is not installed on $(hostname)"
  timeout 120 systemctl restart etcd || fail "etcd did not restart within 120s on $(hostname)"
  healthy_and_recorded
}

# Wait, within the bound, for this member and every member to be healthy; then record what it runs.
healthy_and_recorded() {
  wait_healthy "etcd member etcd-0" --endpoints "$self"
  wait_healthy "the etcd cluster" --endpoints "$self" --cluster
  if [ -e /etc/systemd/system/etcd.service.d/join.conf ]; then
    rm -f /etc/systemd/system/etcd.service.d/join.conf /etc/etcd/join.env
    timeout 60 systemctl daemon-reload
  fi
  echo "$want" > "$stamp"
  echo "etcd member etcd-0 is healthy on $(hostname), and so is every member"
}

install -d -m 0755 /var/lib/k8s-from-scratch/started
if [ -e /etc/systemd/system/etcd.service.d/join.conf ] && has_data; then
  rm -f /etc/systemd/system/etcd.service.d/join.conf /etc/etcd/join.env
fi
timeout 60 systemctl daemon-reload
systemctl enable --quiet etcd
if systemctl is-active --quiet etcd && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "etcd: inputs unchanged since it was started, not restarting"
  exit 0
fi
rm -f "$stamp"
if has_data; then
  rolling_restart
elif [ "$new_machine_of_running_cluster" = no ] && view=$(cluster_view) &&
    { [ "$view" = none ] || [ "$view" = unstarted ]; }; then
  first_start
else
  join_running_cluster
fi
