set -uo pipefail
node=@NODE@
kubectl() { timeout 60 @KUBECTL@ "$@"; }
fail() { echo "$1" >&2; exit 1; }
# jsonpath FIELD: one field of the Node object; fails only when the API cannot be read.
field() { kubectl get node "$node" -o "jsonpath=$1"; }
ready_status() { field '{.status.conditions[?(@.type=="Ready")].status}'; }
heartbeat() { field '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'; }
