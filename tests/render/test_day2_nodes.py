"""Issue 18 (second review, N3-N18): what the nodes receive for day 2, one test per finding that a rendered file can
show. The findings the lab or a namespace can run are tested there (tests/integration)."""

from __future__ import annotations

from pathlib import Path

from cluster.render import control_plane
from tests.render import sample

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_n18_the_controller_manager_is_not_told_about_cloud_routes_it_has_no_cloud_provider_for():
    flags = dict(control_plane.controller_manager_flags(sample.control_plane_inputs()))
    assert "configure-cloud-routes" not in flags
    assert "cloud-provider" not in flags


def test_n18_the_readme_says_which_instances_hold_an_iam_role():
    instances = README.split("### Instances", 1)[1].split("\n#", 1)[0]
    assert "No instance has an IAM role" not in instances
    assert "etcdSnapshots.s3" in instances
