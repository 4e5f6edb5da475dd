"""What a doctor check is: a pure function from a machine, the DB and the options to findings.

Every check module (runtime, platform, kernels, memory_check, stack) writes functions of
the :data:`Check` shape; :mod:`bnb_provision.doctor.diagnose` runs them in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from packaging.version import InvalidVersion, Version

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.doctor.findings import Finding
from bnb_provision.env.stamp import Stamp
from bnb_provision.fit.model import ModelSpec
from bnb_provision.vocab import Quant

__all__ = ["REBUILD", "Check", "DoctorOptions", "version_or_none"]

REBUILD: Final = "bnb-provision rebuild"
"""The fix most findings end with: re-plan and rebuild the environment."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DoctorOptions:
    """What doctor knows beyond the machine: the model to load and the environment's stamp."""

    model: ModelSpec | None = None
    quant: Quant = "nf4"
    stamp: Stamp | None = None


Check: TypeAlias = Callable[[Machine, CompatDB, DoctorOptions], list[Finding]]
"""One check: the findings it makes about a machine, none when it does not apply."""


def version_or_none(text: str | None) -> Version | None:
    """An installed package's version, or None when absent or not PEP 440."""
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None
