"""Check 9 calls: each call of a local module gives only variables the module declares and
every one it requires, each literal value fits its variable's type (types.py), and each
module.NAME.OUTPUT reference names an output the called module declares (terraform validate
would say so, but needs the providers)."""
import re

import hcl2

from .common import Result, get, items, scalar, tf_files
from .refs import code_only
from .types import misfits, parse_type

# Arguments of a module block that are not the module's variables.
META = {"source", "version", "count", "for_each", "providers", "depends_on"}
MODULE_REF = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([A-Za-z_][\w-]*)")


def interface(target, parsed):
    """A module dir's variables (name => whether it has a default), their type constraints
    (name => the parsed `type`, when it has one), and output names."""
    variables, types, outputs = {}, {}, set()
    for f in tf_files(target):
        data = parsed.get(f) or {}
        for block in data.get("variable", []):
            for name, spec in items(block):
                variables[name] = "default" in dict(items(spec))
                if (text := scalar(get(spec, "type"))) is not None:
                    types[name] = text
        for block in data.get("output", []):
            outputs.update(name for name, _ in items(block))
    return variables, types, outputs


def check_calls(dirs, parsed, shown):
    """Check 9: the arguments of local module calls, and the outputs referenced of them."""
    res, ncalls, nrefs, ntyped = Result("calls"), 0, 0, 0
    for d in dirs:
        called = {}  # module name in d => the target's outputs
        for f in tf_files(d):
            for block in (parsed.get(f) or {}).get("module", []):
                for name, spec in items(block):
                    source = scalar(get(spec, "source"))
                    if not (isinstance(source, str) and source.startswith(("./", "../"))):
                        continue
                    target = (d / source).resolve()
                    if not target.is_dir() or not tf_files(target):
                        continue  # the load check reports a missing module
                    ncalls += 1
                    variables, types, outputs = interface(target, parsed_of(target, parsed))
                    called[name] = outputs
                    given = {key for key, _ in items(spec)} - META
                    for key, value in items(spec):
                        if key in META or key not in types:
                            continue
                        try:
                            typ = parse_type(types[key])
                        except (ValueError, IndexError) as e:
                            res.warnings.append(f"{source}: the type of {key} was not read ({e}); not checked")
                            continue
                        ntyped += 1
                        res.errors += misfits(value, typ, f"{shown(f)}: module {name}: {key}")
                    for key in sorted(given - set(variables)):
                        res.errors.append(f"{shown(f)}: module {name}: {key} is not a variable of {source}")
                    for key in sorted(v for v, has_default in variables.items()
                                      if not has_default and v not in given):
                        res.errors.append(f"{shown(f)}: module {name}: the required {key} of {source} is not given")
        for f in tf_files(d):
            text = code_only(f.read_text(encoding="utf-8"))
            for m in MODULE_REF.finditer(text):
                name, output = m.groups()
                if name not in called:
                    continue  # a registry module, or one the load check reports
                nrefs += 1
                if output not in called[name]:
                    line = text.count("\n", 0, m.start()) + 1
                    res.errors.append(f"{shown(f)}:{line}: module.{name}.{output}: no such output of module {name}")
    res.summary = f"{ncalls} module calls ({ntyped} typed arguments) and {nrefs} output references checked"
    return res


def parsed_of(target, parsed):
    """The parsed files of target: from the shared parse when it covered them, else parsed now."""
    if all(f in parsed for f in tf_files(target)):
        return parsed
    extra = dict(parsed)  # a module outside the checked tree (a fixture calling up, say)
    for f in tf_files(target):
        with open(f, encoding="utf-8") as fp:
            extra[f] = hcl2.load(fp)
    return extra
