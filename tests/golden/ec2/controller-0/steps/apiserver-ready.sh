#!/bin/bash
# Verification: the local API server is ready.
set -uo pipefail
deadline=$((SECONDS + 300))
until out=$(curl --silent --show-error --fail --cacert /etc/kubernetes/pki/ca.crt "https://127.0.0.1:6443/readyz?verbose" 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kube-apiserver on $(hostname) is not ready after 300s:" >&2
    echo "$out" | tail -n 20 >&2
    for unit in kube-apiserver kube-controller-manager kube-scheduler; do
      echo "--- last lines of the $unit log on $(hostname):" >&2
      journalctl -u "$unit" --no-pager -n 20 >&2 || true
    done
    exit 1
  fi
  sleep 5
done
echo "kube-apiserver on $(hostname) is ready"
