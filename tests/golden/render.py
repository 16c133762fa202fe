"""What each role of the reference stack receives, as files: the golden files that tests/render/test_golden_files.py
compares with what the program renders now, so that a change to a renderer or to the wiring shows as a diff of what
a node gets.

Two reference stacks: `ec2`, the default 3/3/3 stack (`simulator.program.stack_config()`), and `lab`, the lab's
stack (`locallab.session.lab_config`, with the pinned versions). Each runs under mocks twice: as a first `pulumi up`,
and as an update of that stack once its nodes run (the rolling chains). For one node of each role (and the
deployer's local steps), under tests/golden/<stack>/<node>/:
  files/<path on the node>   every file its steps write, and files.txt with each one's mode and owner;
  steps/<step>.sh            every step's script (files written by it shown as `<file: path>`); a removal step's
                             delete command as steps/<step>.delete.sh;
and tests/golden/<stack>/wiring-<run>.txt: every step of every node with what it waits for.

Key material differs on every run: PEM blocks, embedded base64 credentials and the 32-hex fingerprints derived
from them are masked.

Regenerate after a deliberate change: .venv/bin/python -m tests.golden.render
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
NODES = ("etcd-0", "controller-0", "worker-0")
DEPLOYER = "deployer"
FILE_BLOCK = re.compile(
    r"tmp=\$\(mktemp '?(?P<path>[^' )]+?)\.XXXXXX'?\)\n"
    r"base64 -d > \"\$tmp\" <<'K8S_FROM_SCRATCH_EOF'\n(?P<body>[A-Za-z0-9+/=\n]*?)K8S_FROM_SCRATCH_EOF\n"
    r"chmod (?P<mode>\d+) \"\$tmp\"\nchown '?(?P<owner>[^': ]+)'?: \"\$tmp\"\n")
PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----\n.*?-----END (?P=kind)-----", re.S)
EMBEDDED = re.compile(r'("(?:client-certificate|client-key|certificate-authority)-data": ")[A-Za-z0-9+/=]+(")')
# PEM inside a JSON string (a Secret's stringData), and a CA bundle in base64 (an APIService's caBundle).
PEM_IN_JSON = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----\\n.*?-----END (?P=kind)-----", re.S)
CA_BUNDLE = re.compile(r'("caBundle": ")[A-Za-z0-9+/=]+(")')
FINGERPRINT = re.compile(r"\b[0-9a-f]{32}\b")
# The mocks' public addresses follow the order in which instances register, which varies from run to run.
PUBLIC_ADDRESS = re.compile(r"\b203\.0\.113\.\d+\b")


def mask(text: str) -> str:
    text = PEM.sub(lambda m: f"-----BEGIN {m['kind']}-----\n(masked)\n-----END {m['kind']}-----", text)
    text = PEM_IN_JSON.sub(lambda m: f"-----BEGIN {m['kind']}-----\\n(masked)\\n-----END {m['kind']}-----", text)
    text = EMBEDDED.sub(r"\1(masked)\2", text)
    text = PUBLIC_ADDRESS.sub("<public address>", text)
    text = CA_BUNDLE.sub(r"\1(masked)\2", text)
    return FINGERPRINT.sub("<fingerprint>", text)


def split_files(script: str) -> tuple[str, dict[str, tuple[str, str, str]]]:
    """The script with each embedded file's body replaced by `<file: path>`, and the files by path:
    (content, mode, owner)."""
    files = {}

    def extract(m: re.Match) -> str:
        content = base64.b64decode(m["body"].replace("\n", "")).decode()
        files[m["path"]] = (content, m["mode"], m["owner"])
        return m[0].replace(m["body"], f"<file: {m['path']}>\n")

    return FILE_BLOCK.sub(extract, script), files


def node_of(name: str) -> str | None:
    for node in NODES:
        if name.startswith(f"{node}-"):
            return node
    return None


def steps_of(run) -> list:
    return [r for r in run.resources if r.type in ("command:remote:Command", "command:local:Command")]


def node_tree(run) -> dict[str, str]:
    """relative path -> text for the reference nodes' files and steps."""
    out: dict[str, str] = {}
    index: dict[str, list[str]] = {}
    for r in steps_of(run):
        node = DEPLOYER if r.type == "command:local:Command" else node_of(r.name)
        if node is None:
            continue
        step = r.name if node == DEPLOYER else r.name[len(node) + 1:]
        script, files = split_files(r.inputs.get("stdin", ""))
        out[f"{node}/steps/{step}.sh"] = mask(script)
        if r.inputs.get("delete"):
            out[f"{node}/steps/{step}.delete.sh"] = mask(r.inputs["delete"]) + "\n"
        for path, (content, mode, owner) in files.items():
            out[f"{node}/files{path}"] = mask(content)
            index.setdefault(node, []).append(f"{path} {mode} {owner} (written by {step})")
    for node, lines in index.items():
        out[f"{node}/files.txt"] = "\n".join(sorted(lines)) + "\n"
    return out


