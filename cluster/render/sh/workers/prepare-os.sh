#!/bin/bash
# Prepare the OS of a worker. Verification: @CGROUPS@, kernel features present, the sysctls the kubelet expects
# in effect, swap off.
set -euo pipefail
@CGROUP_CHECK@
cat > /etc/modules-load.d/kubernetes.conf <<'EOF'
@MODULES@
EOF
feature_present() {
  case "$1" in
    @FEATURE_TESTS@
  esac
}
for module in @MODULE_NAMES@; do
  # A kernel with the feature built in has nothing to load: only a feature that is still missing is an error.
  feature_present "$module" || modprobe "$module" || true
  if ! feature_present "$module"; then
    echo "$(hostname): the kernel has no $module (not built in, and modprobe could not load it)" >&2
    exit 1
  fi
done
cat > /etc/sysctl.d/90-kubernetes.conf <<'EOF'
@SYSCTLS@
EOF
# Another file may fail to apply (a key this kernel lacks); what counts is that ours hold, checked next.
sysctl --quiet --system || true
wrong=()
for setting in @EXPECTED@; do
  key=${setting%%=*}
  want=${setting#*=}
  got=$(sysctl -n "$key" 2>/dev/null || echo missing)
  [ "$got" = "$want" ] || wrong+=("$key=$got (want $want)")
done
if [ "${#wrong[@]}" -gt 0 ]; then
  echo "$(hostname): sysctls the kubelet needs are not in effect (does a later /etc/sysctl.d file override" \
    "90-kubernetes.conf?): ${wrong[*]}" >&2
  exit 1
fi
swapoff -a
@FSTAB_SWAP_OFF@
missing=()
for pkg in @PACKAGES@; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # unattended-upgrades may hold the dpkg lock for a while after first boot: wait for it, within a bound.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}"
fi
install -d -m 0755 @DIRECTORIES@
