# Verification: the snapshot timer is active and listed with its next run.
install -d -m 0700 -o root -g root @SNAPSHOT_DIR@
systemctl daemon-reload
systemctl enable @SNAPSHOT_UNIT@.timer
# A changed interval takes effect now, not at the next boot.
systemctl restart @SNAPSHOT_UNIT@.timer
systemctl is-active --quiet @SNAPSHOT_UNIT@.timer
systemctl list-timers --no-pager @SNAPSHOT_UNIT@.timer
