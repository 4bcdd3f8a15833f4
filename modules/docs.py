#!/usr/bin/env python3
"""Writes each module README's inputs and outputs tables from its variables.tf and outputs.tf.

The tables sit between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` in the README;
everything else in it is written by hand. `python modules/docs.py` rewrites them;
`python modules/docs.py --check` fails when one is out of date (modules/check.py runs it).
Written here rather than taken from terraform-docs, which is a Go binary no registry here
serves. Needs python-hcl2 8 (modules/requirements.txt); checkov's fork, which installs the same
`hcl2` package, gives other shapes.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import hcl2

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


def unquote(text):
    """A string literal's text (a heredoc's too): python-hcl2 keeps literals in their quotes."""
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            text = json.loads(text, strict=False)
        except json.JSONDecodeError:
            text = text[1:-1]
    if isinstance(text, str) and text.startswith("<<"):
        return "\n".join(text.splitlines()[1:-1])
    return text


def expression(value) -> str:
    """An HCL value as python-hcl2 gives it, written back roughly as HCL for a table cell:
    string literals come in their quotes, other expressions bare or as `${...}`."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(expression(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{unquote(k)} = {expression(v)}" for k, v in value.items()) + "}"
    return str(value)


def cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|")


def load(path: Path) -> dict:
    """A .tf file parsed by python-hcl2, or an empty one."""
    if not path.exists():
        return {}
    with path.open() as handle:
        return hcl2.load(handle)


def tables(module: Path) -> str:
    """The inputs and outputs tables of a module."""
    lines = ["## Inputs", "", "| name | description | type | default |", "|---|---|---|---|"]
    for block in load(module / "variables.tf").get("variable", []):
        for name, spec in block.items():
            name = unquote(name)
            required = "default" not in spec
            default = "required" if required else f"`{cell(expression(spec['default']))}`"
            kind = cell(expression(spec.get("type", "any")))
            lines.append(
                f"| `{name}` | {cell(unquote(spec.get('description', '')).strip())} | `{kind}` | {default} |"
            )
    lines += ["", "## Outputs", "", "| name | description |", "|---|---|"]
    for block in load(module / "outputs.tf").get("output", []):
        for name, spec in block.items():
            name = unquote(name)
            lines.append(f"| `{name}` | {cell(unquote(spec.get('description', '')).strip())} |")
    return "\n".join(lines)


def modules(root: Path) -> list[Path]:
    """Every module directory under root whose README carries the markers."""
    found = []
    for readme in sorted(root.rglob("README.md")):
        if ".terraform" in readme.parts:
            continue
        if BEGIN in readme.read_text():
            found.append(readme.parent)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a README is out of date")
    parser.add_argument("--modules", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    stale = []
    for module in modules(Path(args.modules)):
        readme = module / "README.md"
        text = readme.read_text()
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        updated = pattern.sub(lambda _: f"{BEGIN}\n{tables(module)}\n{END}", text)
        if updated != text:
            stale.append(readme)
            if not args.check:
                readme.write_text(updated)
    if args.check and stale:
        for readme in stale:
            print(f"{readme}: the inputs/outputs tables are out of date: run python modules/docs.py")
        return 1
    verb = "out of date" if args.check else "rewritten"
    print(f"docs: {len(stale)} README(s) {verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
