"""explain: map an error message or a whole traceback to findings, through the DB's
error patterns (``compat_db/errors.toml``), with facts from the DB added where the text
names a GPU architecture."""

from __future__ import annotations

import re

from bnb_provision.core.cuda import ComputeCapability
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import PLACEHOLDERS, ErrorPattern
from bnb_provision.doctor.findings import Finding

__all__ = ["explain_text"]


def explain_text(text: str, db: CompatDB) -> tuple[Finding, ...]:
    """Match an error message or a whole traceback against the DB's error patterns."""
    found: list[Finding] = []
    seen: set[str] = set()
    for p in db.errors:
        match = p.pattern.search(text)
        if match is None or p.id in seen:
            continue
        seen.add(p.id)
        found.append(_finding(p, match, text, db))
    if not found and text.strip():
        found.append(
            Finding(
                id="unrecognized",
                category="other",
                severity="info",
                title="no known bitsandbytes / torch / CUDA error in this text",
                evidence=(text.strip().splitlines()[-1][:300],),
                fix="bnb-provision doctor --python PATH inspects the environment",
            )
        )
    return tuple(found)


def _finding(p: ErrorPattern, match: re.Match[str], text: str, db: CompatDB) -> Finding:
    """One matched pattern: the line it matched, its explanation and fix filled in."""
    groups = {k: v for k, v in match.groupdict().items() if v}
    line_start = text.rfind("\n", 0, match.start()) + 1
    line_end = text.find("\n", match.end())
    line = text[line_start : line_end if line_end >= 0 else len(text)].strip()
    fmt = {**PLACEHOLDERS, **groups}  # the DB loader checked every placeholder is one of these
    explanation, fix = p.explanation.format(**fmt), p.fix.format(**fmt)
    evidence = [line[:300], explanation, *_facts_suffix(db, p.category, groups)]
    return Finding(
        id=p.id,
        category=p.category,
        severity="error",
        title=p.title,
        evidence=tuple(evidence),
        fix=fix,
        source=p.source,
    )


def _facts_suffix(db: CompatDB, category: str, groups: dict[str, str]) -> list[str]:
    """For an arch error naming ``sm_XY``: the torch builds and the first bitsandbytes with it."""
    out = []
    sm = groups.get("sm")
    if category == "arch_not_compiled" and sm and sm.isdigit():
        cc = ComputeCapability.from_arch(int(sm))
        variants = sorted(
            {f"{b.variant} (torch {b.torch})" for b in db.torch_builds if b.covers(cc) == "sass"}
        )
        if variants:
            out.append(f"torch builds with sm_{sm} kernels: " + "; ".join(variants))
        libs = [r for r in db.bnb_libraries if r.backend == "cuda" and r.covers(cc) == "sass"]
        if libs:
            first = min(libs, key=lambda r: r.bnb)
            out.append(f"first bitsandbytes with sm_{sm} SASS: {first.bnb} ({first.file})")
    return out
