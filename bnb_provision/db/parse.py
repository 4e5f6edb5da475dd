"""The compat DB's TOML documents, already parsed, to a validated :class:`CompatDB` (pure).

One constructor per row type reads its table through typed getters; any bad field is a
:class:`CompatDBError` whose message starts with the file and the field's path
(``torch.toml: build[1].sass[1]: expected an integer, got string``). Keys nobody reads
are errors too (``combinations.toml: verified[0].sourse: unknown field (did you mean
'source'?)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.db import values
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import (
    BNB_FEATURES,
    FLOOR_OSES,
    GPU_FEATURES,
    PLACEHOLDERS,
    ArchChange,
    BnbLibraryRow,
    BnbRelease,
    CudaFamily,
    CudaToolkit,
    ErrorPattern,
    Feature,
    FeatureName,
    GpuModel,
    HfConstraint,
    KnownBad,
    LoaderRule,
    OsFloor,
    PackageRelease,
    TorchBuild,
    TorchIndex,
    TorchRelease,
    Verified,
)
from bnb_provision.errors import CompatDBError

__all__ = ["DB_SCHEMA", "Files", "parse_db"]

DB_SCHEMA: Final = "bnb-provision.compat-db/1"
_HF_FILES: Final = ("transformers", "accelerate", "peft", "trl")

Files = Mapping[str, Mapping[str, Any]]
"""Parsed TOML documents keyed by their path under ``compat_db/`` (``derived/torch.toml``)."""

T = TypeVar("T")


# -- nvidia.toml -----------------------------------------------------------------------


def toolkit(r: Fields) -> CudaToolkit:
    return CudaToolkit(
        version=values.version(r, "version"),
        label=r.text("label"),
        linux=values.opt_version(r, "linux"),
        windows=values.opt_version(r, "windows"),
        branch=r.text("branch", None),
        source=values.source(r),
    )


def family(r: Fields) -> CudaFamily:
    return CudaFamily(
        major=r.integer("major"),
        linux=values.version(r, "linux"),
        windows=values.version(r, "windows"),
        source=values.source(r),
    )


def arch_change(r: Fields) -> ArchChange:
    return ArchChange(
        cuda=values.version(r, "cuda"),
        min_sm=r.integer("min_sm", None),
        added=tuple(r.int_list("added", [])),
        note=r.text("note"),
        source=values.source(r),
    )


def gpu_model(r: Fields) -> GpuModel:
    return GpuModel(
        pattern=values.regex(r, "pattern", re.IGNORECASE),
        cc=values.cc(r, "cc"),
        family=r.text("family"),
        jetson=r.flag("jetson", False),
        source=values.source(r),
    )


# -- torch.toml, derived/torch.toml ----------------------------------------------------


def torch_index(r: Fields) -> TorchIndex:
    return TorchIndex(
        torch=r.text("torch"),
        variants=tuple(r.str_list("variants")),
        proposed=tuple(r.str_list("proposed", [])),
        rocm=tuple(r.str_list("rocm", [])),
        source=values.source(r),
        checked=values.checked(r),
    )


def torch_build(r: Fields) -> TorchBuild:
    return TorchBuild(
        variant=r.text("variant"),
        torch=values.spec(r, "torch"),
        platforms=values.platforms(r, "platforms"),
        channel=r.text("channel", "any"),
        sass=tuple(r.int_list("sass")),
        ptx=tuple(r.int_list("ptx", [])),
        verified_in_binary=r.flag("binary", False),
        source=values.source(r),
        checked=values.checked(r),
        unverified_sass=tuple(r.int_list("unverified_sass", [])),
    )


def torch_release(r: Fields) -> TorchRelease:
    pypi = []
    for i, item in enumerate(r.str_list("pypi")):
        plat, _, variant = item.partition("=")
        if plat not in values.PLATFORMS or not variant:
            raise FieldError(f"{r.sub('pypi')}[{i}]: expected PLATFORM=VARIANT, got {item!r}")
        pypi.append((plat, variant))
    return TorchRelease(
        version=values.version(r, "version"),
        date=r.text("date"),
        requires_python=values.spec(r, "requires_python", ""),
        pythons=tuple(r.str_list("pythons")),
        pypi=tuple(pypi),
    )


# -- bitsandbytes.toml, derived/bitsandbytes.toml --------------------------------------


def loader_rule(r: Fields) -> LoaderRule:
    name = r.text("rule")
    r.check(
        name in {"exact", "same-major"}, "rule", f"expected 'exact' or 'same-major', got {name!r}"
    )
    below = values.opt_cc(r, "nocublaslt_below")
    return LoaderRule(
        bnb=values.spec(r, "bnb"),
        rule=name,
        nocublaslt_below=below,
        missing=r.text("missing"),
        source=values.source(r),
    )


def os_floor(r: Fields) -> OsFloor:
    return OsFloor(
        os=values.choice(r, "os", FLOOR_OSES, "OS"),
        bnb=values.version(r, "bnb"),
        note=r.text("note"),
        source=values.source(r),
        checked=values.checked(r),
    )


def _feature(r: Fields, names: tuple[FeatureName, ...]) -> Feature:
    return Feature(
        feature=values.choice(r, "feature", names, "feature"),
        min_cc=values.cc(r, "min_cc"),
        note=r.text("note", None),
        source=values.source(r),
        checked=values.opt_checked(r),
    )


def gpu_feature(r: Fields) -> Feature:
    return _feature(r, GPU_FEATURES)


def bnb_feature(r: Fields) -> Feature:
    return _feature(r, BNB_FEATURES)


def bnb_release(r: Fields) -> BnbRelease:
    return BnbRelease(
        version=values.version(r, "version"),
        date=r.text("date"),
        requires_python=values.spec(r, "requires_python", ""),
        torch=values.spec(r, "torch", ""),
        platforms=values.platforms(r, "platforms"),
    )


def bnb_library(r: Fields) -> BnbLibraryRow:
    return BnbLibraryRow(
        bnb=values.version(r, "bnb"),
        platform=values.platform(r, "platform"),
        file=r.text("file"),
        backend=r.text("backend"),
        version=r.text("version", None),
        sass=tuple(r.int_list("sass", [])),
        ptx=tuple(r.int_list("ptx", [])),
        rel_ptx=tuple(r.int_list("rel_ptx", [])),
    )


# -- huggingface.toml, derived/{transformers,accelerate,peft,trl}.toml -----------------


def package_release(r: Fields) -> PackageRelease:
    return PackageRelease(
        package=r.text("package"),
        version=values.version(r, "version"),
        date=r.text("date"),
        requires_python=values.spec(r, "requires_python", ""),
        requires=values.requires(r, "requires"),
    )


def hf_constraint(r: Fields) -> HfConstraint:
    return HfConstraint(
        package=r.text("package"),
        versions=values.spec(r, "versions"),
        requires=values.requires(r, "requires"),
        profiles=tuple(r.str_list("profiles", ["inference", "qlora"])),
        note=r.text("note"),
        source=values.source(r),
        checked=values.checked(r),
    )


# -- combinations.toml -----------------------------------------------------------------


def verified(r: Fields) -> Verified:
    pk = r.table("packages", {})
    return Verified(
        torch=values.version(r, "torch"),
        variant=r.text("variant"),
        bnb=values.version(r, "bnb"),
        platform=values.platform(r, "platform"),
        cc=values.cc(r, "cc"),
        gpu=r.text("gpu"),
        driver=values.version(r, "driver"),
        python=r.text("python"),
        packages=tuple(sorted((k, pk.text(k)) for k in list(pk.data))),
        evidence=r.text("evidence"),
        source=values.source(r),
        checked=values.checked(r),
    )


def known_bad(r: Fields) -> KnownBad:
    return KnownBad(
        bnb=values.spec(r, "bnb"),
        torch_variants=tuple(r.str_list("torch_variants", [])),
        platforms=tuple(r.str_list("platforms", [])),
        cc=tuple(r.str_list("cc", [])),
        effect=r.text("effect"),
        source=values.source(r),
        checked=values.checked(r),
    )


# -- errors.toml -----------------------------------------------------------------------


def error_pattern(r: Fields) -> ErrorPattern:
    pattern = values.regex(r, "pattern", re.IGNORECASE | re.MULTILINE)
    names = {*pattern.groupindex, *PLACEHOLDERS}
    return ErrorPattern(
        id=r.text("id"),
        pattern=pattern,
        category=values.category(r, "category"),
        title=r.text("title"),
        explanation=values.template(r, "explanation", names),
        fix=values.template(r, "fix", names),
        source=values.source(r),
    )


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
    rows = _rows(d, "feature", make)
    _one_each("feature", [r.feature for r in rows], wanted)
    return rows


def _os_floors(d: Fields) -> tuple[OsFloor, ...]:
    rows = _rows(d, "os_floor", os_floor)
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
    d.text("description", "")
    return d.text("version")


def _index_url(d: Fields) -> str:
    url = d.text("index_url")
    d.check("{variant}" in url, "index_url", "must contain {variant}")
    d.text("index_url_source")
    return url


def _windows_legacy(d: Fields) -> tuple[str, tuple[str, ...]]:
    win = d.table("windows_legacy")
    index, versions = win.text("index"), tuple(win.str_list("versions"))
    values.source(win)
    values.checked(win)
    win.text("note")
    win.done()
    return index, versions


def parse_db(files: Files) -> CompatDB:
    """Build the DB from parsed TOML documents keyed by file name."""
    docs = _Documents(files)
    version = docs.read("meta.toml", _meta)
    legacy_index, legacy_versions = docs.read("bitsandbytes.toml", _windows_legacy)
    db = CompatDB(
        version=version,
        toolkits=docs.rows("nvidia.toml", "toolkit", toolkit),
        families=docs.rows("nvidia.toml", "family", family),
        arch_changes=docs.rows("nvidia.toml", "arch_change", arch_change),
        gpu_models=docs.rows("nvidia.toml", "gpu", gpu_model),
        torch_index_url=docs.read("torch.toml", _index_url),
        torch_indexes=docs.rows("torch.toml", "index", torch_index),
        torch_builds=docs.rows("torch.toml", "build", torch_build),
        torch_releases=docs.rows("derived/torch.toml", "release", torch_release),
        loader_rules=docs.rows("bitsandbytes.toml", "loader_rule", loader_rule),
        bnb_windows_legacy_index=legacy_index,
        bnb_windows_legacy_versions=legacy_versions,
        os_floors=docs.read("bitsandbytes.toml", _os_floors),
        features=(
            *docs.read("nvidia.toml", lambda d: _features(d, gpu_feature, GPU_FEATURES)),
            *docs.read("bitsandbytes.toml", lambda d: _features(d, bnb_feature, BNB_FEATURES)),
        ),
        bnb_releases=docs.rows("derived/bitsandbytes.toml", "release", bnb_release),
        bnb_libraries=docs.rows("derived/bitsandbytes.toml", "library", bnb_library),
        packages=tuple(
            row
            for pkg in _HF_FILES
            for row in docs.rows(f"derived/{pkg}.toml", "release", package_release)
        ),
        hf_constraints=docs.rows("huggingface.toml", "constraint", hf_constraint),
        verified=docs.rows("combinations.toml", "verified", verified),
        known_bad=docs.rows("combinations.toml", "known_bad", known_bad),
        errors=docs.rows("errors.toml", "pattern", error_pattern) if "errors.toml" in files else (),
    )
    docs.done()
    return db
