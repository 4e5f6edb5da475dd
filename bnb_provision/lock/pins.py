"""What a lock says about itself, and which requirements file a given lock means.

Light on purpose (no resolver, no TOML writer): ``init --lock`` reads the lock's
Python version and pins here and starts uv before anything heavy is loaded.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

from bnb_provision.errors import LockfileError
from bnb_provision.lock.names import MANIFEST_FILE, MANIFEST_SCHEMA, requirements_file

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "LockPins",
    "Needs",
    "read_lock_pins",
    "requirements_for",
]

_PIN: Final = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
_NEEDS: Final = re.compile(
    r"^# Needs: (?:(?P<none>no NVIDIA driver)|NVIDIA driver (?:>= (?P<floor>[0-9]+(?:\.[0-9]+)*)"
    r"|\(floor not in the DB\))(?:; GPU architectures (?P<archs>[0-9]+\.[0-9]+(?: [0-9]+\.[0-9]+)*)"
    r"(?![0-9.]))?)"
)
_PLANNED: Final = ("torch", "bitsandbytes")  # pins init plans with, read as versions
_PLAN_VARIANT: Final = re.compile(r"^# Plan: torch [0-9][^+\s,]*\+(?P<variant>[A-Za-z0-9.]+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockPins:
    """What a requirements lock pins: the Python it was resolved for, torch, bitsandbytes,
    every package; and, from the header bnb-provision writes, the torch variant, the driver
    floor and the GPU architectures it was made for."""

    python: str | None  # "3.11", from the header bnb-provision writes; None for other locks
    torch: str | None  # "2.13.0+cpu"
    bitsandbytes: str | None
    packages: tuple[tuple[str, str], ...] = ()  # (normalized name, version), every pin
    header_variant: str = ""  # "cu126" from the header's Plan line ("" without one)
    needs: Needs | None = None  # from the header's Needs line (None without one)

    @property
    def torch_variant(self) -> str:
        """``cu126``, ``cpu``: the pin's local version, else the header's variant."""
        local = self.torch.partition("+")[2] if self.torch else ""
        return local or self.header_variant


@dataclass(frozen=True, kw_only=True, slots=True)
class Needs:
    """A lock header's ``# Needs:`` line: whether it is a CUDA build, its driver floor and
    the GPU architectures of the machines it was made for."""

    cuda: bool
    driver_floor: str  # "" for a CPU build, or a CUDA build whose floor the DB lacks
    gpu_archs: tuple[str, ...]

    def line(self) -> str:
        """The header line's text (after ``# Needs: ``)."""
        if not self.cuda:
            return "no NVIDIA driver (a CPU build)"
        floor = f">= {self.driver_floor}" if self.driver_floor else "(floor not in the DB)"
        archs = " ".join(self.gpu_archs) or "none recorded"
        return f"NVIDIA driver {floor}; GPU architectures {archs}"

    @classmethod
    def parse(cls, line: str) -> Needs | None:
        """The values of a ``# Needs: ...`` line, or None for another line."""
        m = _NEEDS.match(line)
        if m is None:
            return None
        if m.group("none"):
            return cls(cuda=False, driver_floor="", gpu_archs=())
        return cls(
            cuda=True,
            driver_floor=m.group("floor") or "",
            gpu_archs=tuple((m.group("archs") or "").split()),
        )


def requirements_for(lock: Path) -> Path:
    """The requirements file of a lock given as ``X.requirements.txt`` or ``pylock.X.toml``.

    Where a manifest beside it lists the lock, its files must be the ones the manifest
    recorded (``lock.manifest.check_lock_file``): a lock set left inconsistent is refused
    with a LockfileError, never installed.
    """
    from bnb_provision.lock.manifest import check_lock_file

    if lock.name.endswith(".requirements.txt") or lock.suffix == ".txt":
        check_lock_file(lock)
        return lock
    if lock.name.startswith("pylock.") and lock.suffix == ".toml":
        sibling = lock.with_name(
            requirements_file(lock.name.removeprefix("pylock.").removesuffix(".toml"))
        )
        if sibling.exists():
            check_lock_file(sibling)
            return sibling
    raise LockfileError(
        f"{lock}: expected a <group>.requirements.txt, its pylock.<group>.toml, "
        f"or a folder with {MANIFEST_FILE}"
    )


def read_lock_pins(requirements: Path) -> LockPins:
    """Parse a requirements lock's header and its torch and bitsandbytes pins."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"{requirements}: cannot read it ({exc})") from exc
    python, variant, needs = None, "", None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        # the header lines lock writes (templates/lock-header.txt.tmpl)
        found = plan_line_python(stripped)
        if found:
            python = found
            v = _PLAN_VARIANT.match(stripped)
            variant = v.group("variant") if v else ""
            continue
        needs = needs or Needs.parse(stripped)
        p = _PIN.match(stripped)
        if p:
            name = re.sub(r"[-_.]+", "-", p.group("name")).lower()
            pins[name] = _version(p, requirements) if name in _PLANNED else p.group("version")
    return LockPins(
        python=python,
        torch=pins.get("torch"),
        bitsandbytes=pins.get("bitsandbytes"),
        packages=tuple(sorted(pins.items())),
        header_variant=variant,
        needs=needs,
    )


def _version(pin: re.Match[str], requirements: Path) -> str:
    """The version a ``torch==`` or ``bitsandbytes==`` line pins (init plans with it);
    LockfileError for one that is not a version."""
    try:
        Version(pin.group("version"))
    except InvalidVersion:
        raise LockfileError(
            f"{requirements}: {pin.group(0)[:80]!r} does not pin a version; write the lock "
            "again with bnb-provision lock"
        ) from None
    return pin.group("version")


def plan_line_python(line: str) -> str | None:
    """The Python version (``3.11``) a lock header's ``# Plan: ...`` line names, else None."""
    if not line.startswith("# Plan: "):
        return None
    words = line.replace(",", " ").split()
    found = None
    for word, value in itertools.pairwise(words):
        major, dot, minor = value.partition(".")
        if word == "Python" and dot and value.isascii() and major.isdigit() and minor.isdigit():
            found = value
    return found
