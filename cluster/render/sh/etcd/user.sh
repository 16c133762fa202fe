#!/bin/bash
# The etcd system user owns the data dir and the member's keys.
set -euo pipefail
if ! id etcd >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir @DATA_DIR@ --shell /usr/sbin/nologin etcd
fi
install -d -m 0700 -o etcd -g etcd @DATA_DIR@
install -d -m 0755 -o etcd -g etcd @PKI_DIR@
