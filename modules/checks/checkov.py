"""Check 4 checkov: checkov (terraform framework, offline) with no FAILED check, and the
bucket checks PASSED on every google_storage_bucket."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .common import FIXTURES, Result, items, mapping

BUCKET_CHECKS = ("CKV_GCP_29", "CKV_GCP_114")
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
               "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}


def run_checkov(root):
    """Run checkov (terraform framework, offline) on root; return its parsed JSON reports.

    checkov runs under $CHECKOV_PYTHON when set: it pins a fork of python-hcl2 that installs
    the same `hcl2` package, so it lives in a virtualenv of its own (scripts/test makes it).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API", "PRISMA_"))} | CHECKOV_ENV
    python = os.environ.get("CHECKOV_PYTHON") or sys.executable
    cmd = [python, "-m", "checkov.main", "-d", str(root), "--framework", "terraform",
           "-o", "json", "--skip-download", "--download-external-modules", "false",
           "--skip-path", f"(^|/){FIXTURES}(/|$)"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=110)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"checkov exited {proc.returncode} without JSON:\n{proc.stderr[-2000:]}")
    return out if isinstance(out, list) else [out]


def check_checkov(root, parsed, shown):
    """Check 4: no checkov check FAILED; every bucket has CKV_GCP_29 and CKV_GCP_114 PASSED."""
    res = Result("checkov")
    try:
        reports = run_checkov(root)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        res.errors.append(str(exc))
        res.summary = "checkov did not run"
        return res
    results = {k: [x for r in reports for x in r.get("results", {}).get(k, [])]
               for k in ("passed_checks", "failed_checks", "skipped_checks", "parsing_errors")}

    def where(c):
        caller = f" (module called from {c['caller_file_path'].lstrip('/')})" if c.get("caller_file_path") else ""
        lines = "-".join(map(str, c.get("file_line_range") or []))
        return f"{shown(Path(c['file_abs_path']))}:{lines}: {c['resource']}{caller}"

    res.errors += [f"{shown(Path(p))}: checkov cannot parse it" for p in results["parsing_errors"]]
    res.errors += [f"{where(c)}: {c['check_id']} FAILED: {c['check_name']}" for c in results["failed_checks"]]
    res.notes += [f"{where(c)}: {c['check_id']} skipped: {c['check_result'].get('suppress_comment') or '(no reason)'}"
                  for c in results["skipped_checks"]]
    evaluated = results["passed_checks"] + results["failed_checks"] + results["skipped_checks"]
    buckets = [(f, name) for f, data in parsed.items() for block in data.get("resource", [])
               for rtype, body in items(block) if rtype == "google_storage_bucket"
               for name, _ in items(mapping(body) or {})]
    for (f, name), check in ((b, c) for b in buckets for c in BUCKET_CHECKS):
        addr = re.compile(rf"(^|\.)google_storage_bucket\.{re.escape(name)}(\[[^\]]*\])?$")
        got = {c["check_result"]["result"] for c in evaluated if c["check_id"] == check and addr.search(c["resource"])
               and os.path.realpath(c["file_abs_path"]) == os.path.realpath(f)}
        if got != {"PASSED"}:
            res.errors.append(f"{shown(f)}: google_storage_bucket.{name}: {check} must be evaluated and PASSED, "
                              f"got {'/'.join(sorted(got)) or 'not evaluated'}")
    res.summary = (f"{len(results['passed_checks'])} passed, {len(results['failed_checks'])} failed, "
                   f"{len(results['skipped_checks'])} skipped; {len(buckets)} buckets need {'+'.join(BUCKET_CHECKS)}")
    return res
