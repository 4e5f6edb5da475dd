"""Findings: what doctor and explain report (schema ``bnb-provision.doctor/1``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from bnb_provision.vocab import CATEGORIES, SEVERITIES, Category, Severity

__all__ = ["CATEGORIES", "DOCTOR_SCHEMA", "SEVERITIES", "Finding", "findings_to_dict"]

DOCTOR_SCHEMA: Final = "bnb-provision.doctor/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One diagnosed problem: what, the evidence for it, and the fix."""

    id: str
    category: Category
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    fix: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "source": self.source,
        }


def findings_to_dict(findings: tuple[Finding, ...], *, subject: dict[str, Any]) -> dict[str, Any]:
    from bnb_provision import __version__

    return {
        "schema": DOCTOR_SCHEMA,
        "tool": {"name": "bnb-provision", "version": __version__},
        "subject": subject,
        "ok": not any(f.severity == "error" for f in findings),
        "findings": [f.to_dict() for f in findings],
    }
