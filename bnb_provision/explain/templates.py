"""Message templates and the linear-time patterns that match them.

A template is a message as its library writes it, with each value it formats in as a
field: ``Configured CUDA binary not found at {cuda_binary_path}``. Its text form is
``str.format``'s (``{{`` and ``}}`` for literal braces); whitespace runs are one space.

:func:`pattern_of` turns a template's *head* (its first sentence, as users paste at least
that much) into a regular expression over lower-cased text: literal words, whitespace
runs of at most 40 characters, and each field a named capture of bounded length whose
character class stops at the text that follows it, so that no capture can trade
characters with the next one. :func:`linear_problem` is the check every pattern the
catalog loads passes: bounded quantifiers only, none nested, no back-references.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "Field",
    "Part",
    "head_of",
    "lead_text",
    "lead_words",
    "linear_problem",
    "literal_text",
    "match_keys",
    "parse_template",
    "pattern_of",
    "pattern_width",
    "pattern_words",
    "render_template",
    "tail_text",
    "words_of",
]

_HEAD_MIN: Final = 24  # literal characters a head has before it may end at a sentence
_HEAD_MAX: Final = 200  # literal characters at most in a head
_WIDE: Final = 120  # a field that may hold spaces (a GPU name) spans at most this much
_TOKEN: Final = 200  # a field without spaces (a path, a version) spans at most this much
_SPACE: Final = r"\s{1,40}"
_WORD_RE: Final = re.compile(r"[a-z0-9_]+")
_NAME_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_BRACES_RE: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_CLOSERS: Final = "'\"`)]}>,;:"
_BANNER_RE: Final = re.compile(r"^\s*([A-Za-z_]{2,12}(?: [A-Za-z_]{2,12})?: )(?=\S)")
_LEAD_CHARS: Final = 40
_MAX_REPEAT_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Field:
    """A value the library formats into its message."""

    name: str


Part = str | Field


def parse_template(text: str) -> tuple[Part, ...]:
    """``"a {x} b"`` -> ``("a ", Field("x"), " b")``. Raises ValueError on bad braces."""
    parts: list[Part] = []
    literal: list[str] = []
    pos = 0
    for m in _BRACES_RE.finditer(text):
        literal.append(text[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in {"{{", "}}"}:
            literal.append(token[0])
        elif m.group(1) is not None and _NAME_RE.fullmatch(m.group(1)):
            parts.extend(["".join(literal)] if "".join(literal) else [])
            literal = []
            parts.append(Field(m.group(1)))
        else:
            raise ValueError(f"bad field {token!r} in template {text!r}")
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


def render_template(parts: tuple[Part, ...]) -> str:
    return "".join(
        f"{{{p.name}}}" if isinstance(p, Field) else p.replace("{", "{{").replace("}", "}}")
        for p in parts
    )


def literal_text(parts: tuple[Part, ...]) -> str:
    return "".join(p for p in parts if isinstance(p, str))


def words_of(text: str) -> list[str]:
    """The words explain indexes text by: runs of ``[a-z0-9_]`` in lower case."""
    return _WORD_RE.findall(text.lower())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[: space if space > 0 else limit]


def head_of(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """The template up to the end of its first sentence that has at least 24 literal
    characters (or its first 200 literal characters)."""
    out: list[Part] = []
    seen = 0
    for part in parts:
        if isinstance(part, Field):
            out.append(part)
            continue
        start = 0
        for m in re.finditer(r"[.!?](?=\s|$)", part):
            if seen + len(part[: m.end()].strip()) >= _HEAD_MIN:
                start = m.end()
                break
        chunk = part[:start] if start else part
        room = _HEAD_MAX - seen
        if len(chunk) > room:
            out.append(_cut(chunk, room))
            return tuple(out)
        out.append(chunk)
        seen += len(chunk.strip())
        if start:
            return tuple(out)
    return tuple(out)


def _whole_words(parts: tuple[Part, ...]) -> list[list[str]]:
    """Each literal part's words that do not touch a field (``sm_{cc}`` is no word)."""
    out: list[list[str]] = []
    for i, part in enumerate(parts):
        if isinstance(part, Field):
            continue
        words = _WORD_RE.findall(part.lower())
        low = part.lower()
        if words and i > 0 and (low[:1].isalnum() or low[:1] == "_"):
            words = words[1:]
        if words and i + 1 < len(parts) and (low[-1:].isalnum() or low[-1:] == "_"):
            words = words[:-1]
        out.append(words)
    return out


