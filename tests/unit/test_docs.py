"""The README and docs/ agree with the code and with each other: the README fits on a screen and every link it
and the docs hold resolves; the configuration reference is what infra/settings.py renders; the Quickstart's stack
is the one its teardown removes; every file the README writes into the checkout is ignored by git. (The AWS
permissions: test_deployer_policy.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from infra.settings import SETTINGS_REFERENCE
from simulator import docs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a file's headings: lowercased, punctuation dropped, spaces to hyphens."""
    found, fenced = set(), False
    for line in markdown.splitlines():
        fenced ^= line.startswith("```")
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not fenced:
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


def local_links(markdown: str) -> list[str]:
    body = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [target for target in LINK.findall(body) if not re.match(r"[a-z]+:", target)]


def test_the_readme_fits_on_a_screen():
    assert len(README.splitlines()) <= 300


def test_every_docs_page_the_readme_links_exists_and_every_docs_page_is_linked():
    linked = {t.split("#")[0] for t in local_links(README) if t.startswith("docs/")}
    assert linked, "the README links into docs/"
    for target in linked:
        assert (ROOT / target).exists(), f"README links {target}, which does not exist"
    assert {f"docs/{p.name}" for p in DOCS} <= linked, "a docs page the README does not link"


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_and_anchor_resolves(page):
    for target in local_links(page.read_text()):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name} links {target}: no file {path}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text()), f"{page.name} links {target}: no heading #{anchor}"


def test_the_configuration_reference_is_rendered_from_the_settings():
    current = docs.CONFIGURATION.read_text()
    assert current == docs.configuration_doc(current), "regenerate it: python -m simulator.docs"
    table = current.split(docs.TABLE_START, 1)[1].split(docs.TABLE_END, 1)[0]
    documented = re.findall(r"^\| `([A-Za-z]+)` \|", table, flags=re.M)
    assert documented == [spec.key for spec in SETTINGS_REFERENCE]


def test_the_quickstart_tears_down_the_stack_it_made():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    made = re.findall(r"pulumi stack init (\S+)", quickstart)
    used = set(re.findall(r"--stack (\S+)", quickstart)) | set(re.findall(r"pulumi stack rm (\S+)", quickstart))
    assert made and used == set(made), f"the Quickstart makes {made} and then uses {used}"
    assert f"pulumi destroy --stack {made[0]}" in quickstart and f"pulumi stack rm {made[0]}" in quickstart


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: nothing to ignore files from")
def test_every_file_the_readme_writes_into_the_checkout_is_ignored_by_git():
    written = {path for path in re.findall(r"(?:>|--file)\s+([\w.~/-]+)", README)
               if not path.startswith(("~", "/"))}
    assert {"kubeconfig", "staging-state.json"} <= written, written
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert set(ignored) == written, f"not ignored: {written - set(ignored)}"
