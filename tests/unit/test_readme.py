"""The README's configuration reference lists exactly the settings the program reads."""

import re
from pathlib import Path

from infra.settings import SETTINGS_REFERENCE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_configuration_reference_lists_every_setting_and_no_other():
    section = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.M)
    assert documented == [spec.key for spec in SETTINGS_REFERENCE]


def test_quickstart_names_the_deploy_and_the_test_command():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "pulumi up --stack staging" in quickstart and "pulumi stack init staging" in quickstart
    assert "\n./run-tests\n" in quickstart
