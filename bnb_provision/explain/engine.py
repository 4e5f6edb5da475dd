"""Text -> ranked causes: every cause the text supports, most likely first, each with the
lines that support it and a fix filled in from the facts.

Support comes from catalog messages (through the curated rows that map them), generic
signatures and context rows (facts that point at a cause on their own). A cause's score
is the weight of its strongest support (a message cut short counts half a point less),
plus a little for each further, distinct support; ties go to the cause supported later
in the text, nearer the failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from bnb_provision.explain.catalog import Catalog, Message
from bnb_provision.explain.curated import Cause, CauseRef, Signature
from bnb_provision.explain.facts import Fact, derive_facts, read_facts
from bnb_provision.explain.match import Match, find
from bnb_provision.explain.names import CONVERSIONS
from bnb_provision.explain.templates import pattern_words
from bnb_provision.explain.text import Prepared, prepare

__all__ = ["Evidence", "MessageHit", "Ranked", "Reading", "rank", "read_text"]

_EXTRA_SUPPORT: Final = 0.25
_MAX_EXTRA: Final = 3
_PARTIAL_PENALTY: Final = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    line: int
    text: str
    what: str  # which message or signature matched


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageHit:
    message: Message
    match: Match
    line: int
    text: str
    agreement: int  # characters of the message the text agrees with


@dataclass(frozen=True, kw_only=True, slots=True)
class Ranked:
    cause: Cause
    score: float
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Reading:
    """What the text holds: the messages and signatures that matched, and the facts."""

    doc: Prepared
    hits: tuple[MessageHit, ...]
    signatures: tuple[tuple[Signature, Match], ...]
    facts: dict[str, Fact]


def _line(doc: Prepared, match: Match) -> tuple[int, str]:
    return doc.line_number(match.start), doc.line_of(match.start).strip()[:300]


def _best_per_place(hits: list[MessageHit]) -> list[MessageHit]:
    """Where several messages match the same text (one match inside the other), the one
    the text agrees with furthest (the most specific message) wins; equals all stay (one
    text in several releases' wordings, or in two libraries). Matches that only overlap
    are two messages printed one into the other, and both stay."""

    def nested(a: Match, b: Match) -> bool:
        return (a.start >= b.start and a.end <= b.end) or (b.start >= a.start and b.end <= a.end)

    kept: list[MessageHit] = []
    for hit in sorted(hits, key=lambda h: (h.match.partial, -h.agreement)):
        rivals = [k for k in kept if nested(k.match, hit.match)]
        if not rivals or (
            not hit.match.partial and hit.agreement == max(k.agreement for k in rivals)
        ):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.match.start)


def _agreement(doc: Prepared, message: Message, match: Match) -> int:
    """The match's length, plus how far the text after it agrees with the message."""
    if match.partial or not message.tail:
        return match.end - match.start
    following = " ".join(doc.lower[match.end : match.end + 2 * len(message.tail)].split())
    common = 0
    for a, b in zip(following, message.tail, strict=False):
        if a != b:
            break
        common += 1
    return match.end - match.start + common


def _message_hits(doc: Prepared, catalog: Catalog) -> list[MessageHit]:
    hits = []
    for message in catalog.messages:
        if not message.lead or not doc.has_words(message.lead):
            continue
        for match in find(doc, message.pattern, message.lead, lead=message.lead_text):
            line, text = _line(doc, match)
            agreement = _agreement(doc, message, match)
            hits.append(
                MessageHit(message=message, match=match, line=line, text=text, agreement=agreement)
            )
    return _best_per_place(hits)


@functools.lru_cache(maxsize=512)
def _signature_words(pattern: str) -> tuple[str, ...]:
    return pattern_words(pattern)


def _signature_hits(doc: Prepared, catalog: Catalog) -> list[tuple[Signature, Match]]:
    return [
        (sig, match)
        for sig in catalog.curated.signatures
        for match in find(doc, sig.pattern, _signature_words(sig.pattern))
    ]


def _captured(
    doc: Prepared, mapping: tuple[tuple[str, str, str], ...], match: Match, found: dict[str, Fact]
) -> None:
    line, text = _line(doc, match)
    for group, fact, conv in mapping:
        raw = match.groups.get(group)
        value = CONVERSIONS[conv](raw) if raw else None
        old = found.get(fact)
        if value and (old is None or old.strength < 5):  # noqa: PLR2004 - the first such capture wins
            found[fact] = Fact(name=fact, value=value, line=line, evidence=text, strength=5)


def _narrowed(hits: list[MessageHit], catalog: Catalog, library: str) -> tuple[str, ...] | None:
    """The releases of ``library`` that print every one of its messages the text has: at
    each place, any message matching there; across places, all of them."""
    places: dict[int, set[str]] = {}
    for h in hits:
        if h.message.library == library:
            places.setdefault(h.match.start, set()).update(h.message.versions)
    if not places:
        return None
    common = set.intersection(*places.values())
    order = catalog.examined[library]
    return tuple(v for v in order if v in common) or None


def _runs(releases: tuple[str, ...], examined: tuple[str, ...]) -> str:
    """``0.46.0-0.46.1, 0.48.0-0.49.2``: the releases as runs of consecutive examined ones."""
    index = {v: i for i, v in enumerate(examined)}
    runs: list[list[str]] = []
    for v in releases:
        if runs and index[v] == index[runs[-1][-1]] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _bnb_range(hits: list[MessageHit], catalog: Catalog, found: dict[str, Fact]) -> None:
    releases = _narrowed(hits, catalog, "bitsandbytes")
    if releases and "bnb_range" not in found:
        span = _runs(releases, catalog.examined["bitsandbytes"])
        how = "the bitsandbytes releases that print every bitsandbytes message in the text"
        found["bnb_range"] = Fact(name="bnb_range", value=span, line=0, evidence=how)


def read_text(text: str, catalog: Catalog) -> Reading:
    """Prepare ``text`` and read the messages, signatures and facts in it."""
    doc = prepare(text)
    hits = _message_hits(doc, catalog)
    signatures = _signature_hits(doc, catalog)
    facts = read_facts(doc)
    for hit in hits:
        for rule in catalog.rules_of(hit.message):
            _captured(doc, rule.facts, hit.match, facts)
    for sig, match in signatures:
        _captured(doc, sig.facts, match, facts)
    _bnb_range(hits, catalog, facts)
    mapped = next((h for h in hits if catalog.rules_of(h.message)), None)
    if mapped is not None and "library" not in facts:
        how = f"prints: {mapped.text}"
        facts["library"] = Fact(
            name="library", value=mapped.message.library, line=mapped.line, evidence=how
        )
    derive_facts(facts)
    return Reading(doc=doc, hits=tuple(hits), signatures=tuple(signatures), facts=facts)


def _holds(when: tuple[tuple[str, tuple[str, ...]], ...], facts: dict[str, str]) -> bool:
    """Every ``fact = value(s)`` holds; ``fact = "!value"`` holds when the fact is another
    value or unknown."""
    for name, values in when:
        value = facts.get(name)
        negated = [v[1:] for v in values if v.startswith("!")]
        if negated and value in negated:
            return False
        wanted = [v for v in values if not v.startswith("!")]
        if wanted and value not in wanted:
            return False
    return True


def rank(reading: Reading, catalog: Catalog, facts: dict[str, str]) -> tuple[Ranked, ...]:
    """Every cause the reading supports, most likely first."""
    support: dict[str, list[tuple[float, Evidence]]] = {}

    def add(refs: tuple[CauseRef, ...], penalty: float, ev: Evidence) -> None:
        for ref in refs:
            support.setdefault(ref.id, []).append((ref.weight - penalty, ev))

    for hit in reading.hits:
        m = hit.message
        what = f"{m.library} {m.releases}: {m.template[:120]}"
        for rule in catalog.rules_of(m):
            if _holds(rule.when, facts):
                penalty = _PARTIAL_PENALTY if hit.match.partial else 0.0
                add(rule.causes, penalty, Evidence(line=hit.line, text=hit.text, what=what))
    for sig, match in reading.signatures:
        if _holds(sig.when, facts):
            line, text = _line(reading.doc, match)
            add(sig.causes, 0.0, Evidence(line=line, text=text, what=f"signature {sig.id}"))
    for ctx in catalog.curated.contexts:
        if ctx.when and _holds(ctx.when, facts):
            known = [reading.facts[n] for n, _ in ctx.when if n in reading.facts]
            shown = "; ".join(dict.fromkeys(f.evidence for f in known))
            line = max((f.line for f in known), default=0)
            add(ctx.causes, 0.0, Evidence(line=line, text=shown, what=f"context {ctx.id}"))
    ranked = []
    for cause_id, items in support.items():
        items.sort(key=lambda x: (-x[0], x[1].line))
        distinct = {(ev.line, ev.what) for _, ev in items}
        score = items[0][0] + _EXTRA_SUPPORT * min(_MAX_EXTRA, len(distinct) - 1)
        lines = {(ev.line, ev.text): ev for _, ev in reversed(items)}  # one per line, its best
        evidence = tuple(sorted(lines.values(), key=lambda ev: ev.line))
        ranked.append(
            Ranked(cause=catalog.curated.causes[cause_id], score=score, evidence=evidence)
        )
    severity = {"error": 0, "warning": 1, "info": 2}
    ranked.sort(
        key=lambda r: (-r.score, severity[r.cause.severity], -max(e.line for e in r.evidence))
    )
    return tuple(ranked)
