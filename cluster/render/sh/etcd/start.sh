#!/bin/bash
# Start, restart or join etcd member @MEMBER@. Verification: after a restart or a join, this member and every
# member of the cluster answer a health check over mutual TLS.
set -uo pipefail
want=@WANT@
# Whether this machine is new to a cluster that ran (the program saw etcd machines running, not this one): then it
# joins, and never starts a cluster of its own.
new_machine_of_running_cluster=@NEW_MACHINE@
stamp=@STARTED_DIR@/etcd
self=@SELF@
peers=@PEERS@
@ETCD_TLS@
ctl() { timeout 30 @BIN_DIR@/etcdctl --dial-timeout 3s --command-timeout 10s "${tls[@]}" "$@"; }
fail() {
  echo "$1" >&2
  systemctl status etcd --no-pager -l >&2 || true
  journalctl -u etcd --no-pager -n 30 >&2 || true
  exit 1
}
# wait_healthy WHAT ETCDCTL-ARGS...: until `endpoint health` passes, within the bound.
wait_healthy() {
  local what=$1 deadline=$((SECONDS + @TIMEOUT_SECONDS@)) out
  shift
  until out=$(ctl endpoint health "$@" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what is not healthy after @TIMEOUT_SECONDS@s (seen from $(hostname)): $out"
    sleep 2
  done
  echo "$out"
}
has_data() { [ -d @DATA_DIR@/member ]; }
# switch_releases: etcd's binaries to the release this step installs, right before etcd (re)starts.
@SWITCH@

# How the running cluster sees this member, for a member without data: `none` (no cluster answers: a first
# creation, or peers still forming one), `unstarted` (listed by name or address without client addresses: a first
# creation in progress), `started` (listed with client addresses: this machine replaces a member that ran) or
# `absent` (a cluster answers without this member: it must join, even if the program knew its machine, say from an
# earlier `pulumi up` that failed before the member was added).
cluster_view() {
  local members
  # Short bounds: on a first creation nothing answers yet, and this check must not slow the start down.
  members=$(timeout 5 @BIN_DIR@/etcdctl --dial-timeout 1s --command-timeout 2s "${tls[@]}" --endpoints "$peers" member list 2>/dev/null) || { echo none; return; }
  awk -F', ' -v url=@PEER_URL@ '$4 == url {view = ($5 == "" ? "unstarted" : "started")}
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
  deadline=$((SECONDS + @TIMEOUT_SECONDS@))
  until members=$(ctl --endpoints "$peers" member list 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "no etcd cluster answers at $peers after @TIMEOUT_SECONDS@s, so @MEMBER@ \
is not started: a member of a cluster that ran never starts a new one (it would take the old member's place with an \
empty log). Run pulumi up again once a quorum of members runs. If this cluster never formed (no member has data: a \
first pulumi up stopped before etcd started), start etcd on every member first (systemctl start etcd). Last \
answer: $members"
    sleep 2
  done
  old=$(awk -F', ' -v url=@PEER_URL@ '$4 == url {print $1}' <<<"$members")
  if [ -n "$old" ]; then
    echo "removing member $old registered at @PEER_URL@ (the machine this one replaces)"
    deadline=$((SECONDS + @TIMEOUT_SECONDS@))
    until out=$(ctl --endpoints "$peers" member remove "$old" 2>&1); do
      [ "$SECONDS" -lt "$deadline" ] || fail "cannot remove member $old: $out"
      sleep 3
    done
  fi
  # etcd (--strict-reconfig-check) refuses a change until every member has been connected for a few seconds (one
  # that has just joined or restarted): retry within the bound.
  deadline=$((SECONDS + @TIMEOUT_SECONDS@))
  until added=$(ctl --endpoints "$peers" member add @MEMBER@ --learner --peer-urls=@PEER_URL@ 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "cannot add @MEMBER@ to the etcd cluster: $added"
    sleep 3
  done
  initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$added")
  # etcdctl pads the id to 16 characters with spaces: "Member  aae89c4b8869ec4 added as learner ...".
  id=$(sed -n 's/^Member *\([0-9a-f]*\) added.*/\1/p' <<<"$added")
  if [ -z "$initial" ] || [ -z "$id" ]; then
    fail "member add printed no initial cluster or member id: $added"
  fi
  echo "added @MEMBER@ ($id) as a learner"
  echo "ETCD_JOIN_INITIAL_CLUSTER=$initial" > @JOIN_ENV@
  install -d -m 0755 "$(dirname @JOIN_DROP_IN@)"
  cat > @JOIN_DROP_IN@ <<'DROPIN'
@DROP_IN@
DROPIN
  timeout 60 systemctl daemon-reload
  switch_releases || fail "etcd's release is not installed on $(hostname)"
  timeout 120 systemctl restart etcd || fail "etcd did not start within 120s on $(hostname)"
  # etcd promotes a learner only once its log has caught up with the leader's: retry within the bound.
  deadline=$((SECONDS + @TIMEOUT_SECONDS@))
  until out=$(ctl --endpoints "$peers" member promote "$id" 2>&1); do
    [ "$SECONDS" -lt "$deadline" ] || fail "learner @MEMBER@ ($id) was not promoted within @TIMEOUT_SECONDS@s: $out"
    sleep 2
  done
  echo "promoted @MEMBER@ ($id) to a voting member"
  healthy_and_recorded
}

# A member with data whose inputs changed: never take it down while another member is, then restart it.
rolling_restart() {
  if systemctl is-active --quiet etcd; then
    wait_healthy "the etcd cluster (before restarting @MEMBER@)" --endpoints "$self,$peers" --cluster
  fi
  switch_releases || fail "etcd's release is not installed on $(hostname)"
  timeout 120 systemctl restart etcd || fail "etcd did not restart within 120s on $(hostname)"
  healthy_and_recorded
}

# Wait, within the bound, for this member and every member to be healthy; then record what it runs.
healthy_and_recorded() {
  wait_healthy "etcd member @MEMBER@" --endpoints "$self"
  wait_healthy "the etcd cluster" --endpoints "$self" --cluster
  if [ -e @JOIN_DROP_IN@ ]; then
    rm -f @JOIN_DROP_IN@ @JOIN_ENV@
    timeout 60 systemctl daemon-reload
  fi
  echo "$want" > "$stamp"
  echo "etcd member @MEMBER@ is healthy on $(hostname), and so is every member"
}

install -d -m 0755 @STARTED_DIR@
if [ -e @JOIN_DROP_IN@ ] && has_data; then
  rm -f @JOIN_DROP_IN@ @JOIN_ENV@
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
