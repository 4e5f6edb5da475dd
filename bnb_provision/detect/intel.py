"""Intel GPUs: PCI display devices of vendor 0x8086 in sysfs, and the kernel driver that
drives them (``xe`` or ``i915``). Pure parsers plus a thin reader.

The device id names no model by itself here (no PCI id table is shipped), so a detected
Intel GPU is ``Intel GPU [8086:56a0]`` with no target; ``--gpu "Arc A770"`` names one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from bnb_provision.detect.accelerators import Accelerator, Runtime

__all__ = ["detect_intel", "parse_pci_device"]

INTEL_VENDOR: Final = 0x8086
_DISPLAY_CLASS: Final = 0x03  # PCI base class 03: display controllers
_MAX_DEVICES: Final = 1024


def _hex(text: str) -> int | None:
    text = text.strip().lower()
    if not text.startswith("0x") or len(text) > 10:  # noqa: PLR2004 - "0x" and a u32
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def parse_pci_device(vendor: str, pci_class: str, device: str) -> int | None:
    """The device id of an Intel display device from its sysfs ``vendor``, ``class`` and
    ``device`` files (``0x8086``, ``0x030000``, ``0x56a0``); None for any other device."""
    v, c, d = _hex(vendor), _hex(pci_class), _hex(device)
    if v != INTEL_VENDOR or c is None or d is None or c >> 16 != _DISPLAY_CLASS:
        return None
    return d


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def detect_intel(
    warnings: list[str], *, root: Path = Path("/"), first_index: int = 0
) -> tuple[tuple[Accelerator, ...], tuple[Runtime, ...]]:
    """Intel display devices and their drivers, from ``/sys/bus/pci/devices``."""
    found: list[Accelerator] = []
    drivers: dict[str, None] = {}
    for dev in sorted((root / "sys/bus/pci/devices").glob("*"))[:_MAX_DEVICES]:
        device = parse_pci_device(
            _read(dev / "vendor"), _read(dev / "class"), _read(dev / "device")
        )
        if device is None:
            continue
        try:
            driver = (dev / "driver").readlink().name
        except OSError:
            driver = ""
        if driver:
            drivers[driver] = None
        else:
            warnings.append(f"Intel GPU {dev.name}: no kernel driver is bound (xe or i915)")
        found.append(
            Accelerator(
                vendor="intel",
                index=first_index + len(found),
                name=f"Intel GPU [8086:{device:04x}]",
                target=None,
                source="sysfs",
            )
        )
    runtimes = tuple(Runtime(vendor="intel", name=d, version=None, source="sysfs") for d in drivers)
    return tuple(found), runtimes
