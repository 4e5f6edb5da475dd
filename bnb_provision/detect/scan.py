"""Every non-NVIDIA GPU of this machine: the AMD, Intel and Apple readers run in turn."""

from __future__ import annotations

import sys
from pathlib import Path

from bnb_provision.detect import amd, apple, intel
from bnb_provision.detect.accelerators import Accelerator, Runtime

__all__ = ["detect_accelerators"]


def detect_accelerators(
    warnings: list[str], *, root: Path = Path("/"), macos_release: str | None = None
) -> tuple[tuple[Accelerator, ...], tuple[Runtime, ...]]:
    """AMD and Intel GPUs (Linux sysfs, with ROCm's tools as fallbacks) and Apple silicon;
    problems go into ``warnings``, nothing raises."""
    if sys.platform == "darwin":
        return apple.detect_apple(warnings, release=macos_release)
    if sys.platform == "win32":
        return (), ()
    found, runtimes = amd.detect_amd(warnings, root=root)
    more, more_runtimes = intel.detect_intel(warnings, root=root, first_index=len(found))
    return (*found, *more), (*runtimes, *more_runtimes)
