"""The curated half of explain's knowledge (``compat_db/explain.toml``), read and checked.

* ``[[cause]]``: what explain names: a category, a severity, a title, an explanation and a
  fix, each a list of variants: the first whose ``{placeholders}`` the text's facts fill
  is used, and the last variant has none, so a fix never reaches the user with a hole;
* ``[[message]]``: catalog messages (a library, and words their template contains) ->
  causes with a weight, and which of the message's fields are facts;
* ``[[signature]]``: patterns for texts no single library owns (the dynamic loader, the
  CUDA runtime, compiled extensions, pip) -> causes;
* ``[[context]]``: facts that point at a cause on their own (an old bitsandbytes on
  Windows);
* ``[[extension]]``: compiled extension modules -> the stack that ships them.

Every row has its public ``source``; hand-curated rows their ``checked`` date. A bad row
is a :class:`CompatDBError` that gives its path (``explain.toml: cause[3].fix[1]: ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.db import values
from bnb_provision.errors import CompatDBError
from bnb_provision.explain.names import ALWAYS, CONVERSIONS, DERIVED, FACTS
from bnb_provision.explain.templates import linear_problem
from bnb_provision.vocab import SEVERITIES, Category, Severity

__all__ = [
    "Cause",
    "CauseRef",
    "Context",
    "Curated",
    "Extension",
    "MessageRule",
    "Signature",
    "parse_curated",
]

_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PLACEHOLDER_RE: Final = re.compile(r"\{([a-z_]+)\}")  # other braces are literal text
# words that only ever stand for a value someone has to fill in
_HOLES_RE: Final = re.compile(r"\bX\.Y\b|\bN\.N\b|<[a-z _-]+>|\b(?:VERSION|PATH|FILE)\b")
_MAX_WEIGHT: Final = 5


@dataclass(frozen=True, kw_only=True, slots=True)
class Cause:
    id: str
    category: Category
    severity: Severity
    title: tuple[str, ...]
    explanation: tuple[str, ...]
    fix: tuple[str, ...]
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CauseRef:
    id: str
    weight: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageRule:
    library: str
    contains: tuple[str, ...]
    causes: tuple[CauseRef, ...]
    facts: tuple[tuple[str, str, str], ...]  # (field, fact, conversion)
    when: tuple[tuple[str, tuple[str, ...]], ...]
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Signature:
    id: str
    pattern: str
    causes: tuple[CauseRef, ...]
    facts: tuple[tuple[str, str, str], ...]  # (group, fact, conversion)
    when: tuple[tuple[str, tuple[str, ...]], ...]
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    id: str
    when: tuple[tuple[str, tuple[str, ...]], ...]
    causes: tuple[CauseRef, ...]
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Extension:
    names: tuple[str, ...]
    packages: tuple[str, ...]
    stack: str
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Curated:
    causes: dict[str, Cause]
    rules: tuple[MessageRule, ...]
    signatures: tuple[Signature, ...]
    contexts: tuple[Context, ...]
    extensions: tuple[Extension, ...]


def _source(f: Fields) -> str:
    src = str(f.text("source"))
    f.check(src.startswith("https://"), "source", f"expected a public https URL, got {src!r}")
    return src


def _checked(f: Fields) -> str:
    d = str(f.text("checked"))
    f.check(bool(_DATE_RE.match(d)), "checked", f"expected a date YYYY-MM-DD, got {d!r}")
    return d


def _variants(f: Fields, key: str) -> tuple[str, ...]:
    """A text with variants: a string, or a list whose last item has no placeholder."""
    raw = f.data.get(key)
    items = f.str_list(key) if isinstance(raw, list) else [f.text(key)]
    f.check(bool(items), key, "give at least one text")
    for i, text in enumerate(items):
        where = f"{key}[{i}]" if isinstance(raw, list) else key
        for name in _PLACEHOLDER_RE.findall(text):
            if name not in FACTS and name not in DERIVED:
                raise FieldError(
                    f"{f.sub(where)}: unknown placeholder {{{name}}} (known here: the facts "
                    "and derived values of bnb_provision/explain/names.py)"
                )
        hole = _HOLES_RE.search(text)
        f.check(hole is None, where, f"{hole.group(0) if hole else ''!r} is a hole, not a value")
    f.check(
        set(_PLACEHOLDER_RE.findall(items[-1])) <= ALWAYS,
        key,
        "the last variant must have no {placeholder} (plan_command aside): it is what explain "
        "says when no fact is known",
    )
    return tuple(items)


def _refs(f: Fields, causes: set[str]) -> tuple[CauseRef, ...]:
    out = []
    for r in f.tables("causes"):
        ref = CauseRef(id=r.text("id"), weight=r.integer("weight"))
        r.check(ref.id in causes, "id", f"no [[cause]] has id {ref.id!r}")
        r.check(1 <= ref.weight <= _MAX_WEIGHT, "weight", f"expected 1 to {_MAX_WEIGHT}")
        r.done()
        out.append(ref)
    f.check(bool(out), "causes", "name at least one cause")
    return tuple(out)


def _fact_map(f: Fields, key: str) -> tuple[tuple[str, str, str], ...]:
    """``{field = "fact:conversion"}`` or ``{field = ["fact:conversion", ...]}``."""
    table = f.table(key, {})
    assert table is not None
    out = []
    for name in list(table.data):
        raw = table.data[name]
        targets = table.str_list(name) if isinstance(raw, list) else [table.text(name)]
        for target in targets:
            fact, _, conv = target.partition(":")
            conv = conv or "text"
            table.check(fact in FACTS, name, f"unknown fact {fact!r} (see names.py FACTS)")
            table.check(conv in CONVERSIONS, name, f"unknown conversion {conv!r}")
            out.append((name, fact, conv))
    return tuple(out)


def _when(f: Fields) -> tuple[tuple[str, tuple[str, ...]], ...]:
    table = f.table("when", {})
    assert table is not None
    out = []
    for name in list(table.data):
        table.check(name in FACTS, name, f"unknown fact {name!r} (see names.py FACTS)")
        value = table.data[name]
        values = table.str_list(name) if isinstance(value, list) else [table.text(name)]
        out.append((name, tuple(values)))
    return tuple(out)


def _cause(r: Fields) -> Cause:
    return Cause(
        id=r.text("id"),
        category=values.category(r, "category"),
        severity=values.choice(r, "severity", SEVERITIES, "severity"),
        title=_variants(r, "title"),
        explanation=_variants(r, "explanation"),
        fix=_variants(r, "fix"),
        source=_source(r),
        checked=_checked(r),
    )


def _signature(r: Fields, causes: set[str], *, deep: bool) -> Signature:
    sig = Signature(
        id=r.text("id"),
        pattern=r.text("pattern"),
        causes=_refs(r, causes),
        facts=_fact_map(r, "facts"),
        when=_when(r),
        source=_source(r),
        checked=_checked(r),
    )
    problem = linear_problem(sig.pattern) if deep else None
    r.check(problem is None, "pattern", f"{problem}: patterns must match in linear time")
    r.check(
        not re.search(r"[A-Z]", re.sub(r"\\[A-Za-z]|\(\?P[<=]", "", sig.pattern)),
        "pattern",
        "write it in lower case: explain matches lower-cased text",
    )
    if deep:
        groups = set(re.compile(sig.pattern).groupindex)
        for group, _fact, _conv in sig.facts:
            r.check(group in groups, "facts", f"the pattern has no group named {group!r}")
    return sig


def _rows(doc: Fields, key: str, make: Any) -> tuple[Any, ...]:
    out = []
    for row in doc.tables(key, []):
        out.append(make(row))
        row.done()
    return tuple(out)


def parse_curated(
    data: dict[str, Any], name: str = "explain.toml", *, deep: bool = True
) -> Curated:
    """Typed, checked curated rows. Raises :class:`CompatDBError` with the bad path.
    ``deep=False`` skips the linear-time check of the patterns (data that passed it)."""
    try:
        doc = Fields(data, "")
        cause_rows = _rows(doc, "cause", _cause)
        causes = {c.id: c for c in cause_rows}
        if len(causes) != len(cause_rows):
            raise FieldError("cause: two rows share an id")
        ids = set(causes)
        rules = _rows(
            doc,
            "message",
            lambda r: MessageRule(
                library=r.text("library"),
                contains=tuple(r.str_list("contains")),
                causes=_refs(r, ids),
                facts=_fact_map(r, "facts"),
                when=_when(r),
                source=_source(r),
                checked=_checked(r),
            ),
        )
        signatures = _rows(doc, "signature", lambda r: _signature(r, ids, deep=deep))
        contexts = _rows(
            doc,
            "context",
            lambda r: Context(
                id=r.text("id"),
                when=_when(r),
                causes=_refs(r, ids),
                source=_source(r),
                checked=_checked(r),
            ),
        )
        extensions = _rows(
            doc,
            "extension",
            lambda r: Extension(
                names=tuple(r.str_list("names")),
                packages=tuple(r.str_list("packages", [])),
                stack=r.text("stack"),
                source=_source(r),
            ),
        )
        doc.done()
    except FieldError as exc:
        raise CompatDBError(f"{name}: {exc}") from None
    return Curated(
        causes=causes,
        rules=rules,
        signatures=signatures,
        contexts=contexts,
        extensions=extensions,
    )
