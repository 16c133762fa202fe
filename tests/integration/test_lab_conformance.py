"""A subset of the Kubernetes conformance suite on the shared lab, through `./lab conformance`'s own code path
(locallab.conformance.run_suite: e2e.test and the test images built from the pinned release, the images pushed to
the lab registry, ginkgo run from the deployer namespace): admission webhooks, CRD conversion, the aggregator,
Services, DNS, pod networking, and a ConfigMap read through the environment (the busybox image).

Every spec of the subset must pass. Until the API servers reached pods (--enable-aggregator-routing, the
front-proxy certificates), the webhook, conversion, field selector and aggregator specs here failed; the ConfigMap
one failed on Debian's busybox shell. The full suite is `./lab conformance` (docs/conformance.md).
"""

from __future__ import annotations

import re

import pytest

from locallab import conformance

pytestmark = pytest.mark.integration

WEBHOOK = "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin]"
CONVERSION = "[sig-api-machinery] CustomResourceConversionWebhook [Privileged:ClusterAdmin]"
FIELD_SELECTORS = ("[sig-api-machinery] CustomResourceFieldSelectors [Privileged:ClusterAdmin] "
                   "CustomResourceFieldSelectors")
SERVICES = "[sig-network] Services"
DNS = "[sig-network] DNS"
POD_NETWORK = "[sig-network] Networking Granular Checks: Pods"
CONFIGMAP = "[sig-node] ConfigMap"

# The specs, named as the suite's JUnit report names them.
SUBSET = [
    f"{WEBHOOK} should include webhook resources in discovery documents [Conformance]",
    f"{WEBHOOK} should be able to create and update validating webhook configurations with match conditions "
    "[Conformance]",
    f"{WEBHOOK} should be able to deny pod and configmap creation [Conformance]",
    f"{WEBHOOK} should mutate custom resource [Conformance]",
    f"{WEBHOOK} should reject validating webhook configurations with invalid match conditions [Conformance]",
    f"{CONVERSION} should be able to convert from CR v1 to CR v2 [Conformance]",
    f"{FIELD_SELECTORS} MUST list and watch custom resources matching the field selector [Conformance]",
    "[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current "
    "Aggregator [LinuxOnly] [Conformance]",
    f"{SERVICES} should serve a basic endpoint from pods [Conformance]",
    f"{SERVICES} should serve multiport endpoints from pods [Conformance]",
    f"{SERVICES} should be able to create a functioning NodePort service [Conformance]",
    f"{SERVICES} should have session affinity work for service with type clusterIP [LinuxOnly] [Conformance]",
    f"{SERVICES} should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance]",
    f"{SERVICES} should be able to change the type from ExternalName to ClusterIP [Conformance]",
    f"{SERVICES} should serve endpoints on same port and different protocols [Conformance]",
    f"{DNS} should provide DNS for services [Conformance]",
    f"{DNS} should resolve DNS of partial qualified names for services [LinuxOnly] [Conformance]",
    f"{DNS} should provide DNS for ExternalName services [Conformance]",
    f"{DNS} should provide DNS for the cluster [Conformance]",
    f"{DNS} should provide DNS for pods for Hostname [Conformance]",
    f"{DNS} should provide /etc/hosts entries for the cluster [Conformance]",
    f"{POD_NETWORK} should function for intra-pod communication: http [Conformance] [NodeConformance]",
    f"{POD_NETWORK} should function for intra-pod communication: udp [Conformance] [NodeConformance]",
    f"{POD_NETWORK} should function for node-pod communication: http [LinuxOnly] [Conformance] [NodeConformance]",
    f"{POD_NETWORK} should function for node-pod communication: udp [LinuxOnly] [Conformance] [NodeConformance]",
    f"{CONFIGMAP} should be consumable via the environment [Conformance] [NodeConformance]",
]


def go_regex_alternatives(names: list[str]) -> str:
    """A Go regexp (ginkgo's --focus) matching any of the names literally."""
    return "|".join(re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", name) for name in names)


def test_the_focus_matches_each_name_of_the_subset_literally():
    pattern = re.compile(go_regex_alternatives(SUBSET))
    assert all(pattern.search(name) for name in SUBSET)
    assert not pattern.search(f"{SERVICES} should serve a basic endpoint from pods")   # the tag is part of it


def test_the_conformance_subset_passes_on_the_lab(lab, tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("conformance")
    summary = conformance.run_suite(lab.state_dir, report_dir, focus=go_regex_alternatives(SUBSET),
                                    procs=conformance.DEFAULT_PROCS)
    print("\n" + summary.text())
    assert sorted(summary.results) == sorted(SUBSET), "the focus selected other specs than the subset"
    assert not summary.failures, "failed (see e2e.log and junit_01.xml in %s):\n%s" % (
        report_dir, "\n".join(f"{f.name}\n    {f.first_line}" for f in summary.failures))
    assert summary.skipped == 0 and summary.passed == len(SUBSET)
