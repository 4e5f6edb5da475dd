"""GPUs that are not NVIDIA's: AMD (ROCm), Intel (XPU) and Apple silicon (MPS).

Each is an :class:`Accelerator` in the machine snapshot, beside the runtime that drives it
(a :class:`Runtime`: the ROCm release, the Intel kernel driver, macOS). The readers are in
:mod:`~bnb_provision.detect.amd`, :mod:`~bnb_provision.detect.intel` and
:mod:`~bnb_provision.detect.apple`; :mod:`~bnb_provision.detect.scan` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = [
    "ACCELERATOR_VENDORS",
    "Accelerator",
    "AcceleratorVendor",
    "Runtime",
]

AcceleratorVendor = Literal["amd", "intel", "apple"]
ACCELERATOR_VENDORS: Final[tuple[AcceleratorVendor, ...]] = get_args(AcceleratorVendor)


@dataclass(frozen=True, kw_only=True, slots=True)
class Accelerator:
    """One non-NVIDIA GPU. ``target`` is what its kernels are built for: the gfx target
    of an AMD GPU (``gfx942``), the Xe architecture of an Intel one (``Xe-HPG``), the Metal
    GPU family of Apple silicon (``Apple9``); None when not known."""

    vendor: AcceleratorVendor
    index: int
    name: str
    target: str | None
    memory_total_mib: int | None = None
    source: str = "flags"  # kfd | rocminfo | amd-smi | sysfs | sysctl | snapshot | flags


@dataclass(frozen=True, kw_only=True, slots=True)
class Runtime:
    """The software that drives a vendor's GPUs: ``rocm 6.4.1``, the ``xe`` or ``i915``
    kernel driver, ``macos 14.5``."""

    vendor: AcceleratorVendor
    name: str
    version: str | None
    source: str
