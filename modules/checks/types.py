"""Terraform type constraints, for check 9 (calls): a variable's `type` parsed, and whether a
literal value given to it fits, as Terraform would convert it, with one strictness more: an
object attribute the type does not declare is reported (Terraform drops it silently, which
hides a misspelt argument). Expressions and templates (anything holding `${`) are not known
offline and always fit; so does null (a variable's nullability is not checked) and anything
given to `any`."""
import re

from .common import items, unq

TOKEN = re.compile(r'\s*(?:([A-Za-z_][\w-]*)|(\()|(\))|(\{)|(\})|(=)|(,)|("(?:[^"\\]|\\.)*")|(\[)|(\])|([^\s]))')


class Type:
    """A type: kind (string, number, bool, any, list, set, map, object, tuple), its element
    type or attributes (name => (type, optional)), or its tuple items."""

    def __init__(self, kind, elem=None, attrs=None, items_=None):
        self.kind, self.elem, self.attrs, self.items = kind, elem, attrs or {}, items_ or []

    def __repr__(self):
        if self.kind in ("list", "set", "map"):
            return f"{self.kind}({self.elem!r})"
        if self.kind == "object":
            inner = ", ".join(f"{n} = {'optional(' if opt else ''}{t!r}{')' if opt else ''}"
                              for n, (t, opt) in self.attrs.items())
            return f"object({{{inner}}})"
        return self.kind


def parse_type(text):
    """Parse a type constraint (`${map(object({a = string}))}` as python-hcl2 gives it)."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    tokens = [t for t in TOKEN.findall(text)]
    flat = [next(x for x in t if x) for t in tokens]
    pos = 0

    def skip_value():
        """Skip an optional() default: any expression up to the `)` that closes optional()."""
        nonlocal pos
        depth = 0
        while pos < len(flat):
            tok = flat[pos]
            if tok in "({[":
                depth += 1
            elif tok in ")}]":
                if depth == 0:
                    return
                depth -= 1
            pos += 1

    def expect(tok):
        nonlocal pos
        if pos >= len(flat) or flat[pos] != tok:
            raise ValueError(f"expected {tok!r} at token {pos} of {text!r}")
        pos += 1

    def one():
        nonlocal pos
        name = flat[pos]
        pos += 1
        if name in ("string", "number", "bool", "any"):
            return Type(name)
        if name in ("list", "set", "map"):
            expect("(")
            elem = one()
            expect(")")
            return Type(name, elem=elem)
        if name == "object":
            expect("(")
            expect("{")
            attrs = {}
            while flat[pos] != "}":
                attr = unq(flat[pos])
                pos += 1
                expect("=")
                if flat[pos] == "optional":
                    pos += 1
                    expect("(")
                    attrs[attr] = (one(), True)
                    if flat[pos] == ",":
                        pos += 1
                        skip_value()
                    expect(")")
                else:
                    attrs[attr] = (one(), False)
                if flat[pos] == ",":
                    pos += 1
            expect("}")
            expect(")")
            return Type("object", attrs=attrs)
        if name == "tuple":
            expect("(")
            expect("[")
            elems = []
            while flat[pos] != "]":
                elems.append(one())
                if flat[pos] == ",":
                    pos += 1
            expect("]")
            expect(")")
            return Type("tuple", items_=elems)
        raise ValueError(f"unknown type {name!r} in {text!r}")

    return one()


def is_expression(value):
    """Whether a parsed value is an expression or a template (unknown offline) rather than a
    literal."""
    return isinstance(value, str) and "${" in value


def misfits(value, typ, where):
    """Why `value` does not fit `typ` (messages naming `where`); empty when it fits."""
    if typ.kind == "any" or value is None or is_expression(value):
        return []
    if typ.kind == "string":
        ok = isinstance(value, (str, int, float, bool))
    elif typ.kind == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", unq(value)) is not None)
    elif typ.kind == "bool":
        ok = isinstance(value, bool) or unq(value) in ("true", "false")
    elif typ.kind in ("list", "set"):
        if not isinstance(value, list):
            return [f"{where}: a {typ.kind} is needed ({typ!r}), not {short(value)}"]
        return [m for i, v in enumerate(value) for m in misfits(v, typ.elem, f"{where}[{i}]")]
    elif typ.kind == "tuple":
        if not isinstance(value, list) or len(value) != len(typ.items):
            return [f"{where}: a tuple of {len(typ.items)} is needed, not {short(value)}"]
        return [m for i, (v, t) in enumerate(zip(value, typ.items)) for m in misfits(v, t, f"{where}[{i}]")]
    elif typ.kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: a map is needed ({typ!r}), not {short(value)}"]
        return [m for k, v in items(value) for m in misfits(v, typ.elem, f"{where}[{k!r}]")]
    elif typ.kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: an object is needed ({typ!r}), not {short(value)}"]
        given = dict(items(value))
        found = [f"{where}: {k} is not an attribute of {typ!r}" for k in given if k not in typ.attrs]
        found += [f"{where}: the required attribute {k} is not given" for k, (_, opt) in typ.attrs.items()
                  if not opt and k not in given]
        return found + [m for k, v in given.items() if k in typ.attrs
                        for m in misfits(v, typ.attrs[k][0], f"{where}.{k}")]
    else:
        ok = True
    return [] if ok else [f"{where}: a {typ.kind} is needed, not {short(value)}"]


def short(value):
    """A value, shortened for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