def _banner(head: tuple[Part, ...]) -> tuple[str, tuple[Part, ...]]:
    """A short ``WORD:`` / ``TWO WORDS:`` prefix (``CUDA SETUP: ``) and the head without
    it: logs repeat such banners or drop them, so the pattern makes them optional."""
    if head and isinstance(head[0], str):
        m = _BANNER_RE.match(head[0])
        if m:
            return m.group(1), (head[0][m.end() :], *head[1:])
    return "", head


def lead_words(parts: tuple[Part, ...]) -> tuple[str, ...]:
    """The whole words of the message's first phrase (its first literal part with three
    words or more, banner left out), as far as the first 40 characters, at least three:
    a text that holds the message, even cut short, holds these."""
    return _lead_words(head_of(parts))


def _lead_words(head: tuple[Part, ...]) -> tuple[str, ...]:
    for words in _whole_words(_banner(head)[1]):
        if len(words) >= 3:  # noqa: PLR2004 - three words make a phrase
            kept: list[str] = []
            for word in words:
                if len(kept) >= 3 and sum(len(w) + 1 for w in (*kept, word)) > _LEAD_CHARS:  # noqa: PLR2004
                    break
                kept.append(word)
            return tuple(kept)
    return ()


def lead_text(parts: tuple[Part, ...]) -> str:
    """The first literal part with three or more words (banner left out), lower case,
    spaces collapsed: what a text cut short still agrees with."""
    return _lead_text(head_of(parts))


def _lead_text(head: tuple[Part, ...]) -> str:
    for part in _banner(head)[1]:
        if isinstance(part, str) and len(_WORD_RE.findall(part.lower())) >= 3:  # noqa: PLR2004
            return " ".join(part.lower().split())
    return ""


def tail_text(parts: tuple[Part, ...]) -> str:
    """The literal text right after the head, up to the next field, lower case, spaces
    collapsed: how far a text agrees with it tells messages with one head apart."""
    return _tail_text(parts, head_of(parts))


def _tail_text(parts: tuple[Part, ...], head: tuple[Part, ...]) -> str:
    def flat(ps: tuple[Part, ...]) -> str:
        return "".join("\x00" if isinstance(p, Field) else p for p in ps)

    rest = flat(parts)[len(flat(head)) :]
    return " ".join(rest.split("\x00")[0].lower().split())[:200]


def _literal_regex(text: str) -> str:
    pieces = re.split(r"\s+", text.lower())
    return _SPACE.join(re.escape(p) if p else "" for p in pieces)


def _field_regex(name: str | None, after: str, *, wide: bool) -> str:
    """The capture for a field followed by ``after`` (literal text, "" at the end)."""
    if not after or after[0].isspace() or (after[0] == "." and after[1:2] in {"", " ", "."}):
        body = f"[^\\n]{{1,{_WIDE}}}?" if wide and after else f"\\S{{1,{_TOKEN}}}"
    elif after[0] in _CLOSERS:
        body = f"[^\\n{re.escape(after[0])}]{{1,{_TOKEN}}}"
    elif after[0] == ".":
        body = r"[^\s.]{1,40}"
    else:
        body = f"\\S{{1,{_WIDE}}}?"
    return f"(?P<{name}>{body})" if name else f"(?:{body})"


