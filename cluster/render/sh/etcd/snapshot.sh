#!/bin/bash
# Verification: every snapshot is read back by `etcdutl snapshot status` before it counts; one that is not is removed.
set -euo pipefail
umask 077
dir=@SNAPSHOT_DIR@
keep=@KEEP@
install -d -m 0700 "$dir"
file="$dir/@MEMBER@-$(date -u +%Y%m%dT%H%M%SZ).db"
# etcdctl writes "$file.part" and renames it when complete; neither may survive a failed run.
trap 'rm -f "$file.part"' EXIT
@ETCD_TLS@
timeout @SAVE_SECONDS@ @BIN_DIR@/etcdctl --endpoints https://127.0.0.1:@CLIENT_PORT@ "${tls[@]}" \
  --dial-timeout 10s --command-timeout @SAVE_COMMAND_SECONDS@s snapshot save "$file"
if ! status=$(timeout @STATUS_SECONDS@ @BIN_DIR@/etcdutl snapshot status "$file" -w json 2>&1); then
  echo "snapshot $file does not verify, removed: $status" >&2
  rm -f "$file"
  exit 1
fi
chmod 0600 "$file"
echo "saved $file: $status"

@UPLOAD_FUNCTION@
# Newest first (the names sort by time); everything after the first $keep goes.
mapfile -t snapshots < <(find "$dir" -maxdepth 1 -type f -name '@MEMBER@-*.db' -printf '%f\n' | sort -r)
for old in "${snapshots[@]:keep}"; do
  rm -f "${dir:?}/$old"
  echo "removed $dir/$old (keeping the newest $keep)"
done
@UPLOAD_CALL@
