"""The compat DB's TOML documents, already parsed, to a validated :class:`CompatDB` (pure).

Each table's rows are built by :mod:`bnb_provision.db.row_parsers`; any bad field is a
:class:`CompatDBError` whose message starts with the file and the field's path
(``torch.toml: build[1].sass[1]: expected an integer, got string``). Keys nobody reads
are errors too (``combinations.toml: verified[0].sourse: unknown field (did you mean
'source'?)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from packaging.specifiers import SpecifierSet

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.db import row_parsers as rp
from bnb_provision.db import values
from bnb_provision.db.builds import LegacyWindowsIndex, XpuFacts
from bnb_provision.db.consistency import check_arch_support, check_gpu_catalog
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import (
    BNB_FEATURES,
    FLOOR_OSES,
    GPU_FEATURES,
    Feature,
    OsFloor,
)
from bnb_provision.errors import CompatDBError
from bnb_provision.vocab import COMPANIONS, HF_PACKAGES

__all__ = ["DB_FILES", "DB_SCHEMA", "Files", "parse_db"]

DB_SCHEMA: Final = "bnb-provision.compat-db/1"
DB_FILES: Final = (
    "meta.toml",
    "nvidia.toml",
    "gpus.toml",
    "torch.toml",
    "derived/torch.toml",
    "bitsandbytes.toml",
    "derived/bitsandbytes.toml",
    *(f"derived/{pkg}.toml" for pkg in (*HF_PACKAGES, *COMPANIONS)),
    "huggingface.toml",
    "combinations.toml",
)
"""The documents :func:`parse_db` reads, under ``compat_db/``; explain's catalogue, the
fit rules and the stack facts have their own loaders."""

Files = Mapping[str, Mapping[str, Any]]
"""Parsed TOML documents keyed by their path under ``compat_db/`` (``derived/torch.toml``)."""

T = TypeVar("T")


# -- the documents ---------------------------------------------------------------------


def _rows(doc: Fields, key: str, make: Callable[[Fields], T]) -> tuple[T, ...]:
    out = []
    for row in doc.tables(key, []):
        out.append(make(row))
        row.done()
    return tuple(out)


def _one_each(table: str, names: list[str], wanted: tuple[str, ...]) -> None:
    """The code reads one row per name in ``wanted``: none may be missing or twice."""
    for i, name in enumerate(names):
        if name in names[:i]:
            raise FieldError(f"{table}[{i}]: a second row for {name!r}")
    missing = [repr(w) for w in wanted if w not in names]
    if missing:
        raise FieldError(
            f"{table}: no row for {', '.join(missing)} (one row each for {', '.join(wanted)})"
        )


def _features(
    d: Fields, make: Callable[[Fields], Feature], wanted: tuple[str, ...]
) -> tuple[Feature, ...]:
    """One row per feature, or several that each name the ``bnb`` releases they hold for
    (a floor bitsandbytes' documentation changed between releases)."""
    rows = _rows(d, "feature", make)
    for i, r in enumerate(rows):
        same = [x for x in rows if x.feature == r.feature]
        if len(same) > 1 and any(x.bnb is None for x in same):
            raise FieldError(
                f"feature[{i}]: {r.feature!r} has several rows: each needs its bnb range"
            )
    missing = [repr(w) for w in wanted if w not in {r.feature for r in rows}]
    if missing:
        raise FieldError(
            f"feature: no row for {', '.join(missing)} (one row each for {', '.join(wanted)})"
        )
    return rows


def _os_floors(d: Fields) -> tuple[OsFloor, ...]:
    rows = _rows(d, "os_floor", rp.os_floor)
    _one_each("os_floor", [r.os for r in rows], FLOOR_OSES)
    return rows


class _Documents:
    """The parsed files, each read through one :class:`Fields` that remembers its keys."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.docs: dict[str, Fields] = {}

    def _doc(self, name: str) -> Fields:
        if name not in self.docs:
            if name not in self.files:
                raise CompatDBError(f"{name}: file is missing from compat_db/")
            self.docs[name] = self._guard(name, lambda: Fields(self.files[name], ""))
        return self.docs[name]

    @staticmethod
    def _guard(name: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except FieldError as exc:
            raise CompatDBError(f"{name}: {exc}") from None

    def read(self, name: str, build: Callable[[Fields], T]) -> T:
        """One value of document ``name``, built by ``build``."""
        doc = self._doc(name)
        return self._guard(name, lambda: build(doc))

    def rows(self, name: str, key: str, make: Callable[[Fields], T]) -> tuple[T, ...]:
        """Every row of the table array ``key`` of document ``name``; may be absent."""
        return self.read(name, lambda doc: _rows(doc, key, make))

    def done(self) -> None:
        """Reject top-level keys nobody read, in every document read."""
        for name, doc in self.docs.items():
            self._guard(name, doc.done)


def _meta(d: Fields) -> str:
    schema = d.text("schema")
    d.check(schema == DB_SCHEMA, "schema", f"expected {DB_SCHEMA!r}, got {schema!r}")
    values.documentary(d, "description")
    return d.text("version")


def _index_url(d: Fields) -> str:
    url = d.text("index_url")
    d.check("{variant}" in url, "index_url", "must contain {variant}")
    d.text("index_url_source")
    return url


def _windows_legacy(d: Fields) -> LegacyWindowsIndex:
    win = d.table("windows_legacy")
    added = []
    for i, item in enumerate(win.str_list("cuda_added", [])):
        first, _, tag = item.partition("=")
        if not tag:
            raise FieldError(f"{win.sub('cuda_added')}[{i}]: expected VERSION=TAG, got {item!r}")
        added.append((values.parse_version(win, "cuda_added", first), tag))
    index = LegacyWindowsIndex(
        url=win.text("index"),
        versions=tuple(win.str_list("versions")),
        cuda=tuple(win.str_list("cuda")),
        cuda_added=tuple(added),
        min_cc_70=tuple(win.str_list("min_cc_70", [])),
        source=values.source(win),
    )
    values.checked(win)
    values.documentary(win, "note")
    win.done()
    return index


def _xpu(docs: _Documents) -> XpuFacts:
    def torch_side(d: Fields) -> tuple[Fields, str]:
        t = d.table("xpu")
        return t, values.source(t)

    t, source = docs.read("torch.toml", torch_side)

    def bnb_side(d: Fields) -> tuple[SpecifierSet, str]:
        b = d.table("xpu")
        out = values.spec(b, "torch"), values.source(b)
        values.checked(b)
        b.done()
        return out

    bnb_torch, bnb_source = docs.read("bitsandbytes.toml", bnb_side)

    def build(_d: Fields) -> XpuFacts:
        facts = XpuFacts(
            torch=values.spec(t, "torch"),
            platforms=values.platforms(t, "platforms"),
            validated=tuple(t.str_list("validated")),
            linux_only=tuple(t.str_list("linux_only", [])),
            bnb_torch=bnb_torch,
            source=source,
            bnb_source=bnb_source,
        )
        values.checked(t)
        t.done()
        return facts

    return docs.read("torch.toml", build)


def parse_db(files: Files) -> CompatDB:
    """Build the DB from parsed TOML documents keyed by file name."""
    docs = _Documents(files)
    version = docs.read("meta.toml", _meta)
    legacy = docs.read("bitsandbytes.toml", _windows_legacy)
    db = CompatDB(
        version=version,
        toolkits=docs.rows("nvidia.toml", "toolkit", rp.toolkit),
        families=docs.rows("nvidia.toml", "family", rp.family),
        arch_changes=docs.rows("nvidia.toml", "arch_change", rp.arch_change),
        gpu_models=docs.rows("nvidia.toml", "gpu", rp.gpu_model),
        gpu_catalog=docs.rows("gpus.toml", "gpu", rp.gpu_entry),
        xpu=_xpu(docs),
        last_branches=docs.rows("nvidia.toml", "last_branch", rp.last_branch),
        torch_index_url=docs.read("torch.toml", _index_url),
        torch_indexes=docs.rows("torch.toml", "index", rp.torch_index),
        torch_builds=docs.rows("torch.toml", "build", rp.torch_build),
        torch_releases=docs.rows("derived/torch.toml", "release", rp.torch_release),
        loader_rules=docs.rows("bitsandbytes.toml", "loader_rule", rp.loader_rule),
        bnb_windows_legacy_index=legacy.url,
        bnb_windows_legacy_versions=legacy.versions,
        bnb_windows_legacy=legacy,
        os_floors=docs.read("bitsandbytes.toml", _os_floors),
        features=(
            *docs.read("nvidia.toml", lambda d: _features(d, rp.gpu_feature, GPU_FEATURES)),
            *docs.read("bitsandbytes.toml", lambda d: _features(d, rp.bnb_feature, BNB_FEATURES)),
        ),
        bnb_releases=docs.rows("derived/bitsandbytes.toml", "release", rp.bnb_release),
        bnb_libraries=docs.rows("derived/bitsandbytes.toml", "library", rp.bnb_library),
        packages=tuple(
            row
            for pkg in HF_PACKAGES
            for row in docs.rows(f"derived/{pkg}.toml", "release", rp.package_release)
        ),
        companions=tuple(
            row
            for pkg in COMPANIONS
            for row in docs.rows(f"derived/{pkg}.toml", "release", rp.companion_release)
        ),
        hf_constraints=docs.rows("huggingface.toml", "constraint", rp.hf_constraint),
        verified=docs.rows("combinations.toml", "verified", rp.verified),
        known_bad=docs.rows("combinations.toml", "known_bad", rp.known_bad),
    )
    docs.done()
    check_arch_support(db)
    check_gpu_catalog(db)
    return db
