"""One lab for every lab test module (test_lab.py, test_lab_workers.py): a 3/3/3 boot costs minutes, so it is made
once per pytest session, on first use, and removed at the end.

K8S_FROM_SCRATCH_LAB_ATTACH=<tag> runs the tests against a lab that is already up (`./lab --tag <tag> up`) instead,
and leaves it running: for working on the tests themselves. Some tests stop and start services on it.
K8S_FROM_SCRATCH_LAB_TEST_TAG names the lab the tests boot (default "test"), so that two runs can share a host.
The tests' lab runs the Go build the other integration tests need anyway (tests/support/binaries.py), unless
K8S_FROM_SCRATCH_LAB_RELEASES names where to download the release archives from (`https://`: the publishers)."""

from __future__ import annotations

import os

import pytest

from locallab.machines import missing_tools


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    missing = missing_tools()
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)}")
    from locallab import releases, session
    os.environ.setdefault(releases.RELEASES_SETTING, "off")
    attach = os.environ.get("K8S_FROM_SCRATCH_LAB_ATTACH")
    if attach:
        yield session.attach(attach)
        return
    with session.lab_session(tag=os.environ.get("K8S_FROM_SCRATCH_LAB_TEST_TAG", "test")) as lab:
        print("\n" + lab.first_report.table())
        print("lab timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in lab.timings.items()))
        yield lab


# The whole-cluster restore rewinds the cluster's store to a snapshot under the running lab: the lab tests after
# it would start from a rewound cluster (Node objects, leases and add-on pods of the snapshot's time), which none of
# them is written for. So it runs last of them, whatever the file names sort as.
LAST_ON_THE_SHARED_LAB = "test_lab_workers_dns_and_restore.py"


def pytest_collection_modifyitems(items):
    last = [item for item in items if item.path.name == LAST_ON_THE_SHARED_LAB]
    if not last:
        return
    rest = [item for item in items if item.path.name != LAST_ON_THE_SHARED_LAB]
    lab_items = [i for i, item in enumerate(rest) if item.path.name.startswith("test_lab")]
    at = lab_items[-1] + 1 if lab_items else len(rest)
    items[:] = rest[:at] + last + rest[at:]
