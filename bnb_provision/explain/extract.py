"""The messages a Python source file can print, read with ``ast`` (nothing is imported).

A message is the text of a ``raise X(...)``, a ``warn(...)``/``warnings.warn(...)``, a
``print(...)``, a logger call (``logger.warning(...)``, ``logging.error(...)``, ...) or
bitsandbytes' ``add_log_entry(...)``. Its text may be a literal, an f-string, ``%`` or
``.format`` formatting, ``+`` concatenation, ``"".join([...])``, or a variable assigned one
of those in the same function (``msg = f"..."; warn(msg)``, ``msg += ...`` included).
Every formatted value becomes a field named after the expression
(``{cuda_binary_path}``); what cannot be read statically becomes a field as well.
"""

from __future__ import annotations

import ast
import itertools
import re
import string
from dataclasses import dataclass
from typing import Final

from bnb_provision.core.text import is_digits
from bnb_provision.explain.templates import Field, Part, literal_text

__all__ = ["Extracted", "extract_messages"]

_LOG_METHODS: Final = frozenset(
    {
        "debug",
        "info",
        "warning",
        "warn",
        "error",
        "exception",
        "critical",
        "fatal",
        "warning_once",
        "info_once",
        "warning_advice",
        "add_log_entry",
    }
)
_VALUE_CALLS: Final = frozenset({"str", "repr", "int", "float", "round", "format", "bool"})
_PERCENT_RE: Final = re.compile(r"%(?:\(\w+\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[sdifrxXeEgGcuo%]")
_LEFTOVER_RE: Final = re.compile(r"(%(?:\(\w+\))?(?:\.\d+)?[sdrif])(?![a-z])")
_MAX_VARIANTS: Final = 8
_MIN_WORDS: Final = 3
_MIN_LETTERS: Final = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class Extracted:
    """One message: how it is emitted (``raise RuntimeError``, ``warn``, ``log.warning``,
    ``print``), its template and the line it is on."""

    call: str
    template: tuple[Part, ...]
    line: int


def _field_name(expr: ast.expr) -> str:
    name = "value"
    if isinstance(expr, ast.Name):
        name = expr.id
    elif isinstance(expr, ast.Attribute):
        chain = [expr.attr]
        base: ast.expr = expr.value
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id not in {"self", "cls"}:
            chain.append(base.id)
        name = "_".join(reversed(chain[:2]))
    elif isinstance(expr, ast.Call):
        func = expr.func
        inner = expr.args[0] if expr.args else None
        if isinstance(func, ast.Name) and func.id in _VALUE_CALLS and inner is not None:
            return _field_name(inner)
        return _field_name(func)
    elif isinstance(expr, ast.Subscript):
        return _field_name(expr.value)
    clean = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "value"
    return clean if clean[0].isalpha() else f"v_{clean}"[:40]


def _joined(pieces: list[Part]) -> tuple[Part, ...]:
    out: list[Part] = []
    for p in pieces:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        elif p != "":
            out.append(p)
    return tuple(out)


def _product(*options: list[tuple[Part, ...]]) -> list[tuple[Part, ...]]:
    combos = itertools.islice(itertools.product(*options), _MAX_VARIANTS)
    return [_joined([p for t in combo for p in t]) for combo in combos]


def _substitute(
    template: tuple[Part, ...], splitter: str, values: list[str], named: dict[str, str]
) -> tuple[Part, ...]:
    """Replace ``%s``-style (splitter "%") or ``{}``-style (splitter "{") specifiers in
    the literal parts with fields named after ``values`` / ``named``."""
    out: list[Part] = []
    queue = iter(values)
    for part in template:
        if isinstance(part, Field):
            out.append(part)
            continue
        if splitter == "%":
            pos = 0
            for m in _PERCENT_RE.finditer(part):
                out.append(part[pos : m.start()])
                pos = m.end()
                named_spec = re.match(r"%\((\w+)\)", m.group(0))
                if m.group(0) == "%%":
                    out.append("%")
                else:
                    out.append(Field(named_spec.group(1) if named_spec else next(queue, "value")))
            out.append(part[pos:])
            continue
        try:
            parsed = list(string.Formatter().parse(part))
        except ValueError:
            out.append(part)
            continue
        for literal, field, _spec, _conv in parsed:
            out.append(literal)
            if field is None:
                continue
            key = field.split(".")[0].split("[")[0]
            if is_digits(key):
                out.append(Field(values[int(key)] if int(key) < len(values) else "value"))
            elif key:
                out.append(Field(named.get(key, _field_name(ast.Name(id=key)))))
            else:
                out.append(Field(next(queue, "value")))
    return _joined(out)


