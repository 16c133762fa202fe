#!/bin/bash
# Verification: every nginx replica is ready, one per worker.
set -uo pipefail
if ! @KUBECTL@ -n @NAMESPACE@ rollout status deployment/nginx --timeout=@TIMEOUT_SECONDS@s; then
  @KUBECTL@ -n @NAMESPACE@ get pods -l app=nginx-smoke-test -o wide >&2
  @KUBECTL@ -n @NAMESPACE@ describe deployment nginx >&2
  exit 1
fi
@KUBECTL@ -n @NAMESPACE@ get pods -l app=nginx-smoke-test -o wide
