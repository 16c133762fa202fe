#!/bin/bash
# Verification: etcd-2 is a started member of the etcd cluster, seen from etcd-0.
set -uo pipefail
tls=(--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key)
members=$(timeout 30 /usr/local/bin/etcdctl --endpoints https://10.43.0.10:2379 "${tls[@]}" member list) || exit 1
if ! grep -q ", started, etcd-2, https://10.43.0.12:2380, " <<<"$members"; then
  echo "etcd-2 is not a started etcd member:" >&2
  echo "$members" >&2
  exit 1
fi
echo "etcd-2 is a started etcd member"
