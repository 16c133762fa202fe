#!/bin/bash
# Keep this node's clock on the Amazon Time Sync Service (etcd's leases and every certificate's validity depend on
# it). Verification: chrony has selected 169.254.169.123, or the node is a container sharing its host's clock.
set -euo pipefail
if kind=$(systemd-detect-virt --container); then
  echo "$(hostname) is a container ($kind): it keeps its host's clock, nothing to set"
  exit 0
fi
if ! command -v chronyc >/dev/null 2>&1; then
  # unattended-upgrades may hold the dpkg lock for a while after first boot: wait for it, within a bound.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chrony
fi
install -d -m 0755 /etc/chrony/sources.d
cat > /etc/chrony/sources.d/amazon-time-sync.sources.new <<'K8S_FROM_SCRATCH_EOF'
# The Amazon Time Sync Service (k8s-from-scratch).
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4
K8S_FROM_SCRATCH_EOF
if cmp -s /etc/chrony/sources.d/amazon-time-sync.sources.new /etc/chrony/sources.d/amazon-time-sync.sources; then
  rm -f /etc/chrony/sources.d/amazon-time-sync.sources.new
else
  mv -f /etc/chrony/sources.d/amazon-time-sync.sources.new /etc/chrony/sources.d/amazon-time-sync.sources
fi
timeout 60 systemctl enable --now chrony
timeout 30 chronyc reload sources >/dev/null
deadline=$((SECONDS + 120))
until timeout 10 chronyc -n sources | grep -q '^\^\* *169.254.169.123 '; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "chrony on $(hostname) has not selected 169.254.169.123 after 120s:" >&2
    timeout 10 chronyc -n sources >&2 || true
    exit 1
  fi
  sleep 2
done
timeout 10 chronyc tracking
