# Verification: the snapshot and defragmentation timers are active and listed with their next run.
install -d -m 0700 -o root -g root @SNAPSHOT_DIR@
systemctl daemon-reload
systemctl enable --quiet @TIMERS@
# A changed interval takes effect now, not at the next boot.
systemctl restart @TIMERS@
systemctl is-active --quiet @TIMERS@
systemctl list-timers --no-pager @TIMERS@
