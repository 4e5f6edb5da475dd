"""``explain``: an error message, a traceback or a whole log -> ranked findings.

The findings have doctor's shape (schema ``bnb-provision.doctor/1``): one per cause the
text supports, most likely first, each with the lines that support it, what the cause is
and its fix filled in from the facts in the text (a command where there is one). The
facts themselves are in the report's ``subject``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from packaging.version import InvalidVersion, Version

from bnb_provision.doctor.findings import Finding, findings_to_dict
from bnb_provision.explain.catalog import Catalog, load_catalog
from bnb_provision.explain.engine import MessageHit, Ranked, Reading, rank, read_text
from bnb_provision.explain.facts import Fact
from bnb_provision.explain.values import derived_values, fill, first_bnb_for_os

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB

__all__ = ["Explanation", "explain_text"]

_MAX_EVIDENCE: Final = 4
_STATED: Final = 2.0  # a cause with less support than this is only a possible cause


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    """What explain found in a text."""

    findings: tuple[Finding, ...]
    facts: dict[str, Fact]
    ranked: tuple[Ranked, ...]
    messages: tuple[MessageHit, ...]
    lines: int

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def subject(self) -> dict[str, Any]:
        return {
            "text_lines": self.lines,
            "facts": {
                name: {"value": f.value, "line": f.line or None, "evidence": f.evidence}
                for name, f in sorted(self.facts.items())
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return findings_to_dict(self.findings, subject=self.subject())


class _DB:
    """The compat DB, loaded when a fact first needs it (most texts need none)."""

    def __init__(self, db: CompatDB | None) -> None:
        self._db = db

    def __call__(self) -> CompatDB:
        if self._db is None:
            from bnb_provision.db.load import load_db

            self._db = load_db()
        return self._db


def _platform_facts(reading: Reading, db: Callable[[], CompatDB]) -> None:
    """``bnb_windows_wheel`` / ``bnb_macos_wheel`` = no when every bitsandbytes release the
    text's messages fit predates that OS's first wheel."""
    span = reading.facts.get("bnb_range")
    os_fact = reading.facts.get("os")
    if span is None or os_fact is None or os_fact.value not in {"windows", "macos"}:
        return
    try:
        newest = Version(span.value.replace(",", "-").split("-")[-1].strip())
    except InvalidVersion:
        return
    os_name = os_fact.value
    first = first_bnb_for_os(db(), os_name)
    if first is not None and newest < first:
        key = f"bnb_{os_name}_wheel"
        how = f"bitsandbytes {span.value} predates the first {os_name} wheel ({first})"
        reading.facts[key] = Fact(name=key, value="no", line=0, evidence=how)


def _gpu_cc(reading: Reading, db: Callable[[], CompatDB]) -> None:
    """The compute capability of the GPU the text names, from the DB, when the text does
    not print it."""
    gpu = reading.facts.get("gpu")
    if gpu is None or "compute_capability" in reading.facts:
        return
    model = db().gpu_cc(gpu.value)
    if model is not None:
        cc = f"{model.cc[0]}.{model.cc[1]}"
        how = f"{gpu.value} has compute capability {cc} ({model.source})"
        reading.facts["compute_capability"] = Fact(
            name="compute_capability", value=cc, line=gpu.line, evidence=how
        )
        reading.facts["sm"] = Fact(
            name="sm", value=f"{model.cc[0]}{model.cc[1]}", line=gpu.line, evidence=how
        )


def _stack(reading: Reading, catalog: Catalog) -> None:
    """The stack a compiled extension (or, failing that, the raising package) belongs to."""
    if "stack" in reading.facts:
        return
    for key, field in (("extension", "names"), ("library", "packages")):
        fact = reading.facts.get(key)
        if fact is None:
            continue
        name = fact.value.lower()
        for row in catalog.curated.extensions:
            if name in getattr(row, field):
                how = f"{name} ships with {row.stack}"
                reading.facts["stack"] = Fact(
                    name="stack", value=row.stack, line=fact.line, evidence=how
                )
                return


def _finding(r: Ranked, values: dict[str, str]) -> Finding:
    """A ranked cause as a finding; one supported by hints only (the text stops before its
    error, a weight-1 signature) is a possible cause: severity info."""
    lines = [
        f"line {e.line}: {e.text}" if e.line else f"{e.what}: {e.text}"
        for e in r.evidence[:_MAX_EVIDENCE]
    ]
    return Finding(
        id=r.cause.id,
        category=r.cause.category,
        severity=r.cause.severity if r.score >= _STATED else "info",
        title=fill(r.cause.title, values) + ("" if r.score >= _STATED else " (possible)"),
        evidence=(*lines, fill(r.cause.explanation, values)),
        fix=fill(r.cause.fix, values),
        source=r.cause.source,
    )


def _unrecognized(reading: Reading, values: dict[str, str]) -> Finding:
    """No cause: say which library messages were recognized, if any."""
    seen = [
        f"line {h.line}: {h.text} ({h.message.library} {h.message.releases}, {h.message.file})"
        for h in reading.hits[:3]
    ]
    last = next((ln.strip() for ln in reversed(reading.doc.lines) if ln.strip()), "")
    return Finding(
        id="unrecognized",
        category="other",
        severity="info",
        title="no known bitsandbytes / torch / CUDA failure in this text",
        evidence=tuple(seen or [last[:300]]),
        fix="run bnb-provision doctor inside the environment that failed: it reads torch, "
        f"bitsandbytes and the GPU directly; to plan a working stack: {values['plan_command']}",
    )


def explain_text(
    text: str, *, catalog: Catalog | None = None, db: CompatDB | None = None
) -> Explanation:
    """Every cause ``text`` supports, most likely first, as findings."""
    if catalog is None:
        catalog = load_catalog()
    the_db = _DB(db)
    reading = read_text(text, catalog)
    _platform_facts(reading, the_db)
    _gpu_cc(reading, the_db)
    _stack(reading, catalog)
    plain = {name: f.value for name, f in reading.facts.items()}
    values = {**derived_values(the_db, plain), **plain}
    ranked = rank(reading, catalog, plain)
    findings = tuple(_finding(r, values) for r in ranked) or (_unrecognized(reading, values),)
    return Explanation(
        findings=findings,
        facts=reading.facts,
        ranked=ranked,
        messages=reading.hits,
        lines=reading.doc.total_lines,
    )
