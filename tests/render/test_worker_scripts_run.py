"""Worker and add-on scripts run for real against stand-ins for kubectl and for the files they edit: the CNI config
follower, the fstab edit, and the DNS check's reading of busybox's nslookup output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cluster.render import addons
from cluster.render.workers import cni, prepare_os


def fake_kubectl(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "kubectl"
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


# --- the CNI config follower ---------------------------------------------------------------------------------------

def follower(tmp_path: Path, cidr_file: Path) -> tuple[Path, Path, Path]:
    """The rendered k8s-cni-config script with its paths moved under tmp_path; the fake kubectl answers the
    podCIDR written in `cidr_file` (or fails when the file is missing, like an API not reachable yet)."""
    net_d = tmp_path / "net.d"
    net_d.mkdir(exist_ok=True)
    template = tmp_path / "template"
    template.write_text(cni.cni_template())
    kubectl = fake_kubectl(tmp_path, f'[ -f {cidr_file} ] || {{ echo "connection refused" >&2; exit 1; }}\n'
                                     f'cat {cidr_file}\n')
    script = tmp_path / "k8s-cni-config"
    script.write_text(cni.cni_config_sync_script(
        "worker-0", kubectl=str(kubectl), template=str(template), conflist=str(net_d / "10-k8s-pod-network.conflist"),
        legacy=str(net_d / "10-containerd-net.conflist")))
    return script, net_d / "10-k8s-pod-network.conflist", net_d / "10-containerd-net.conflist"


def sync_once(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), "--once"], capture_output=True, text=True, timeout=30)


def test_cni_config_follows_the_node_pod_cidr_and_rewrites_only_on_change(tmp_path):
    cidr = tmp_path / "cidr"
    script, conflist, legacy = follower(tmp_path, cidr)
    legacy.write_text("{}")

    waiting = sync_once(script)
    assert waiting.returncode != 0 and "cannot read node worker-0 yet: connection refused" in waiting.stderr
    assert not conflist.exists() and legacy.exists(), "nothing is touched before the node has a range"

    cidr.write_text("")
    assert "node worker-0 has no podCIDR yet" in sync_once(script).stderr

    cidr.write_text("10.200.3.0/24")
    first = sync_once(script)
    assert first.returncode == 0, first.stderr
    assert "CNI config now uses podCIDR 10.200.3.0/24" in first.stdout
    assert json.loads(conflist.read_text()) == json.loads(cni.cni_conflist("10.200.3.0/24"))
    assert oct(conflist.stat().st_mode & 0o777) == "0o600"
    assert not legacy.exists(), "containerd's old template output would sort first and win"

    again = sync_once(script)
    assert again.returncode == 0 and again.stdout == "", "an unchanged range changes nothing"

    cidr.write_text("10.200.7.0/24")      # the node re-registered and got another range
    moved = sync_once(script)
    assert "CNI config now uses podCIDR 10.200.7.0/24" in moved.stdout
    assert json.loads(conflist.read_text())["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.200.7.0/24"}]]
    assert not list(conflist.parent.glob("*.tmp"))


def test_cni_config_follower_ignores_an_answer_that_is_not_a_cidr(tmp_path):
    cidr = tmp_path / "cidr"
    cidr.write_text("10.200.3.0/24; rm -rf /")
    script, conflist, _ = follower(tmp_path, cidr)
    assert sync_once(script).returncode != 0 and not conflist.exists()


# --- the fstab edit ------------------------------------------------------------------------------------------------

def test_swap_lines_are_commented_once_and_other_lines_are_left_alone(tmp_path):
    fstab = tmp_path / "fstab"
    original = ("LABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n"
                "/swap.img none swap sw 0 0\n"
                "# /old.img none swap sw 0 0\n"
                "LABEL=UEFI /boot/efi vfat umask=0077 0 1\n")
    fstab.write_text(original)
    script = tmp_path / "swapoff.sh"
    script.write_text(prepare_os.FSTAB_SWAP_OFF.replace("/etc/fstab", str(fstab)))
    for _ in range(3):
        subprocess.run(["bash", str(script)], check=True)
    assert fstab.read_text() == original.replace("/swap.img", "#/swap.img")


# --- the DNS check -------------------------------------------------------------------------------------------------

BUSYBOX_ANSWERS = """=== kubernetes.default.svc.cluster.local
Server:\t\t10.32.0.10
Address:\t10.32.0.10:53

Name:\tkubernetes.default.svc.cluster.local
Address: 10.32.0.1

=== sts.amazonaws.com
Server:\t\t10.32.0.10
Address:\t10.32.0.10:53

Non-authoritative answer:
Name:\tsts.amazonaws.com
Address: 209.54.177.164

Non-authoritative answer:
*** Can't find sts.amazonaws.com: No answer