def pattern_of(parts: tuple[Part, ...]) -> str:
    """The regular expression (over lower-cased text) for a template's head. A field the
    head starts with is left out: the head then starts with literal text."""
    banner, trimmed = _banner(head_of(parts))
    head = list(trimmed)
    while head and (isinstance(head[0], Field) or not head[0].strip()):
        head.pop(0)
    if head and isinstance(head[0], str):
        head[0] = head[0].lstrip()
    if head and isinstance(head[-1], str):
        head[-1] = head[-1].rstrip()
    # an optional banner as an alternation with an empty branch: no quantified group
    out: list[str] = [f"(?:{_literal_regex(banner.strip())}\\s{{0,40}}|)"] if banner else []
    named: set[str] = set()
    wide_used = False
    for i, part in enumerate(head):
        if isinstance(part, str):
            out.append(_literal_regex(part) if part.strip() else _SPACE)
            continue
        if i + 1 < len(head) and isinstance(head[i + 1], Field):
            continue  # two fields in a row: the next one captures both
        after = head[i + 1] if i + 1 < len(head) else ""
        assert isinstance(after, str)
        before = head[i - 1] if i else " "
        glued = isinstance(before, str) and before[-1:] and not before[-1:].isspace()
        wide = not wide_used and not glued and bool(after) and after[0].isspace()
        wide_used = wide_used or wide
        name = part.name if part.name not in named else None
        named.add(part.name)
        out.append(_field_regex(name, after, wide=wide))
    return "".join(out)


def _sre_parser() -> Any:
    try:
        return importlib.import_module("re._parser")
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        return importlib.import_module("sre_parse")


def _walk(items: Any, depth: int, sre: Any) -> str | None:
    repeats = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)}
    for op, av in items:
        if op in repeats:
            low, high, sub = av
            if high == sre.MAXREPEAT or high > _MAX_REPEAT_LIMIT:
                return f"an unbounded quantifier ({{{low},}}, * or +)"
            if depth:
                return "a quantifier nested inside another"
            problem = _walk(sub, depth + 1, sre)
        elif op == sre.SUBPATTERN:
            problem = _walk(av[-1], depth, sre)
        elif op == sre.BRANCH:
            problem = next((p for b in av[1] if (p := _walk(b, depth, sre))), None)
        elif op in {sre.ASSERT, sre.ASSERT_NOT}:
            problem = _walk(av[1], depth, sre)
        elif op in {sre.GROUPREF, sre.GROUPREF_EXISTS}:
            problem = "a back-reference"
        else:
            problem = None
        if problem:
            return problem
    return None


def linear_problem(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack super-linearly, or None when it cannot: every
    quantifier bounded (at most 1000), none inside another, no back-references."""
    sre = _sre_parser()
    try:
        parsed = sre.parse(pattern)
    except re.error as exc:
        return f"not a regular expression ({exc})"
    return _walk(parsed, 0, sre)


def pattern_width(pattern: str) -> int:
    """The longest text ``pattern`` can match."""
    _, high = _sre_parser().parse(pattern).getwidth()
    return int(min(high, 1 << 16))


def _top_literals(items: Any, sre: Any) -> list[str | None]:
    """The pattern's top-level sequence as literal characters (None where anything else is)."""
    out: list[str | None] = []
    for op, av in items:
        if op == sre.LITERAL:
            out.append(chr(av))
        elif op == sre.SUBPATTERN and av[-1] is not None:
            out += _top_literals(av[-1], sre)
        else:
            out.append(None)
    return out


def pattern_words(pattern: str) -> tuple[str, ...]:
    """The whole words a text must hold for ``pattern`` to match it: those in the
    pattern's top-level literal runs that no other element touches."""
    sre = _sre_parser()
    chars = _top_literals(sre.parse(pattern), sre)
    words: list[str] = []
    current: list[str] = []
    clean = False  # the current word started right after a non-word literal
    for c in chars:
        if c is not None and (c.isalnum() or c == "_"):
            current.append(c)
            continue
        if current and clean and c is not None:
            words.append("".join(current))
        current = []
        clean = c is not None
    return tuple(w for w in words if w.isascii())


@dataclass(frozen=True, slots=True)
class MatchKeys:
    """What the matcher keeps of a message: its lead words, lead text and tail."""

    lead: tuple[str, ...]
    lead_text: str
    tail: str


def match_keys(parts: tuple[Part, ...]) -> MatchKeys:
    """:func:`lead_words`, :func:`lead_text` and :func:`tail_text` at once."""
    head = head_of(parts)
    return MatchKeys(
        lead=_lead_words(head), lead_text=_lead_text(head), tail=_tail_text(parts, head)
    )
