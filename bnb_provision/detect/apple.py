"""Apple silicon: the chip (``sysctl machdep.cpu.brand_string`` says ``Apple M3 Pro``) and
the macOS release. A pure parser plus a thin reader."""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.core import process
from bnb_provision.detect.accelerators import Accelerator, Runtime
from bnb_provision.errors import ExternalToolError

__all__ = ["detect_apple", "parse_brand_string"]

_CHIP_RE: Final = re.compile(r"Apple (M\d{1,2})(?: (Pro|Max|Ultra))?")


def parse_brand_string(text: str) -> str | None:
    """``Apple M3 Pro`` -> ``Apple M3 Pro``; an Intel Mac's brand string -> None."""
    m = _CHIP_RE.fullmatch(text.strip())
    return None if m is None else " ".join(p for p in ("Apple", m.group(1), m.group(2)) if p)


def detect_apple(
    warnings: list[str], *, release: str | None
) -> tuple[tuple[Accelerator, ...], tuple[Runtime, ...]]:
    """The Apple silicon GPU of this Mac (none on an Intel Mac) and the macOS release."""
    runtimes = (Runtime(vendor="apple", name="macos", version=release, source="platform"),)
    try:
        done = process.run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5.0)
    except ExternalToolError as exc:
        warnings.append(f"sysctl: {exc}")
        return (), runtimes
    chip = parse_brand_string(done.stdout)
    if chip is None:
        return (), ()
    gpu = Accelerator(vendor="apple", index=0, name=chip, target=None, source="sysctl")
    return (gpu,), runtimes
