"""Check 5 flags: the reconcilers binary's help (cached per subcommand), and the walk of
every parsed module for containers whose --flags and env names it checks against it."""
import json
import os
import re
import subprocess

from .common import Result, get, items, mapping, scalar, seq, tf_files

# Variables read outside the subcommand's flags (the platform's, logging, credentials); the
# binary's own (PORT, WORKQUEUE_BUCKET, STORAGE_EMULATOR_HOST...) are checked against its help.
ENV_ALLOWLIST = {"K_SERVICE", "K_REVISION", "RUST_LOG", "GCE_METADATA_HOST", "GITHUB_TOKEN",
                 "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE",
                 "GITHUB_INSTALLATION_ID"}
ENV_PREFIX_ALLOW = "WEBHOOK_SECRET"
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# Container attributes naming env variables (regional_env: per-region values, in these modules).
ENV_ATTRS = ("env", "secret_env", "secret-env", "regional_env", "regional-env")
# In expressions as python-hcl2 8 ({NAME = v}) or bc-python-hcl2 ({'NAME': v}) renders them.
OBJECT_KEY = re.compile(r"""(?<![\w.$])['"]?([A-Z][A-Z0-9_]*)['"]?\s*(?::(?!:)|=(?![=>]))""")
WHOLE_LOCAL = re.compile(r"(?<![\w.])local\.([\w-]+)(?![\w.\[-])")
STRING_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'" r'|"((?:[^"\\]|\\.)*)"')


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


def inline_locals(expr, lcl, depth=0):
    """expr with each `local.NAME` it uses whole replaced by that local's expression (a list's
    items as string literals), so the flags a conditional or a concat() of locals builds are
    seen: every branch's flags are checked."""
    def value_text(m):
        value = scalar(lcl.get(m.group(1)))
        if isinstance(value, list):
            return "[" + ", ".join(json.dumps(scalar(v)) for v in value if isinstance(scalar(v), str)) + "]"
        if isinstance(value, str) and depth < 5:
            return inline_locals(value, lcl, depth + 1)
        return m.group(0)
    return WHOLE_LOCAL.sub(value_text, expr)


def container_args(node, lcl):
    """The args of a dict as a list of strings/values: a list, a local holding one, or the
    string literals of a concat() expression (in order, locals it uses inlined); None when
    there are none."""
    value = resolve(get(node, "args"), lcl)
    if isinstance(expr := scalar(value), str) and expr.startswith("${concat("):
        return [a or b for a, b in STRING_LITERAL.findall(inline_locals(expr, lcl))]
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