=== end
"""
# What busybox prints when CoreDNS cannot reach the VPC resolver: the server's own address, and no answer.
BUSYBOX_EXTERNAL_FAILS = BUSYBOX_ANSWERS.split("=== sts.amazonaws.com")[0] + """=== sts.amazonaws.com
Server:\t\t10.32.0.10
Address:\t10.32.0.10:53

** server can't find sts.amazonaws.com: SERVFAIL

=== end
"""


def run_dns_check(tmp_path: Path, pod_log: str, timeout_seconds: int = 1) -> tuple[subprocess.CompletedProcess, str]:
    """The rendered dns-check, fed on stdin as the remote step does (`bash -s`), against a kubectl stand-in whose
    pod prints `pod_log`. Returns the run and the stand-in's record of calls."""
    (tmp_path / "pod.log").write_text(pod_log)
    calls = tmp_path / "calls"
    kubectl = fake_kubectl(tmp_path, f"""
echo "$*" >> {calls}
case "$*" in
  "apply "*) cat > {tmp_path}/stdin-of-apply ;;
  *" create "*) cat > {tmp_path}/stdin-of-create ;;
  *) if read -r -t 0.1 line; then echo "READ STDIN: $*: $line" >> {calls}; fi ;;
esac
case "$*" in
  *"get pod dns-check"*) echo Succeeded ;;
  *"logs dns-check"*) cat {tmp_path}/pod.log ;;
esac
exit 0
""")
    script = addons.dns_check_script(image="busybox:1.37", kubernetes_service_ip="10.32.0.1",
                                     external_name="sts.amazonaws.com", timeout_seconds=timeout_seconds)
    script = script.replace(addons.KUBECTL, str(kubectl))
    result = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, timeout=60)
    return result, calls.read_text()


def test_dns_check_passes_on_both_answers_and_reads_nothing_from_the_script_on_stdin(tmp_path):
    result, calls = run_dns_check(tmp_path, BUSYBOX_ANSWERS)
    assert result.returncode == 0, result.stderr
    assert "kubernetes.default.svc.cluster.local: 10.32.0.1" in result.stdout
    assert "sts.amazonaws.com: 209.54.177.164" in result.stdout
    assert "READ STDIN" not in calls, calls
    assert " run " not in calls, "no kubectl run: it attaches stdin"
    pod = json.loads((tmp_path / "stdin-of-create").read_text())
    assert pod["kind"] == "Pod" and pod["metadata"]["namespace"] == "dns-check"
    assert json.loads((tmp_path / "stdin-of-apply").read_text())["kind"] == "Namespace"
    assert "delete pod dns-check" in calls.splitlines()[-1], "the check pod is removed"


@pytest.mark.parametrize("log, missing", [
    (BUSYBOX_EXTERNAL_FAILS, "sts.amazonaws.com: no answer"),
    (BUSYBOX_ANSWERS.replace("Address: 10.32.0.1\n", "Address: 10.32.0.99\n"),
     "kubernetes.default.svc.cluster.local: 10.32.0.99"),
    ("", "kubernetes.default.svc.cluster.local: no answer"),
])
def test_dns_check_fails_within_its_bound_and_shows_what_the_pod_saw(tmp_path, log, missing):
    result, _ = run_dns_check(tmp_path, log)
    assert result.returncode == 1
    assert "no pod resolved both kubernetes.default.svc.cluster.local (want 10.32.0.1) and sts.amazonaws.com" \
        in result.stderr
    assert missing in result.stderr
    assert log in result.stderr, "the pod's own output is shown"


# --- kernel features -----------------------------------------------------------------------------------------------

def kernel_feature_part() -> str:
    """The part of prepare-os that makes sure overlay and br_netfilter are there."""
    script = prepare_os.os_prep_script()
    start = script.index("feature_present() {")
    end = script.index("\ndone\n", script.index("for module in ")) + len("\ndone\n")
    return "set -euo pipefail\n" + script[start:end]


@pytest.mark.skipif(not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
                    or "overlay" not in Path("/proc/filesystems").read_text(),
                    reason="this kernel lacks overlay or br_netfilter")
def test_built_in_kernel_features_pass_even_when_modprobe_cannot_load_anything(tmp_path):
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "modprobe").write_text("#!/bin/sh\necho \"modprobe: FATAL: Module $1 not found\" >&2\nexit 1\n")
    (stubs / "modprobe").chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin"}
    ok = subprocess.run(["bash", "-c", kernel_feature_part()], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(["bash", "-c", kernel_feature_part().replace("grep -qw overlay /proc/filesystems",
                                                                          "grep -qw no-such-fs /proc/filesystems")],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 1
    assert "the kernel has no overlay (not built in, and modprobe could not load it)" in missing.stderr
