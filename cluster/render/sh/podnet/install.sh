#!/bin/bash
# Install and run the pod network script. Verification: it prints the routes and the masquerade chain.
set -euo pipefail
install -d -m 0755 /usr/local/sbin
cat > @APPLY_PATH@.new <<'K8S_FROM_SCRATCH_EOF'
@APPLY@
K8S_FROM_SCRATCH_EOF
chmod 0755 @APPLY_PATH@.new
mv -f @APPLY_PATH@.new @APPLY_PATH@
cat > /etc/systemd/system/@UNIT_NAME@.service <<'K8S_FROM_SCRATCH_EOF'
@UNIT@
K8S_FROM_SCRATCH_EOF
systemctl daemon-reload
systemctl enable --quiet @UNIT_NAME@.service
@APPLY_PATH@
