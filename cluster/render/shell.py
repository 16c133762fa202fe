"""Shell scripts kept as files under cluster/render/sh/, filled in with finished values.

A script file holds `@NAME@` markers where values go and nothing else is touched, so what a node runs is the file as
written (no brace doubling, no escapes). A marker alone on its line takes a block of lines, each indented as the
marker is; a block may be empty, and then the line goes. Shared pieces (sh/lib/) are rendered the same way and
passed in as blocks. Templates substitute, Python computes: no conditionals or loops live here.

Every marker must get a value and every value must fill a marker, so a misspelt name fails when the program renders
the script, not on a node.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

SH_DIR = Path(__file__).resolve().parent / "sh"
MARKER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
BLOCK = re.compile(r"^(?P<indent>[ \t]*)@(?P<name>[A-Z][A-Z0-9_]*)@$")


@functools.cache
def source(name: str) -> str:
    """The text of sh/<name>, read once."""
    return (SH_DIR / name).read_text()


def render(name: str, **values: object) -> str:
    """sh/<name> with every @MARKER@ replaced by values[MARKER] (str() of it)."""
    used: set[str] = set()

    def value(marker: str) -> str:
        if marker not in values:
            raise KeyError(f"{name}: no value for @{marker}@ (given: {', '.join(sorted(values)) or 'none'})")
        used.add(marker)
        return str(values[marker])

    out = []
    for line in source(name).splitlines(keepends=True):
        block = BLOCK.match(line.rstrip("\n"))
        if block:
            indent = block["indent"]
            lines = value(block["name"]).split("\n")
            if lines[-1] == "":
                lines.pop()      # the block's own final newline
            out += [f"{indent}{text}\n" if text else "\n" for text in lines]
        else:
            out.append(MARKER.sub(lambda m: value(m[1]), line))
    unused = set(values) - used
    if unused:
        raise KeyError(f"{name}: no marker for {', '.join(sorted(unused))}")
    return "".join(out)
