"""The files each role receives, compared with the reviewed golden files under tests/golden/ (see its render.py).
A renderer or wiring change shows here as a diff of what a node gets; after a deliberate one, regenerate them with
`.venv/bin/python -m tests.golden.render` and commit the diff with the change."""

from __future__ import annotations

import difflib

from tests.golden.render import on_disk, render_all


def test_what_each_role_receives_matches_the_golden_files():
    now, golden = render_all(), on_disk()
    problems = []
    for rel in sorted(golden.keys() - now.keys()):
        problems.append(f"no longer rendered: {rel}")
    for rel in sorted(now.keys() - golden.keys()):
        problems.append(f"new, not in the golden files: {rel}")
    for rel in sorted(now.keys() & golden.keys()):
        if now[rel] != golden[rel]:
            diff = difflib.unified_diff(golden[rel].splitlines(), now[rel].splitlines(),
                                        f"golden/{rel}", f"rendered/{rel}", lineterm="", n=2)
            problems.append("\n".join(list(diff)[:40]))
    assert not problems, ("what the nodes receive changed (regenerate with `.venv/bin/python -m tests.golden.render` "
                          "if it is deliberate):\n" + "\n".join(problems))
