#!/bin/bash
# Verification: every etcd member answers a health check over mutual TLS.
set -uo pipefail
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
@ETCD_TLS@
until out=$(@BIN_DIR@/etcdctl --endpoints @ENDPOINTS@ "${tls[@]}" endpoint health 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd is not healthy after @TIMEOUT_SECONDS@s on $(hostname):" >&2
    echo "$out" >&2
    echo "--- last lines of the etcd log on $(hostname):" >&2
    journalctl -u etcd --no-pager -n 30 >&2 || true
    exit 1
  fi
  sleep 5
done
echo "$out"
@BIN_DIR@/etcdctl --endpoints @ENDPOINTS@ "${tls[@]}" member list -w table