def wiring(run) -> str:
    """Every step with what it waits for (explicit dependencies and the resources its inputs come from), and
    what deletes it along."""
    names = {r.urn: r.name for r in run.resources}
    lines = []
    for r in sorted(steps_of(run), key=lambda r: r.name):
        waits = sorted({names.get(u, u.rsplit("::", 1)[-1]) for u in r.dependencies}
                       | {names.get(u, u.rsplit("::", 1)[-1]) for us in r.property_dependencies.values() for u in us})
        lines.append(r.name)
        lines.append(f"  after: {', '.join(waits) or '-'}")
        if r.deleted_with:
            lines.append(f"  deleted with: {names.get(r.deleted_with, r.deleted_with)}")
    return "\n".join(lines) + "\n"


def reference_stacks() -> dict[str, tuple[str, dict]]:
    """name -> (Pulumi stack name, config)."""
    from locallab.session import lab_config
    from simulator.program import stack_config

    return {"ec2": ("dev", stack_config()), "lab": ("lab", lab_config(versions={}, arch="amd64"))}


def public_address_by_private_one(args) -> dict:
    """A public address that follows the node's private one: the mocks otherwise hand them out in the order the
    instances register, which varies from run to run."""
    if args.typ == "aws:ec2/instance:Instance" and args.inputs.get("associatePublicIpAddress"):
        return {"publicIp": "203.0.113." + args.inputs["privateIp"].rsplit(".", 1)[1]}
    return {}


def render_all() -> dict[str, str]:
    from simulator.program import ClusterMocks, run_program

    out = {}
    for name, (stack, config) in reference_stacks().items():
        lab = name == "lab"
        first = run_program(config, stack=stack, mocks=ClusterMocks(extra_outputs=public_address_by_private_one),
                            lab_machines=lab)
        running = run_program(config, stack=stack, mocks=ClusterMocks(extra_outputs=public_address_by_private_one,
                                                                      existing=first), lab_machines=lab)
        tree = node_tree(first)
        tree["wiring-first-up.txt"] = wiring(first)
        tree["wiring-running.txt"] = wiring(running)
        out.update({f"{name}/{rel}": text for rel, text in tree.items()})
    return out


def on_disk() -> dict[str, str]:
    return {str(p.relative_to(GOLDEN)): p.read_text() for p in GOLDEN.rglob("*")
            if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts}


def write(tree: dict[str, str]) -> None:
    for entry in GOLDEN.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            shutil.rmtree(entry)
        elif entry.is_file() and entry.suffix != ".py":
            entry.unlink()
    for rel, text in tree.items():
        path = GOLDEN / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    tree = render_all()
    write(tree)
    print(f"wrote {len(tree)} golden files under {GOLDEN}", file=sys.stderr)
