#!/bin/bash
# Defragment etcd member @MEMBER@ when at least @MIN_PERCENT@% and @MIN_BYTES@ bytes of its database file are free
# pages (the file never shrinks by itself). Verification: etcdctl reports the defragmentation and the new size.
set -euo pipefail
@ETCD_TLS@
ctl() {
  timeout @DEFRAG_SECONDS@ @BIN_DIR@/etcdctl --endpoints https://127.0.0.1:@CLIENT_PORT@ "${tls[@]}" \
    --dial-timeout 10s --command-timeout @DEFRAG_COMMAND_SECONDS@s "$@"
}
field() { sed -n "s/^\"$1\" : \\([0-9]*\\)\$/\\1/p" <<<"$2"; }
# A defragmentation blocks this member while it runs: only while every member is healthy (the members' timers are
# hours apart, so no two run at once).
if ! health=$(ctl endpoint health --cluster 2>&1); then
  echo "not every etcd member is healthy, no defragmentation of @MEMBER@ now: $health" >&2
  exit 1
fi
status=$(ctl endpoint status -w fields)
size=$(field DBSize "$status")
in_use=$(field DBSizeInUse "$status")
if [ -z "$size" ] || [ -z "$in_use" ]; then
  echo "cannot read the database size of @MEMBER@: $status" >&2
  exit 1
fi
reclaimable=$((size - in_use))
if [ "$reclaimable" -lt @MIN_BYTES@ ] || [ $((reclaimable * 100)) -lt $((size * @MIN_PERCENT@)) ]; then
  echo "@MEMBER@: $reclaimable of $size bytes free in the database file, not worth a defragmentation"
  exit 0
fi
# The defragmentation writes a new file beside the old one.
free=$(df --output=avail -B1 @DATA_DIR@ | tail -n 1 | tr -d ' ')
if [ "$free" -lt "$in_use" ]; then
  echo "@MEMBER@: $free bytes free on the data disk, $in_use needed to defragment" >&2
  exit 1
fi
ctl defrag
after=$(field DBSize "$(ctl endpoint status -w fields)")
echo "@MEMBER@ defragmented: $size -> $after bytes"
