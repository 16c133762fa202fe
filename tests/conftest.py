"""Suite-wide rules: in CI (K8S_FROM_SCRATCH_REQUIRE_INTEGRATION=1) a skipped integration test is a failure."""

import os

import pytest

REQUIRE_INTEGRATION = os.environ.get("K8S_FROM_SCRATCH_REQUIRE_INTEGRATION") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_INTEGRATION and report.skipped and item.get_closest_marker("integration"):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped where it is required: {report.longrepr}"
