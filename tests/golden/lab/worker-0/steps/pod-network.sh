#!/bin/bash
# Install and run the pod network script. Verification: it prints the routes and the masquerade chain.
set -euo pipefail
install -d -m 0755 /usr/local/sbin
cat > /usr/local/sbin/k8s-pod-network.new <<'K8S_FROM_SCRATCH_EOF'
#!/bin/bash
# Pod routes and masquerading, managed by k8s-from-scratch. Verification: the routes listed, one rule.
set -euo pipefail
wanted=(10.200.1.0/24 10.200.2.0/24)
ip route replace 10.200.1.0/24 via 10.43.0.31 proto 211
ip route replace 10.200.2.0/24 via 10.43.0.32 proto 211
for existing in $(ip -4 route show proto 211 | cut -d' ' -f1); do
  keep=0
  for want in "${wanted[@]}"; do [ "$existing" = "$want" ] && keep=1; done
  if [ "$keep" = 0 ]; then ip route del "$existing" proto 211; echo "removed stale route $existing"; fi
done
iptables -w -t nat -N K8S-FROM-SCRATCH-MASQ 2>/dev/null || true
iptables -w -t nat -F K8S-FROM-SCRATCH-MASQ
iptables -w -t nat -A K8S-FROM-SCRATCH-MASQ -d 10.200.0.0/16 -j RETURN
iptables -w -t nat -A K8S-FROM-SCRATCH-MASQ -d 224.0.0.0/4 -j RETURN
iptables -w -t nat -A K8S-FROM-SCRATCH-MASQ -j MASQUERADE
rule=(-s 10.200.0.0/16 -m comment --comment k8s-from-scratch-pod-egress -j K8S-FROM-SCRATCH-MASQ)
iptables -w -t nat -C POSTROUTING "${rule[@]}" 2>/dev/null || iptables -w -t nat -A POSTROUTING "${rule[@]}"
ip -4 route show proto 211
iptables -w -t nat -S K8S-FROM-SCRATCH-MASQ
K8S_FROM_SCRATCH_EOF
chmod 0755 /usr/local/sbin/k8s-pod-network.new
mv -f /usr/local/sbin/k8s-pod-network.new /usr/local/sbin/k8s-pod-network
cat > /etc/systemd/system/k8s-pod-network.service <<'K8S_FROM_SCRATCH_EOF'
[Unit]
Description=k8s-from-scratch pod routes and masquerading
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/sbin/k8s-pod-network
Restart=no
Type=oneshot
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
K8S_FROM_SCRATCH_EOF
systemctl daemon-reload
systemctl enable --quiet k8s-pod-network.service
/usr/local/sbin/k8s-pod-network
