#!/bin/bash
# Verification: every etcd member answers a health check over mutual TLS.
set -uo pipefail
deadline=$((SECONDS + 300))
tls=(--cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key)
until out=$(/usr/local/bin/etcdctl --endpoints https://10.43.0.10:2379,https://10.43.0.11:2379,https://10.43.0.12:2379 "${tls[@]}" endpoint health 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd is not healthy after 300s on $(hostname):" >&2
    echo "$out" >&2
    echo "--- last lines of the etcd log on $(hostname):" >&2
    journalctl -u etcd --no-pager -n 30 >&2 || true
    exit 1
  fi
  sleep 5
done
echo "$out"
/usr/local/bin/etcdctl --endpoints https://10.43.0.10:2379,https://10.43.0.11:2379,https://10.43.0.12:2379 "${tls[@]}" member list -w table
