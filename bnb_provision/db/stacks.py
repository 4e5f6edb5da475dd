"""The quantization stacks besides bitsandbytes: ``compat_db/stacks.toml`` (curated: the
library each stack installs, its upstream status and successor, what it needs a compiler
for) and ``compat_db/derived/stacks.toml`` (each library's own requirements, read from its
PyPI metadata), read into :class:`StackDB` and validated like the rest of the DB.

Loaded only when a ``--stack gptq|awq`` lock is planned: a bitsandbytes plan never reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.data import data_dir
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db import values
from bnb_provision.db.rows import PackageRelease
from bnb_provision.errors import CompatDBError
from bnb_provision.vocab import STACKS, Stack

__all__ = ["STACKS_SCHEMA", "Compiler", "StackDB", "StackInfo", "load_stacks", "parse_stacks"]

STACKS_SCHEMA: Final = "bnb-provision.stacks/1"
T = TypeVar("T")
Status = Literal["maintained", "archived"]
_STATUSES: Final[tuple[Status, ...]] = ("maintained", "archived")
When = Literal["install", "first use"]
_WHENS: Final[tuple[When, ...]] = ("install", "first use")
Dist = Literal["sdist", "wheel"]
_DISTS: Final[tuple[Dist, ...]] = ("sdist", "wheel")


@dataclass(frozen=True, kw_only=True, slots=True)
class StackInfo:
    """A stack's library and what upstream says about it."""

    stack: Stack
    package: str
    status: Status
    note: str
    successor: str  # "" when none
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Compiler:
    """A range of a library's releases that needs a compiler, and when."""

    package: str
    versions: SpecifierSet
    when: When
    needs: str
    note: str
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StackRelease:
    """A stack library's release (derived): its own requirements and the files PyPI has."""

    release: PackageRelease
    dists: tuple[Dist, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class StackDB:
    stacks: tuple[StackInfo, ...]
    compilers: tuple[Compiler, ...]
    releases: tuple[StackRelease, ...]

    def info(self, stack: Stack) -> StackInfo | None:
        return next((s for s in self.stacks if s.stack == stack), None)

    def releases_of(self, package: str) -> tuple[StackRelease, ...]:
        """The derived releases of ``package``, newest first."""
        rows = [r for r in self.releases if r.release.package == package]
        return tuple(sorted(rows, key=lambda r: r.release.version, reverse=True))

    def compiler(self, package: str, version: Version) -> Compiler | None:
        return next(
            (
                c
                for c in self.compilers
                if c.package == package and c.versions.contains(version, prereleases=True)
            ),
            None,
        )


def _stack(r: Fields) -> StackInfo:
    return StackInfo(
        stack=values.choice(r, "stack", STACKS, "stack"),
        package=r.text("package"),
        status=values.choice(r, "status", _STATUSES, "status"),
        note=r.text("note"),
        successor=r.text("successor", ""),
        source=values.source(r),
        checked=values.checked(r),
    )


def _compiler(r: Fields) -> Compiler:
    return Compiler(
        package=r.text("package"),
        versions=values.spec(r, "versions"),
        when=values.choice(r, "when", _WHENS, "moment"),
        needs=r.text("needs"),
        note=r.text("note"),
        source=values.source(r),
        checked=values.checked(r),
    )


def _release(r: Fields) -> StackRelease:
    values.documentary_date(r, "date")
    dists = []
    for i, d in enumerate(r.str_list("dists")):
        r.check(d in _DISTS, f"dists[{i}]", f"expected one of {', '.join(_DISTS)}, got {d!r}")
        dists.append(_DISTS[_DISTS.index(d)])
    release = PackageRelease(
        package=r.text("package"),
        version=values.version(r, "version"),
        requires_python=values.spec(r, "requires_python", ""),
        requires=values.requires(r, "requires"),
    )
    return StackRelease(release=release, dists=tuple(dists))


def parse_stacks(curated: object, derived: object) -> StackDB:
    """The stack facts from the two parsed documents. Raises CompatDBError naming the
    file and the field."""
    try:
        doc = Fields(curated, "")
        schema = doc.text("schema")
        doc.check(schema == STACKS_SCHEMA, "schema", f"expected {STACKS_SCHEMA!r}")
        stacks = tuple(_each(doc, "stack", _stack))
        compilers = tuple(_each(doc, "compiler", _compiler))
        doc.done()
    except FieldError as exc:
        raise CompatDBError(f"stacks.toml: {exc}") from None
    try:
        ddoc = Fields(derived, "")
        releases = tuple(_each(ddoc, "release", _release))
        ddoc.done()
    except FieldError as exc:
        raise CompatDBError(f"derived/stacks.toml: {exc}") from None
    return StackDB(stacks=stacks, compilers=compilers, releases=releases)


def _each(doc: Fields, key: str, make: Callable[[Fields], T]) -> list[T]:
    out = []
    for row in doc.tables(key, []):
        out.append(make(row))
        row.done()
    return out


@functools.cache
def load_stacks(root: Path | None = None) -> StackDB:
    """The shipped stack facts (or those under ``root``), validated."""
    folder = root or data_dir("compat_db")
    docs = []
    for name in ("stacks.toml", "derived/stacks.toml"):
        try:
            docs.append(toml_loads((folder / name).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CompatDBError(f"{name}: cannot be read as TOML ({exc})") from exc
    return parse_stacks(docs[0], docs[1])
