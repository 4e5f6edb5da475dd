"""Sizes as people write them: ``7B`` parameters, ``8GiB`` of GPU memory.

GPU memory follows the vendors' usage: "a 12 GB card" holds 12 GiB (12288 MiB), so ``GB``
and ``GiB`` both mean 1024**3 bytes here; ``MB`` and ``MiB`` both mean 1024**2.
"""

from __future__ import annotations

import math
import re
from typing import Final

from bnb_provision.errors import FitInputError

__all__ = ["MIB", "format_params", "mib", "parse_memory_mib", "parse_params"]

MIB: Final = 1024 * 1024
_PARAM_SUFFIX: Final = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_PARAM_RE: Final = re.compile(
    r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[+]?[0-9]+)?)\s*([kmbt]?)\s*$", re.IGNORECASE
)
_MEM_UNIT: Final = {"k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024.0}
_MEM_RE: Final = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt])(?:i?b)?\s*$", re.IGNORECASE)
_MAX_PARAMS: Final = 1e15


def parse_params(text: str) -> float:
    """``7B``, ``7e9``, ``70b``, ``1.5B``, ``350M`` or a plain count -> parameters."""
    m = _PARAM_RE.match(text)
    if m is None:
        raise FitInputError(
            f"--model-params {text!r}: not a parameter count; "
            "write it as 7B, 70b, 1.5B, 350M or 7e9"
        )
    value = float(m.group(1).replace("_", "")) * _PARAM_SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value < 1e6 or value > _MAX_PARAMS:  # noqa: PLR2004
        raise FitInputError(
            f"--model-params {text!r}: {value:g} parameters is outside 1M..1000T; "
            "did you mean a count in billions, e.g. 7B?"
        )
    return value


def parse_memory_mib(text: str, what: str = "--gpu-memory") -> int:
    """``8GiB``, ``12GB``, ``24576MiB``, ``1.5T`` -> MiB (GB = GiB, as for GPU cards)."""
    m = _MEM_RE.match(text)
    if m is None:
        raise FitInputError(
            f"{what} {text!r}: not a memory size; write it with a unit, e.g. 8GiB, 12GB or 24576MiB"
        )
    value = float(m.group(1)) * _MEM_UNIT[m.group(2).lower()]
    if value < 1:
        raise FitInputError(f"{what} {text!r}: smaller than 1 MiB")
    if not math.isfinite(value):
        raise FitInputError(f"{what} {text[:40]!r}...: too large to be a memory size")
    return int(value)


def mib(value: float) -> int:
    """Bytes -> whole MiB, rounded up (memory needed is never rounded down)."""
    return math.ceil(value / MIB)


def format_params(value: float) -> str:
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.0f}"
