"""Running patterns over a prepared text, fast and in linear time.

A pattern runs only when every word it requires is among the text's words; then only in
windows around the occurrences of its anchor (its longest required word), each window as
wide as the longest text the pattern can match on either side. A message cut short by the
paste (``requires the latest v``) is a *partial* hit: its line ends while still agreeing
with the message's first words, for at least 24 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bnb_provision.explain.templates import pattern_width
from bnb_provision.explain.text import Prepared

__all__ = ["Match", "find", "required_words"]

_MAX_OCCURRENCES: Final = 256  # anchor occurrences tried per pattern
_MAX_HITS: Final = 4
_PARTIAL_MIN: Final = 24
_MAX_PARTIAL_TRIES: Final = 16
_COMPILED: dict[str, tuple[re.Pattern[str], int]] = {}
_CODE_RE: Final = re.compile(
    r"(?:\braise [a-z_.]{1,60}\(|\bwarn\(|\bprint\(|\.(?:warning|error|info|debug|warn)\()"
    r"\s{0,20}[fr]?[\"']$"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Match:
    """Where a pattern matched (offsets in the prepared text) and its groups, in the
    text's own case."""

    start: int
    end: int
    groups: dict[str, str]
    partial: bool = False


def _compiled(pattern: str) -> tuple[re.Pattern[str], int]:
    found = _COMPILED.get(pattern)
    if found is None:
        found = _COMPILED[pattern] = (re.compile(pattern), pattern_width(pattern))
    return found


def required_words(words: tuple[str, ...]) -> str:
    """The anchor among ``words``: the longest (long words are the rare ones)."""
    return max(words, key=lambda w: (len(w), w)) if words else ""


def _groups(doc: Prepared, m: re.Match[str]) -> dict[str, str]:
    return {k: doc.text[m.start(k) : m.end(k)] for k, v in m.groupdict().items() if v is not None}


def _occurrences(doc: Prepared, anchor: str) -> list[int]:
    out: list[int] = []
    pos = doc.lower.find(anchor)
    while pos >= 0 and len(out) < _MAX_OCCURRENCES:
        out.append(pos)
        pos = doc.lower.find(anchor, pos + 1)
    return out


def _partial(doc: Prepared, at: int, lead: str) -> Match | None:
    """``lead`` (normalized lower-case text) cut short at the end of the line at ``at``.

    Only the stretch of the line around ``at`` is looked at: a line that goes on for more
    than a few times the lead's length after it cannot be the lead cut short.
    """
    index = doc.index_at(at)
    line_end = doc.starts[index] + len(doc.line(index))
    reach = 2 * len(lead) + 40
    if line_end - at > reach:
        return None
    begin = max(doc.starts[index], at - reach)
    window = doc.lower[begin:line_end]
    norm = " ".join(window.split())
    start = norm.find(lead[:_PARTIAL_MIN])
    if start < 0:
        return None
    rest = norm[start:]
    if len(rest) < _PARTIAL_MIN or not lead.startswith(rest) or rest == lead:
        return None
    offset = begin + window.find(rest.split(" ")[0])
    return Match(start=offset, end=line_end, groups={}, partial=True)


def _in_source_code(doc: Prepared, m: re.Match[str]) -> bool:
    """The match is the message's source line, quoted by a traceback (``raise X(f"...{x}")``),
    not the message itself."""
    line_start = doc.starts[doc.index_at(m.start())]
    before = doc.lower[max(line_start, m.start() - 100) : m.start()]
    return bool(_CODE_RE.search(before)) or any(
        "{" in v and "}" in v for v in m.groupdict().values() if v
    )


def find(
    doc: Prepared,
    pattern: str,
    words: tuple[str, ...],
    *,
    lead: str = "",
    limit: int = _MAX_HITS,
) -> list[Match]:
    """Where ``pattern`` matches in ``doc`` (at most ``limit`` places); for a message with
    a ``lead``, its partial matches when it matches nowhere in full."""
    rx, width = _compiled(pattern)
    if not words:  # no word is certain (a top-level alternation): run it over the text
        return [
            Match(start=m.start(), end=m.end(), groups=_groups(doc, m))
            for m, _ in zip(rx.finditer(doc.lower), range(limit), strict=False)
        ]
    if not doc.has_words(words):
        return []
    anchor = required_words(words)
    found: list[Match] = []
    skip_to = -1
    tried: list[int] = []
    for at in _occurrences(doc, anchor):
        if at < skip_to:
            continue
        tried.append(at)
        begin = max(0, at - width, skip_to)  # never the text of a match already found
        end = min(len(doc.lower), at + len(anchor) + width)
        m = rx.search(doc.lower, begin, end)
        while m is not None and _in_source_code(doc, m):
            m = rx.search(doc.lower, m.end(), end)
        if m is None:
            continue
        found.append(Match(start=m.start(), end=m.end(), groups=_groups(doc, m)))
        skip_to = m.end()
        if len(found) >= limit:
            break
    if found or len(lead) < _PARTIAL_MIN:
        return found
    for at in tried[:_MAX_PARTIAL_TRIES]:
        partial = _partial(doc, at, lead)
        if partial is not None:
            found.append(partial)
            if len(found) >= limit:
                break
    return found
