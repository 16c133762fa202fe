#!/bin/bash
# Remove etcd member @LEAVING@ from the cluster. Verification: it is no longer listed.
set -uo pipefail
@ETCD_TLS@
ctl() { timeout 30 @BIN_DIR@/etcdctl --endpoints @VIA_URL@ --dial-timeout 3s --command-timeout 10s   "${tls[@]}" "$@"; }
members=$(ctl member list) || { echo "cannot list the etcd members from @VIA@" >&2; exit 1; }
id=$(awk -F', ' '$3 == "@LEAVING@" || $4 == "@LEAVING_PEER_URL@" {print $1}' <<<"$members")
if [ -z "$id" ]; then
  echo "@LEAVING@ is not an etcd member: nothing to remove"
  exit 0
fi
# etcd (--strict-reconfig-check) refuses a removal until every other member has been connected for a few seconds:
# a member that has just joined or restarted. Retry within a bound.
deadline=$((SECONDS + 120))
until out=$(ctl member remove "$id" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd refused to remove @LEAVING@ for 120s: $out" >&2
    exit 1
  fi
  sleep 3
done
echo "$out"
if ctl member list | grep -q ", @LEAVING@, "; then
  echo "@LEAVING@ is still listed after member remove" >&2
  exit 1
fi
echo "removed etcd member @LEAVING@ ($id)"
