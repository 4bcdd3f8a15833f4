"""Check 3 refs: var./local. references against the declarations of their module dir."""
import re

from .common import Result, items, tf_files

HEREDOC = re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\n")
REF = re.compile(r'(?<![\w.])(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)')


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
