sudo timeout --kill-after=30 240 bash -c '#!/bin/bash
# Remove etcd member etcd-2 from the cluster. Verification: it is no longer listed.
set -uo pipefail
tls=(--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key)
ctl() { timeout 30 /usr/local/bin/etcdctl --endpoints https://10.43.0.10:2379 --dial-timeout 3s --command-timeout 10s   "${tls[@]}" "$@"; }
members=$(ctl member list) || { echo "cannot list the etcd members from etcd-0" >&2; exit 1; }
id=$(awk -F'"'"', '"'"' '"'"'$3 == "etcd-2" || $4 == "https://10.43.0.12:2380" {print $1}'"'"' <<<"$members")
if [ -z "$id" ]; then
  echo "etcd-2 is not an etcd member: nothing to remove"
  exit 0
fi
# etcd (--strict-reconfig-check) refuses a removal until every other member has been connected for a few seconds:
# a member that has just joined or restarted. Retry within a bound.
deadline=$((SECONDS + 120))
until out=$(ctl member remove "$id" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd refused to remove etcd-2 for 120s: $out" >&2
    exit 1
  fi
  sleep 3
done
echo "$out"
if ctl member list | grep -q ", etcd-2, "; then
  echo "etcd-2 is still listed after member remove" >&2
  exit 1
fi
echo "removed etcd member etcd-2 ($id)"
'
