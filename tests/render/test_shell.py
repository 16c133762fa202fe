"""The shell files under cluster/render/sh/: how they are filled in, and that every one of them reaches a script the
other render tests run through shellcheck (they are checked as rendered, markers filled)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.render import shell
from tests.render import sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def template(tmp_path, monkeypatch):
    """A scratch sh/ folder: write(name, text) makes sh/<name>."""
    monkeypatch.setattr(shell, "SH_DIR", tmp_path)
    shell.source.cache_clear()
    yield lambda name, text: (tmp_path / name).write_text(text)
    shell.source.cache_clear()


def test_markers_take_their_values_and_nothing_else_changes(template):
    template("t.sh", 'echo "${tls[@]}" "$@" @NAME@ x@COUNT@s ?(@.type=="Ready")\n')
    assert shell.render("t.sh", NAME="etcd-0", COUNT=5) == 'echo "${tls[@]}" "$@" etcd-0 x5s ?(@.type=="Ready")\n'


def test_a_marker_alone_on_its_line_takes_a_block_indented_as_it_is(template):
    template("t.sh", "if x; then\n    @BODY@\nfi\n@EMPTY@\ndone\n")
    assert shell.render("t.sh", BODY="a\n\nb\n", EMPTY="") == "if x; then\n    a\n\n    b\nfi\ndone\n"


def test_values_are_not_read_again_for_markers(template):
    template("t.sh", "sed 's|@PLACEHOLDER@|x|'\n")
    assert shell.render("t.sh", PLACEHOLDER="@POD_CIDR@") == "sed 's|@POD_CIDR@|x|'\n"


def test_a_missing_or_an_unused_value_is_an_error_naming_the_file_and_the_marker(template):
    template("t.sh", "echo @NAME@\n")
    with pytest.raises(KeyError, match=r"t\.sh: no value for @NAME@"):
        shell.render("t.sh")
    with pytest.raises(KeyError, match=r"t\.sh: no marker for NAMES"):
        shell.render("t.sh", NAME="a", NAMES="b")


def test_scripts_render_the_same_from_any_working_directory(tmp_path):
    program = "from tests.render import sample; import sys; sys.stdout.write(sample.scripts()['restart-services'])"
    here = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert here.returncode == 0, here.stderr
    assert here.stdout == sample.scripts()["restart-services"]


def test_every_shell_file_reaches_a_script_that_shellcheck_checks(monkeypatch):
    read = []
    original = shell.source.__wrapped__
    monkeypatch.setattr(shell, "source", lambda name: read.append(name) or original(name))
    sample.scripts()
    files = {str(p.relative_to(shell.SH_DIR)) for p in shell.SH_DIR.rglob("*.sh")}
    assert files, "no shell files found"
    assert files - set(read) == set(), "shell files no sample script renders (tests/render/sample.py scripts())"
