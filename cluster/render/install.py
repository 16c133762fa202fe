"""The script that fetches one pinned artifact, verifies it and installs what it holds."""

from __future__ import annotations

import shlex

from cluster.render.common import BIN_DIR, CACHE_DIR
from cluster.versions import Artifact


def install_artifact_script(artifact: Artifact) -> str:
    """Idempotent: a verified copy in the cache is not fetched again; a file is replaced only when it differs.
    A checksum mismatch stops the step naming the file, the expected and the actual sum, and installs nothing."""
    cached = f"{CACHE_DIR}/{artifact.filename}"
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"# Install {artifact.component} {artifact.version} from {artifact.url}",
        "set -euo pipefail",
        f"url={q(artifact.url)}",
        f"file={q(cached)}",
        f"want={q(artifact.digest)}",
        f"install -d -m 0755 {q(CACHE_DIR)}",
        f"sum() {{ {artifact.algorithm}sum \"$1\" | cut -d' ' -f1; }}",
        'if [ ! -f "$file" ] || [ "$(sum "$file")" != "$want" ]; then',
        # Bounded: 15 s to connect, 15 minutes in all, retried on any error: a stalled mirror cannot hang the step.
        '  curl --fail --silent --show-error --location --connect-timeout 15 --max-time 900 \\',
        '    --retry 5 --retry-delay 3 --retry-all-errors --output "$file.part" "$url"',
        '  got=$(sum "$file.part")',
        '  if [ "$got" != "$want" ]; then',
        # The file name only: the URL may hold a mirror's credentials, and pulumi-command puts a failed step's
        # output into its error, logging off or not (commandOutputs.go).
        f'    echo "checksum mismatch for {artifact.filename}: expected {artifact.algorithm} $want, got $got" >&2',
        '    rm -f "$file.part"',
        "    exit 1",
        "  fi",
        '  mv -f "$file.part" "$file"',
        "fi",
    ]
    archive = any(src for src, _ in artifact.installs)
    if archive:
        lines += ['work=$(mktemp -d)', 'trap \'rm -rf "$work"\' EXIT',
                  'tar -xzf "$file" -C "$work" ' + " ".join(q(src) for src, _ in artifact.installs)]
    for src, dest in artifact.installs:
        target = dest if dest.startswith("/") else f"{BIN_DIR}/{dest}"
        source = f'"$work"/{q(src)}' if src else '"$file"'
        lines += [
            f"install -d -m 0755 {q(target.rsplit('/', 1)[0])}",
            f"if ! cmp -s {source} {q(target)}; then",
            f"  install -m 0755 {source} {q(target)}.new && mv -f {q(target)}.new {q(target)}",
            f"  echo \"installed {target}\"",
            "fi",
        ]
    return "\n".join(lines) + "\n"