class _Reader:
    """Templates for string expressions, with the assignments of one scope."""

    def __init__(self, assigned: dict[str, list[tuple[Part, ...]]]) -> None:
        self.assigned = assigned

    def templates(self, expr: ast.expr, depth: int = 0) -> list[tuple[Part, ...]]:
        if depth > 6:  # noqa: PLR2004 - deep expressions are read as one value
            return [(Field(_field_name(expr)),)]
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return [(expr.value,)]
        if isinstance(expr, ast.JoinedStr):
            return [self._fstring(expr)]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            return _product(
                self.templates(expr.left, depth + 1), self.templates(expr.right, depth + 1)
            )
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
            right = expr.right.elts if isinstance(expr.right, ast.Tuple) else [expr.right]
            names = [_field_name(e) for e in right]
            return [_substitute(t, "%", names, {}) for t in self.templates(expr.left, depth + 1)]
        if isinstance(expr, ast.Call):
            return self._call(expr, depth)
        if isinstance(expr, ast.IfExp):
            return (self.templates(expr.body, depth + 1) + self.templates(expr.orelse, depth + 1))[
                :_MAX_VARIANTS
            ]
        if isinstance(expr, ast.Name) and expr.id in self.assigned:
            return self.assigned[expr.id][:_MAX_VARIANTS]
        return [(Field(_field_name(expr)),)]

    def _fstring(self, expr: ast.JoinedStr) -> tuple[Part, ...]:
        pieces: list[Part] = []
        for value in expr.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                pieces.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                pieces.append(Field(_field_name(value.value)))
        return _joined(pieces)

    def _call(self, expr: ast.Call, depth: int) -> list[tuple[Part, ...]]:
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            values = [_field_name(a) for a in expr.args]
            named = {k.arg: _field_name(k.value) for k in expr.keywords if k.arg}
            base = self.templates(func.value, depth + 1)
            return [_substitute(t, "{", values, named) for t in base]
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "join"
            and isinstance(func.value, ast.Constant)
            and isinstance(func.value.value, str)
            and expr.args
            and isinstance(expr.args[0], ast.List | ast.Tuple)
        ):
            sep: list[tuple[Part, ...]] = [(func.value.value,)]
            items = [self.templates(e, depth + 1) for e in expr.args[0].elts]
            with_sep = [x for i, t in enumerate(items) for x in ([sep] if i else []) + [t]]
            return _product(*with_sep)
        if isinstance(func, ast.Name) and func.id in _VALUE_CALLS and expr.args:
            return self.templates(expr.args[0], depth + 1)
        return [(Field(_field_name(expr)),)]


def _assignments(scope: ast.AST) -> dict[str, list[tuple[Part, ...]]]:
    """Each name's string values in ``scope``, in source order (``+=`` extends the last)."""
    found: dict[str, list[tuple[Part, ...]]] = {}
    reader = _Reader(found)
    nodes = sorted(
        (n for n in ast.walk(scope) if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for node in nodes:
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        values = reader.templates(node.value)
        if not any(literal_text(v).strip() for v in values):
            continue
        if isinstance(node, ast.AugAssign) and found.get(target.id):
            found[target.id][-1:] = _product(found[target.id][-1:], values)
        else:
            found.setdefault(target.id, []).extend(values)
    return found


def _emitter(node: ast.AST) -> tuple[str, list[ast.expr]] | None:
    """(how, the argument expressions) for a raise or a printing/logging call."""
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
        func = node.exc.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "Exception")
        msg = node.exc.args[:1] or [
            k.value for k in node.exc.keywords if k.arg in {"msg", "message"}
        ]
        return f"raise {name}", msg
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id in {"warn", "print"}:
        return func.id, node.args[:1] if func.id == "warn" else node.args
    if isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS:
        how = "warn" if func.attr == "warn" and _field_name(func.value) == "warnings" else None
        return how or f"log.{func.attr}", node.args
    return None


def _is_message(t: tuple[Part, ...]) -> bool:
    text = literal_text(t)
    return len(re.findall(r"[A-Za-z]{2,}", text)) >= _MIN_WORDS and (
        sum(c.isalnum() for c in text) >= _MIN_LETTERS
    )


def _messages_in(node: ast.AST, reader: _Reader, keep: re.Pattern[str] | None) -> list[Extracted]:
    found = _emitter(node)
    if found is None or not found[1]:
        return []
    how, args = found
    if how.startswith("log.") and len(args) > 1:
        variants = [
            _substitute(t, "%", [_field_name(a) for a in args[1:]], {})
            for t in reader.templates(args[0])
        ]
    elif how == "print":
        space: list[tuple[Part, ...]] = [(" ",)]
        spaced = [
            x for i, a in enumerate(args) for x in ([space] if i else []) + [reader.templates(a)]
        ]
        variants = _product(*spaced)
    else:
        variants = reader.templates(args[0])
    return [
        Extracted(call=how, template=_normalized(t), line=getattr(node, "lineno", 0))
        for t in variants
        if _is_message(t) and (keep is None or keep.search(literal_text(t)))
    ]


def _normalized(t: tuple[Part, ...]) -> tuple[Part, ...]:
    """Whitespace runs made one space, ends stripped, and ``%s``-style specifiers left in
    the text (a logger's own formatting) made fields."""
    pieces: list[Part] = []
    for p in t:
        if isinstance(p, Field):
            pieces.append(p)
            continue
        for i, chunk in enumerate(_LEFTOVER_RE.split(p)):
            pieces.append(Field("value") if i % 2 else chunk)
    parts = [re.sub(r"\s+", " ", p) if isinstance(p, str) else p for p in _joined(pieces)]
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    return _joined(parts)


def extract_messages(source: str, *, keep: re.Pattern[str] | None = None) -> list[Extracted]:
    """Every message in ``source`` (a module's text), in source order; with ``keep``, only
    those whose literal text it matches. Raises SyntaxError for unparsable source."""
    tree = ast.parse(source)
    scopes: list[tuple[ast.AST, _Reader]] = [(tree, _Reader(_assignments(tree)))]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            merged = {**scopes[0][1].assigned, **_assignments(node)}
            scopes.append((node, _Reader(merged)))
    out: list[Extracted] = []
    seen: set[int] = set()
    for scope, reader in reversed(scopes):  # innermost first: its assignments win
        for node in ast.walk(scope):
            if id(node) in seen or not isinstance(node, ast.Raise | ast.Call):
                continue
            seen.add(id(node))
            out.extend(_messages_in(node, reader, keep))
    unique = {(m.line, m.call, m.template): m for m in out}
    return sorted(unique.values(), key=lambda m: (m.line, m.call))
