"""Planning offline: only what a wheelhouse holds.

``--offline --find-links W`` resolves from the files in ``W`` alone, so a plan must never
take a torch, bitsandbytes or Hugging Face release that ``W`` does not hold for the target
platform and Python. The wheelhouse is read from its file names only (the versions, and
the wheel tags: platform and Python), and the DB handed to the resolver is narrowed to
what it holds; the resolver itself is unchanged.

A torch build is held as PyPI serves it (``torch-2.15.0-...whl``: the PyPI channel) or as
the PyPI index does (``torch-2.13.0+cu126-...whl``: that variant from the index).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bnb_provision.core.text import is_digits
from bnb_provision.db.wheels import platform_of_wheel
from bnb_provision.errors import NoPlanError

if TYPE_CHECKING:
    from packaging.tags import Tag

    from bnb_provision.db.model import CompatDB
    from bnb_provision.db.rows import Verified
    from bnb_provision.detect.machine import Machine
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.model import Plan

__all__ = [
    "HeldFile",
    "Wheelhouse",
    "plan_from_wheelhouse",
    "read_wheelhouse",
    "restrict_db",
    "wheel_fits",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class HeldFile:
    """One distribution file of a wheelhouse, as its name describes it."""

    name: str  # canonical project name
    version: Version  # with its local part: 2.13.0+cpu
    platform: str  # a vocab platform, "any", or "sdist" (builds anywhere)
    tags: frozenset[Tag]  # empty for an sdist


def _takes_python(tags: Iterable[Tag], python: str) -> bool:
    """Whether a wheel with ``tags`` installs on CPython ``X.Y``."""
    major, _, minor = python.partition(".")
    for t in tags:
        if t.interpreter.startswith("py") and t.interpreter[2:3] in ("", major):
            return True
        if t.interpreter.startswith("cp"):
            built = t.interpreter[2:]
            if built == f"{major}{minor}":
                return True
            since = built[1:] or "0"
            if (
                t.abi == "abi3"
                and built[:1] == major
                and (since + minor).isascii()
                and is_digits(since + minor)
                and int(since) <= int(minor)
            ):
                return True
    return False


def wheel_fits(filename: str, platform: str, python: str) -> bool:
    """Whether the wheel ``filename`` installs on ``platform`` with CPython ``X.Y``."""
    held = _held(Path(filename))
    if held is None or held.platform == "sdist":
        return False
    return held.platform in ("any", platform) and _takes_python(held.tags, python)


@dataclass(frozen=True, kw_only=True, slots=True)
class Wheelhouse:
    """The distribution files of one or more ``--find-links`` folders."""

    folders: tuple[Path, ...]
    files: tuple[HeldFile, ...]

    def versions(self, name: str, platform: str, python: str) -> set[Version]:
        """Every version of ``name`` held for ``platform`` and Python ``X.Y``."""
        want = canonicalize_name(name)
        return {
            f.version
            for f in self.files
            if f.name == want
            and (f.platform in ("sdist", "any") or f.platform == platform)
            and (f.platform == "sdist" or _takes_python(f.tags, python))
        }

    def holds(self, name: str, version: str | Version, platform: str, python: str) -> bool:
        return Version(str(version)) in self.versions(name, platform, python)

    def describe(self, name: str, platform: str, python: str) -> str:
        """``torch 2.13.0+cpu, 2.14.1+cu126`` or ``no torch``: for messages."""
        held = sorted(self.versions(name, platform, python))
        return f"{name} {', '.join(map(str, held))}" if held else f"no {name}"


def _held(path: Path) -> HeldFile | None:
    try:
        if path.name.endswith(".whl"):
            name, version, _, tags = parse_wheel_filename(path.name)
            platform = platform_of_wheel(path.name)
            if platform is None:
                return None
            return HeldFile(name=name, version=version, platform=platform, tags=tags)
        if path.name.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(path.name)
            return HeldFile(name=name, version=version, platform="sdist", tags=frozenset())
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def read_wheelhouse(folders: Iterable[Path]) -> Wheelhouse:
    """The files of ``folders`` (their names only; a name that is no distribution's is
    skipped, a folder that cannot be listed holds nothing)."""
    found: list[HeldFile] = []
    dirs = tuple(folders)
    for folder in dirs:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        found += [h for e in entries if e.is_file() and (h := _held(Path(e.path))) is not None]
    return Wheelhouse(folders=dirs, files=tuple(found))


def restrict_db(
    db: CompatDB, house: Wheelhouse, platform: str, python: str, *, keep_torch: bool = False
) -> CompatDB:
    """``db`` less every torch build, bitsandbytes and Hugging Face release ``house`` does
    not hold for ``platform`` and Python ``python`` (torch is kept with ``keep_torch``: a
    system torch that is adopted, not installed)."""
    bnb = house.versions("bitsandbytes", platform, python)
    db = dataclasses.replace(
        db,
        bnb_releases=tuple(r for r in db.bnb_releases if r.version in bnb),
        packages=tuple(
            r for r in db.packages if house.holds(r.package, r.version, platform, python)
        ),
    )
    if keep_torch:
        return db
    torch = house.versions("torch", platform, python)
    releases = []
    for rel in db.torch_releases:
        pypi = tuple((p, v) for p, v in rel.pypi if p != platform or rel.version in torch)
        if any(t.public == str(rel.version) for t in torch):
            releases.append(dataclasses.replace(rel, pypi=pypi))
    newest: dict[str, Version] = {}
    for rel in releases:
        minor = f"{rel.version.major}.{rel.version.minor}"
        newest[minor] = max(newest.get(minor, rel.version), rel.version)
    indexes = tuple(
        dataclasses.replace(
            idx,
            variants=tuple(v for v in idx.variants if Version(f"{newest[idx.torch]}+{v}") in torch),
        )
        for idx in db.torch_indexes
        if idx.torch in newest
    )
    return dataclasses.replace(
        db,
        torch_releases=tuple(releases),
        torch_indexes=indexes,
        verified=tuple(v for v in db.verified if _verified_held(v, torch, platform)),
    )


def _verified_held(v: Verified, torch: set[Version], platform: str) -> bool:
    """Whether the torch build of a verified combination is held (PyPI's or the index's)."""
    if v.platform != platform:
        return True  # not for this platform: the resolver skips it anyway
    return Version(f"{v.torch}+{v.variant}") in torch or Version(str(v.torch)) in torch


def plan_from_wheelhouse(
    machine: Machine,
    db: CompatDB,
    constraints: Constraints,
    house: Wheelhouse,
    *,
    keep_torch: bool = False,
) -> Plan:
    """The plan for ``machine`` among what ``house`` holds. NoPlanError says what the
    wheelhouse holds when nothing there fits."""
    from bnb_provision.plan.inputs import plan_for, target_from_machine

    target = target_from_machine(machine, db, python=constraints.python)
    python = constraints.python or target.python
    narrowed = restrict_db(db, house, target.platform, python, keep_torch=keep_torch)
    try:
        return plan_for(machine, narrowed, constraints)
    except NoPlanError as exc:
        held = "; ".join(
            house.describe(n, target.platform, python) for n in ("torch", "bitsandbytes")
        )
        folders = ", ".join(str(f) for f in house.folders)
        raise NoPlanError(
            f"planning offline from the wheelhouse ({folders}: {held} for {target.platform}, "
            f"Python {python}): {exc}\nWay out: fill the wheelhouse from a lock made where "
            "the index is reachable (bnb-provision bundle LOCK -o WHEELHOUSE)."
        ) from exc
