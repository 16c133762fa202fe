#!/bin/bash
# Verification: every snapshot is read back by `etcdutl snapshot status` before it counts; one that is not is removed.
# A snapshot is saved only with room for twice the database on the snapshot disk (older snapshots make way), and
# the ones kept fit in @KEEP_BYTES@ bytes and number at most @KEEP@: the disk etcd writes to never fills up.
set -euo pipefail
umask 077
dir=@SNAPSHOT_DIR@
keep=@KEEP@
keep_bytes=@KEEP_BYTES@
install -d -m 0700 "$dir"
file="$dir/@MEMBER@-$(date -u +%Y%m%dT%H%M%SZ).db"
# etcdctl writes "$file.part" and renames it when complete; neither may survive a failed run.
trap 'rm -f "$file.part"' EXIT
@ETCD_TLS@
ctl() {
  timeout @SAVE_SECONDS@ @BIN_DIR@/etcdctl --endpoints https://127.0.0.1:@CLIENT_PORT@ "${tls[@]}" \
    --dial-timeout 10s --command-timeout @SAVE_COMMAND_SECONDS@s "$@"
}
# Newest first (the names sort by time).
snapshots() { find "$dir" -maxdepth 1 -type f -name '@MEMBER@-*.db' -printf '%f\n' | sort -r; }
free_bytes() { df --output=avail -B1 "$dir" | tail -n 1 | tr -d ' '; }

# A snapshot is as large as the database file: room for two of them, so that the disk keeps room to spare.
size=$(ctl endpoint status -w fields | sed -n 's/^"DBSize" : \([0-9]*\)$/\1/p')
[ -n "$size" ] || { echo "cannot read the database size of @MEMBER@" >&2; exit 1; }
need=$((2 * size))
mapfile -t older < <(snapshots)
while [ "$(free_bytes)" -lt "$need" ] && [ "${#older[@]}" -gt 1 ]; do
  rm -f "${dir:?}/${older[-1]}"
  echo "removed $dir/${older[-1]} to make room: the database is $size bytes"
  unset 'older[-1]'
done
if [ "$(free_bytes)" -lt "$need" ]; then
  echo "no snapshot of @MEMBER@: $(free_bytes) bytes free under $dir, $need needed (twice the $size-byte database)." \
    "Grow etcd.rootVolumeGb or lower etcdSnapshots.keepGb" >&2
  exit 1
fi

ctl snapshot save "$file"
if ! status=$(timeout @STATUS_SECONDS@ @BIN_DIR@/etcdutl snapshot status "$file" -w json 2>&1); then
  echo "snapshot $file does not verify, removed: $status" >&2
  rm -f "$file"
  exit 1
fi
chmod 0600 "$file"
echo "saved $file: $status"

@UPLOAD_FUNCTION@
# The newest always stays; the next ones while they number fewer than $keep and fit in $keep_bytes together.
kept=0
kept_bytes=0
while read -r name; do
  bytes=$(stat -c %s "$dir/$name")
  if [ "$kept" -eq 0 ] || { [ "$kept" -lt "$keep" ] && [ $((kept_bytes + bytes)) -le "$keep_bytes" ]; }; then
    kept=$((kept + 1))
    kept_bytes=$((kept_bytes + bytes))
  else
    rm -f "${dir:?}/$name"
    echo "removed $dir/$name (keeping the newest $kept, $kept_bytes bytes)"
  fi
done < <(snapshots)
@UPLOAD_CALL@
