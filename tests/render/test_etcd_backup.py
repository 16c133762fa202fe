"""The etcd snapshot timer and scripts, checked by systemd-analyze and by running the restore script's guards."""

import shutil
import subprocess

import pytest

from cluster.render import etcd_backup
from tests.render import sample

needs = lambda tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


@needs("systemd-analyze")
def test_the_snapshot_timer_and_its_service_pass_systemd_analyze_verify(tmp_path):
    stub = tmp_path / "k8s-etcd-snapshot"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    service = etcd_backup.snapshot_service().replace(etcd_backup.SNAPSHOT_SCRIPT, str(stub))
    (tmp_path / f"{etcd_backup.SNAPSHOT_UNIT}.service").write_text(service)
    timer = tmp_path / f"{etcd_backup.SNAPSHOT_UNIT}.timer"
    timer.write_text(etcd_backup.snapshot_timer(90))
    result = subprocess.run(["systemd-analyze", "verify", str(timer)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert "OnUnitActiveSec=90min" in timer.read_text()


def test_the_snapshot_service_is_a_bounded_oneshot_that_never_restarts_or_starts_at_boot():
    service = etcd_backup.snapshot_service()
    assert "Type=oneshot" in service and "TimeoutStartSec=" in service
    assert "Restart=" not in service and "[Install]" not in service


def test_node_files_are_root_only_scripts_and_readable_units():
    files = {f.path: f for f in etcd_backup.backup_files(sample.ETCD[0], sample.ETCD, "k8s-dev",
                                                         interval_minutes=60, keep=24, bucket=None)}
    assert files[etcd_backup.SNAPSHOT_SCRIPT].mode == files[etcd_backup.RESTORE_SCRIPT].mode == "0700"
    assert files["/etc/systemd/system/k8s-etcd-snapshot.timer"].mode == "0644"


@pytest.mark.parametrize("args", [[], ["/nonexistent/snapshot.db"], ["a", "b"]])
def test_the_restore_script_refuses_a_missing_snapshot_before_touching_anything(args, tmp_path):
    script = tmp_path / "restore.sh"
    script.write_text(etcd_backup.restore_script(sample.ETCD[0], sample.ETCD, "k8s-dev"))
    result = subprocess.run([shutil.which("bash"), str(script), *args], capture_output=True, text=True,
                            env={"PATH": "/nonexistent"})    # nothing it could call is reachable
    assert result.returncode == 2 and "usage:" in result.stderr


def test_the_restore_script_rebuilds_this_member_of_the_same_cluster():
    script = etcd_backup.restore_script(sample.ETCD[1], sample.ETCD, "k8s-dev")
    assert "--name etcd-1 " in script
    assert "--initial-advertise-peer-urls https://10.43.0.11:2380 " in script
    assert ("--initial-cluster etcd-0=https://10.43.0.10:2380,etcd-1=https://10.43.0.11:2380,"
            "etcd-2=https://10.43.0.12:2380 ") in script
    # Same snapshot, same token on every member: nobody has to pass one around.
    assert 'token="k8s-dev-restore-$(sha256sum "$snapshot" | cut -c1-16)"' in script
