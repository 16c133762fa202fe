"""The layout's two boundaries, checked on the source: renderers never import pulumi, and nothing outside tests/
imports the tests (the lab and the benches run the program through simulator/, never through test code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM_SIDE = ("__main__.py", "infra", "cluster", "locallab", "bench", "simulator")


def python_files(*tops: str) -> list[Path]:
    files = []
    for top in tops:
        path = ROOT / top
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", python_files(*PROGRAM_SIDE), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_program_side_never_imports_the_tests(path):
    offending = {m for m in imported_modules(path) if m == "tests" or m.startswith("tests.")}
    assert not offending, f"{path.relative_to(ROOT)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", python_files("cluster/render"), ids=lambda p: str(p.relative_to(ROOT)))
def test_renderers_never_import_pulumi(path):
    offending = {m for m in imported_modules(path) if m.split(".")[0].startswith("pulumi")}
    assert not offending, f"{path.relative_to(ROOT)} imports {sorted(offending)}: renderers stay pure"
