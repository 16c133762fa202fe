#!/bin/bash
# Verification: @MEMBER@ is a started member of the etcd cluster, seen from @VIA@.
set -uo pipefail
@ETCD_TLS@
members=$(timeout 30 @BIN_DIR@/etcdctl --endpoints @VIA_URL@ "${tls[@]}" member list) || exit 1
if ! grep -q ", started, @MEMBER@, @PEER_URL@, " <<<"$members"; then
  echo "@MEMBER@ is not a started etcd member:" >&2
  echo "$members" >&2
  exit 1
fi
echo "@MEMBER@ is a started etcd member"
