"""Values explain computes from the facts and the compatibility DB, and the filling of a
curated text's variants with them.

:func:`sm_builds` is the one statement explain makes about a GPU's architecture: for each
torch CUDA build variant that has machine code (SASS) for the GPU, the first torch release
of that variant, and the first bitsandbytes release (with its library) whose CUDA kernels
cover it: one line, no row listed twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from bnb_provision.core.text import is_digits

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    from bnb_provision.db.model import CompatDB

__all__ = ["derived_values", "fill", "first_bnb_for_os", "plan_command", "sm_builds"]

_PLACEHOLDER_RE: Final = re.compile(r"\{([a-z_]+)\}")
_PLATFORM_OF_OS: Final = {"windows": "windows-x86_64", "macos": "macos-arm64"}


def fill(variants: tuple[str, ...], values: Mapping[str, str]) -> str:
    """The first variant whose placeholders ``values`` all fill, filled."""
    for text in variants:
        names = _PLACEHOLDER_RE.findall(text)
        if all(values.get(n) for n in names):
            return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)
    return variants[-1]  # the loader guarantees the last one has no placeholder


def _first_release(db: CompatDB, spec: SpecifierSet) -> Version | None:
    found = [r.version for r in db.torch_releases if r.version in spec]
    return min(found) if found else None


def _variant_key(variant: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", variant)
    return (int(digits) if digits else 0, variant)


def sm_builds(db: CompatDB, cc: tuple[int, int], os_name: str | None = None) -> str | None:
    """``torch builds with sm_120 kernels: cu128 (from torch 2.7.0), ...; bitsandbytes has
    sm_120 kernels from 0.45.3 (libbitsandbytes_cuda128.so)``, or None when the DB knows
    neither."""
    sm = f"sm_{cc[0]}{cc[1]}"
    first: dict[str, Version] = {}
    for build in db.torch_builds:
        if not build.variant.startswith("cu") or build.covers(cc) != "sass":
            continue
        release = _first_release(db, build.torch)
        if release is not None and (build.variant not in first or release < first[build.variant]):
            first[build.variant] = release
    parts = []
    if first:
        listed = ", ".join(f"{v} (from torch {first[v]})" for v in sorted(first, key=_variant_key))
        parts.append(f"torch builds with {sm} kernels: {listed}")
    platform = _PLATFORM_OF_OS.get(os_name or "", "linux-x86_64")
    libs = [
        r
        for r in db.bnb_libraries
        if r.backend == "cuda" and r.platform in {platform, "any"} and r.covers(cc) == "sass"
    ]
    if libs:
        lib = min(libs, key=lambda r: (r.bnb, r.file))
        parts.append(f"bitsandbytes has {sm} kernels from {lib.bnb} ({lib.file})")
    return "; ".join(parts) or None


def first_bnb_for_os(db: CompatDB, os_name: str) -> Version | None:
    """The first bitsandbytes release with official wheels for ``os_name`` (windows /
    macos), from the DB's floors."""
    from bnb_provision.db.rows import FLOOR_OSES

    if os_name not in FLOOR_OSES:
        return None
    return db.bnb_os_floor(os_name)


def _supported_python(version: str) -> bool:
    """Whether some current torch release supports ``version`` (3.9 and later)."""
    major, _, minor = version.partition(".")
    return is_digits(major) and is_digits(minor) and (int(major), int(minor)) >= (3, 9)


def plan_command(facts: Mapping[str, str]) -> str:
    """``bnb-provision plan`` with every machine flag the facts give. Without a driver
    version plan prints the ladder of what each driver gets; without a GPU either, the
    command is run on the machine itself, where plan reads the driver and the GPUs."""
    flags = []
    if facts.get("os") in {"windows", "macos"}:
        flags.append(f"--os {facts['os']}")
    if facts.get("compute_capability"):
        flags.append(f"--gpu {facts['compute_capability']}")
    if facts.get("driver"):
        flags.append(f"--driver {facts['driver']}")
    python = ".".join(facts.get("python", "").split(".")[:2])
    if python and _supported_python(python):  # an old Python gets the plan for a current one
        flags.append(f"--python {python}")
    command = " ".join(["bnb-provision plan", *flags])
    if facts.get("driver"):
        return command
    if facts.get("compute_capability"):
        return f"{command} (with --driver and the version nvidia-smi prints, one plan)"
    return f"{command} on that machine"


def _driver_floor(db: CompatDB, cuda: str, os_name: str) -> str | None:
    try:
        driver, _ = db.min_driver(cuda, "windows" if os_name == "windows" else "linux")
    except (KeyError, ValueError):
        return None
    return f"CUDA {cuda} needs driver {driver} or newer" if driver else None


def derived_values(db: Callable[[], CompatDB], facts: Mapping[str, str]) -> dict[str, str]:
    """Every value of names.DERIVED that the facts and the DB give; ``db`` is called (the
    DB loaded) only when a fact needs it."""
    out = {"plan_command": plan_command(facts)}
    os_name = facts.get("os") or "linux"
    cc = facts.get("compute_capability")
    if cc and re.fullmatch(r"\d{1,2}\.\d", cc):
        major, minor = cc.split(".")
        statement = sm_builds(db(), (int(major), int(minor)), os_name)
        if statement:
            out["sm_builds"] = statement
    cuda = facts.get("torch_cuda") or facts.get("lib_cuda")
    if cuda:
        floor = _driver_floor(db(), cuda, os_name)
        if floor:
            out["driver_floor"] = floor
    lib = facts.get("bnb_lib")
    if lib:
        shipped = [r.bnb for r in db().bnb_libraries if r.file == lib]
        if shipped:
            out["bnb_with_lib"] = str(min(shipped))
    if os_name in {"windows", "macos"}:
        first = first_bnb_for_os(db(), os_name)
        if first is not None:
            out[f"bnb_{os_name}_first"] = str(first)
    return out
