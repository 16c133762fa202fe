#!/bin/bash
# Verification: the local API server is ready.
set -uo pipefail
deadline=$((SECONDS + @TIMEOUT_SECONDS@))
until out=$(curl --silent --show-error --fail --cacert @CA_CERT@ "@LOCAL_API@/readyz?verbose" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kube-apiserver on $(hostname) is not ready after @TIMEOUT_SECONDS@s:" >&2
    echo "$out" | tail -n 20 >&2
    @LOG_TAILS@
    exit 1
  fi
  sleep 5
done
echo "kube-apiserver on $(hostname) is ready"
