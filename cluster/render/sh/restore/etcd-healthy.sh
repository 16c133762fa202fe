#!/bin/bash
# Verification: this etcd member answers a health check (which needs a quorum) within @TIMEOUT_SECONDS@s.
set -uo pipefail
@ETCD_TLS@
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
health() { timeout 30 @BIN_DIR@/etcdctl --endpoints https://127.0.0.1:@CLIENT_PORT@ "${tls[@]}" endpoint health; }
until out=$(health 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd on $(hostname) is not healthy after @TIMEOUT_SECONDS@s: $out" >&2
    journalctl -u etcd --no-pager -n 30 >&2 || true
    exit 1
  fi
  sleep 3
done
echo "$out"
