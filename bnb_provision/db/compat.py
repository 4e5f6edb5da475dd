"""The compatibility database: ``compat_db/*.toml`` loaded into frozen values.

Every row carries its public ``source``; hand-curated rows also carry the date
they were ``checked``. Rows under ``compat_db/derived/`` are written by
``scripts/update_compat_db.py`` from PyPI and the wheels themselves.

:func:`load_db` validates everything and raises :class:`CompatDBError` with
the path of the bad field (``bitsandbytes.toml: loader_rule[1].rule: ...``).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import Coverage, CudaVersion, covers
from bnb_provision.core.data import data_dir
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import CompatDBError

__all__ = [
    "DB_SCHEMA",
    "PLATFORMS",
    "ArchChange",
    "BnbLibraryRow",
    "BnbRelease",
    "CompatDB",
    "CudaFamily",
    "CudaToolkit",
    "ErrorPattern",
    "GpuModel",
    "HfConstraint",
    "KnownBad",
    "LoaderRule",
    "PackageRelease",
    "TorchBuild",
    "TorchIndex",
    "TorchRelease",
    "Verified",
    "load_db",
    "parse_db",
]

DB_SCHEMA: Final = "bnb-provision.compat-db/1"
PLATFORMS: Final = (
    "linux-x86_64",
    "linux-aarch64",
    "windows-x86_64",
    "windows-aarch64",
    "macos-arm64",
    "macos-x86_64",
)
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
T = TypeVar("T")


# ---------------------------------------------------------------------------
# rows


@dataclass(frozen=True, kw_only=True, slots=True)
class CudaToolkit:
    """A CUDA toolkit release and the driver it needs (NVIDIA's table 3)."""

    version: Version  # 12.8 (GA) / 12.8.1 (Update 1)
    label: str
    linux: Version | None
    windows: Version | None
    branch: str | None
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CudaFamily:
    """Minor-version compatibility: any toolkit of ``major`` runs on this driver."""

    major: int
    linux: Version
    windows: Version
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchChange:
    cuda: Version
    min_sm: int | None
    added: tuple[int, ...]
    note: str
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuModel:
    """GPU names to compute capability (``pattern`` is a case-insensitive regex)."""

    pattern: str
    cc: tuple[int, int]
    family: str
    jetson: bool
    source: str

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name, re.IGNORECASE) is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchRelease:
    """A torch release on PyPI (derived)."""

    version: Version
    date: str
    requires_python: SpecifierSet
    pythons: tuple[str, ...]
    pypi: tuple[tuple[str, str], ...]  # (platform, variant) PyPI serves

    def pypi_variant(self, platform: str) -> str | None:
        return next((v for p, v in self.pypi if p == platform), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchIndex:
    """The CUDA variants a torch minor publishes on download.pytorch.org."""

    torch: str  # "2.8"
    variants: tuple[str, ...]
    proposed: tuple[str, ...]  # announced but not verified
    rocm: tuple[str, ...]
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchBuild:
    """The kernels compiled into one torch variant for a range of releases."""

    variant: str
    torch: SpecifierSet
    platforms: tuple[str, ...]
    channel: str  # "index" (download.pytorch.org) | "pypi" | "any"
    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    verified_in_binary: bool
    source: str
    checked: str
    unverified_sass: tuple[int, ...] = ()

    def covers(self, cc: tuple[int, int]) -> Coverage | None:
        return covers(cc, sass=self.sass, ptx=self.ptx)


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbRelease:
    version: Version
    date: str
    requires_python: SpecifierSet
    torch: SpecifierSet
    platforms: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbLibraryRow:
    bnb: Version
    platform: str
    file: str
    backend: str
    version: str | None
    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    rel_ptx: tuple[int, ...]

    def covers(self, cc: tuple[int, int]) -> Coverage | None:
        return covers(cc, sass=self.sass, ptx=(*self.ptx, *self.rel_ptx))


@dataclass(frozen=True, kw_only=True, slots=True)
class LoaderRule:
    bnb: SpecifierSet
    rule: str  # exact | same-major
    nocublaslt_below: tuple[int, int] | None
    missing: str  # what happens when no library fits
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageRelease:
    """A release of transformers/accelerate/peft/trl (derived)."""

    package: str
    version: Version
    date: str
    requires_python: SpecifierSet
    requires: tuple[tuple[str, SpecifierSet], ...]

    def requirement(self, name: str) -> SpecifierSet | None:
        return next((s for n, s in self.requires if n == name), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class HfConstraint:
    """A curated rule: ``package`` in ``versions`` needs ``requires``."""

    package: str
    versions: SpecifierSet
    requires: tuple[tuple[str, SpecifierSet], ...]
    profiles: tuple[str, ...]
    note: str
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Verified:
    """A combination seen working on real hardware, with its evidence."""

    torch: Version
    variant: str
    bnb: Version
    platform: str
    cc: tuple[int, int]
    gpu: str
    driver: Version
    python: str
    packages: tuple[tuple[str, str], ...]
    evidence: str
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownBad:
    bnb: SpecifierSet
    torch_variants: tuple[str, ...]
    platforms: tuple[str, ...]
    cc: tuple[str, ...]  # "7.0" etc.; empty = all
    effect: str
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorPattern:
    id: str
    pattern: re.Pattern[str]
    category: str
    title: str
    explanation: str
    fix: str
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CompatDB:
    version: str
    toolkits: tuple[CudaToolkit, ...]
    families: tuple[CudaFamily, ...]
    arch_changes: tuple[ArchChange, ...]
    gpu_models: tuple[GpuModel, ...]
    torch_releases: tuple[TorchRelease, ...]
    torch_indexes: tuple[TorchIndex, ...]
    torch_builds: tuple[TorchBuild, ...]
    torch_index_url: str
    bnb_releases: tuple[BnbRelease, ...]
    bnb_libraries: tuple[BnbLibraryRow, ...]
    loader_rules: tuple[LoaderRule, ...]
    bnb_windows_legacy_index: str
    bnb_windows_legacy_versions: tuple[str, ...]
    bnb_features: tuple[tuple[str, tuple[int, int], str], ...]  # (feature, min cc, source)
    packages: tuple[PackageRelease, ...]
    hf_constraints: tuple[HfConstraint, ...]
    verified: tuple[Verified, ...]
    known_bad: tuple[KnownBad, ...]
    errors: tuple[ErrorPattern, ...]
    _libs: dict[tuple[Version, str], tuple[BnbLibraryRow, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _memo: dict[tuple[object, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    # -- look-ups ------------------------------------------------------

    def loader_rule(self, bnb_version: str | Version) -> str:
        return self.loader_rule_row(bnb_version).rule

    def loader_rule_row(self, bnb_version: str | Version) -> LoaderRule:
        v = Version(str(bnb_version))
        for row in self.loader_rules:
            if row.bnb.contains(v, prereleases=True):
                return row
        return self.loader_rules[-1]

    def gpu_cc(self, name: str) -> GpuModel | None:
        for m in self.gpu_models:
            if m.matches(name):
                return m
        return None

    def index_url(self, variant: str) -> str:
        return self.torch_index_url.format(variant=variant)

    def torch_index(self, torch: Version) -> TorchIndex | None:
        minor = f"{torch.major}.{torch.minor}"
        return next((i for i in self.torch_indexes if i.torch == minor), None)

    def torch_build(
        self, variant: str, torch: Version, platform: str, channel: str
    ) -> TorchBuild | None:
        key = ("build", variant, torch, platform, channel)
        if key not in self._memo:
            self._memo[key] = next(
                (
                    b
                    for b in self.torch_builds
                    if b.variant == variant
                    and platform in b.platforms
                    and b.channel in (channel, "any")
                    and b.torch.contains(torch)
                ),
                None,
            )
        return self._memo[key]  # type: ignore[no-any-return]

    def bnb_libs(self, bnb: Version, platform: str) -> tuple[BnbLibraryRow, ...]:
        """The native libraries a bitsandbytes wheel ships for ``platform``.

        Releases before 0.43 shipped one ``py3-none-any`` wheel holding Linux
        x86_64 libraries only.
        """
        if not self._libs:
            index: dict[tuple[Version, str], list[BnbLibraryRow]] = {}
            for r in self.bnb_libraries:
                plat = "linux-x86_64" if r.platform == "any" else r.platform
                index.setdefault((r.bnb, plat), []).append(r)
            self._libs.update({k: tuple(v) for k, v in index.items()})
        return self._libs.get((bnb, platform), ())

    def package_releases(self, package: str) -> tuple[PackageRelease, ...]:
        return tuple(r for r in self.packages if r.package == package)

    def min_driver(self, cuda: str, os_name: str) -> tuple[Version | None, str]:
        """The oldest driver that runs a CUDA ``X.Y`` build, and why.

        Minor-version compatibility lets any driver of the family's floor run
        any toolkit of that major (https://docs.nvidia.com/deploy/cuda-compatibility/).
        """
        key = ("min_driver", cuda, os_name)
        if key not in self._memo:
            self._memo[key] = self._min_driver(cuda, os_name)
        return self._memo[key]  # type: ignore[no-any-return]

    def _min_driver(self, cuda: str, os_name: str) -> tuple[Version | None, str]:
        major = CudaVersion.parse(cuda).major
        fam = next((f for f in self.families if f.major == major), None)
        if fam is None:
            return None, f"no driver floor is known for CUDA {major}.x"
        floor = fam.windows if os_name == "windows" else fam.linux
        return floor, f"CUDA {major}.x minor-version compatibility needs driver >= {floor}"

    def max_cuda_for_driver(self, driver: Version, os_name: str) -> Version | None:
        best = None
        for t in self.toolkits:
            need = t.windows if os_name == "windows" else t.linux
            if need is not None and driver >= need and (best is None or t.version > best):
                best = t.version
        return best


# ---------------------------------------------------------------------------
# loading


def _toml_load(path: Path) -> dict[str, Any]:
    return toml_loads(path.read_text(encoding="utf-8"))


def _version(f: Fields, key: str, default: Any = ...) -> Any:
    text = f.text(key) if default is ... else f.text(key, default)
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        raise FieldError(f"{f.sub(key)}: not a version: {text!r}") from None


def _spec(f: Fields, key: str, default: str | None = None) -> SpecifierSet:
    text = f.text(key) if default is None else f.text(key, default)
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise FieldError(f"{f.sub(key)}: not a version specifier: {text!r}") from None


def _cc(f: Fields, key: str) -> tuple[int, int]:
    text = f.text(key)
    m = re.fullmatch(r"(\d+)\.(\d+)", text)
    f.check(m is not None, key, f'expected a compute capability "X.Y", got {text!r}')
    assert m is not None
    return int(m.group(1)), int(m.group(2))


def _source(f: Fields) -> str:
    src = str(f.text("source"))
    f.check(
        bool(re.match(r"^(https?://|derived:|\S+\.md\b|docs/)", src)),
        "source",
        f"expected a public URL (or derived:/docs/ reference), got {src!r}",
    )
    return src


def _checked(f: Fields) -> str:
    d = str(f.text("checked"))
    f.check(bool(_DATE_RE.match(d)), "checked", f"expected a date YYYY-MM-DD, got {d!r}")
    return d


def _platforms(f: Fields, key: str) -> tuple[str, ...]:
    plats = f.str_list(key)
    for i, p in enumerate(plats):
        if p not in (*PLATFORMS, "any"):
            raise FieldError(
                f"{f.sub(key)}[{i}]: unknown platform {p!r} (one of {', '.join(PLATFORMS)})"
            )
    return tuple(plats)


def _platform(f: Fields, key: str) -> str:
    p = f.text(key)
    f.check(
        p in (*PLATFORMS, "any"), key, f"unknown platform {p!r} (one of {', '.join(PLATFORMS)})"
    )
    return str(p)


def _requires(f: Fields, key: str) -> tuple[tuple[str, SpecifierSet], ...]:
    out = []
    for i, text in enumerate(f.str_list(key, [])):
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", text)
        try:
            if m is None:
                raise InvalidSpecifier(text)
            out.append((m.group(1).lower(), SpecifierSet(m.group(2))))
        except InvalidSpecifier:
            raise FieldError(f"{f.sub(key)}[{i}]: not a requirement: {text!r}") from None
    return tuple(out)


def _rows(doc: Fields, key: str, make: Callable[[Fields], T]) -> tuple[T, ...]:
    out = []
    for row in doc.tables(key, []):
        out.append(make(row))
        row.done()
    return tuple(out)


def parse_db(files: dict[str, dict[str, Any]]) -> CompatDB:
    """Build the DB from parsed TOML documents keyed by file name (pure)."""

    def doc(name: str) -> Fields:
        if name not in files:
            raise CompatDBError(f"{name}: file is missing from compat_db/")
        return Fields(files[name], "")

    def guard(name: str, build: Callable[[Fields], T]) -> T:
        try:
            d = doc(name)
            value = build(d)
            d.done()
        except FieldError as exc:
            raise CompatDBError(f"{name}: {exc}") from None
        return value

    def meta(d: Fields) -> str:
        schema = d.text("schema")
        d.check(schema == DB_SCHEMA, "schema", f"expected {DB_SCHEMA!r}, got {schema!r}")
        d.text("description", "")
        return str(d.text("version"))

    version = guard("meta.toml", meta)

    def nvidia(d: Fields) -> tuple[Any, ...]:
        toolkits = _rows(
            d,
            "toolkit",
            lambda r: CudaToolkit(
                version=_version(r, "version"),
                label=r.text("label"),
                linux=_version(r, "linux", None),
                windows=_version(r, "windows", None),
                branch=r.text("branch", None),
                source=_source(r),
            ),
        )
        families = _rows(
            d,
            "family",
            lambda r: CudaFamily(
                major=r.integer("major"),
                linux=_version(r, "linux"),
                windows=_version(r, "windows"),
                source=_source(r),
            ),
        )
        changes = _rows(
            d,
            "arch_change",
            lambda r: ArchChange(
                cuda=_version(r, "cuda"),
                min_sm=r.integer("min_sm", None),
                added=tuple(r.int_list("added", [])),
                note=r.text("note"),
                source=_source(r),
            ),
        )
        gpus = _rows(
            d,
            "gpu",
            lambda r: GpuModel(
                pattern=r.text("pattern"),
                cc=_cc(r, "cc"),
                family=r.text("family"),
                jetson=r.flag("jetson", False),
                source=_source(r),
            ),
        )
        for i, g in enumerate(gpus):
            try:
                re.compile(g.pattern)
            except re.error as exc:
                raise FieldError(f"gpu[{i}].pattern: not a regular expression ({exc})") from None
        return toolkits, families, changes, gpus

    toolkits, families, changes, gpus = guard("nvidia.toml", nvidia)

    def torch_curated(d: Fields) -> tuple[Any, ...]:
        url = d.text("index_url")
        d.check("{variant}" in url, "index_url", "must contain {variant}")
        d.text("index_url_source")
        indexes = _rows(
            d,
            "index",
            lambda r: TorchIndex(
                torch=r.text("torch"),
                variants=tuple(r.str_list("variants")),
                proposed=tuple(r.str_list("proposed", [])),
                rocm=tuple(r.str_list("rocm", [])),
                source=_source(r),
                checked=_checked(r),
            ),
        )
        builds = _rows(
            d,
            "build",
            lambda r: TorchBuild(
                variant=r.text("variant"),
                torch=_spec(r, "torch"),
                platforms=_platforms(r, "platforms"),
                channel=r.text("channel", "any"),
                sass=tuple(r.int_list("sass")),
                ptx=tuple(r.int_list("ptx", [])),
                verified_in_binary=r.flag("binary", False),
                source=_source(r),
                checked=_checked(r),
                unverified_sass=tuple(r.int_list("unverified_sass", [])),
            ),
        )
        return url, indexes, builds

    index_url, indexes, builds = guard("torch.toml", torch_curated)

    def torch_derived(d: Fields) -> tuple[TorchRelease, ...]:
        def make(r: Fields) -> TorchRelease:
            pypi = []
            for i, item in enumerate(r.str_list("pypi")):
                plat, _, variant = item.partition("=")
                if plat not in PLATFORMS or not variant:
                    raise FieldError(
                        f"{r.sub('pypi')}[{i}]: expected PLATFORM=VARIANT, got {item!r}"
                    )
                pypi.append((plat, variant))
            return TorchRelease(
                version=_version(r, "version"),
                date=r.text("date"),
                requires_python=_spec(r, "requires_python", ""),
                pythons=tuple(r.str_list("pythons")),
                pypi=tuple(pypi),
            )

        return _rows(d, "release", make)

    torch_releases = guard("derived/torch.toml", torch_derived)

    def bnb_curated(d: Fields) -> tuple[Any, ...]:
        def rule(r: Fields) -> LoaderRule:
            name = r.text("rule")
            r.check(
                name in {"exact", "same-major"},
                "rule",
                f"expected 'exact' or 'same-major', got {name!r}",
            )
            below = r.text("nocublaslt_below", None)
            return LoaderRule(
                bnb=_spec(r, "bnb"),
                rule=name,
                nocublaslt_below=tuple(int(x) for x in below.split(".")) if below else None,  # type: ignore[arg-type]
                missing=r.text("missing"),
                source=_source(r),
            )

        rules = _rows(d, "loader_rule", rule)
        win = d.table("windows_legacy")
        assert win is not None
        legacy_url = win.text("index")
        legacy_versions = tuple(win.str_list("versions"))
        _source(win)
        _checked(win)
        win.text("note")
        win.done()
        feats = _rows(d, "feature", lambda r: (r.text("feature"), _cc(r, "min_cc"), _source(r)))
        return rules, legacy_url, legacy_versions, feats

    rules, legacy_url, legacy_versions, feats = guard("bitsandbytes.toml", bnb_curated)

    def bnb_derived(d: Fields) -> tuple[Any, ...]:
        releases = _rows(
            d,
            "release",
            lambda r: BnbRelease(
                version=_version(r, "version"),
                date=r.text("date"),
                requires_python=_spec(r, "requires_python", ""),
                torch=_spec(r, "torch", ""),
                platforms=_platforms(r, "platforms"),
            ),
        )
        libs = _rows(
            d,
            "library",
            lambda r: BnbLibraryRow(
                bnb=_version(r, "bnb"),
                platform=_platform(r, "platform"),
                file=r.text("file"),
                backend=r.text("backend"),
                version=r.text("version", None),
                sass=tuple(r.int_list("sass", [])),
                ptx=tuple(r.int_list("ptx", [])),
                rel_ptx=tuple(r.int_list("rel_ptx", [])),
            ),
        )
        return releases, libs

    bnb_releases, bnb_libs = guard("derived/bitsandbytes.toml", bnb_derived)

    packages: list[PackageRelease] = []
    for pkg in ("transformers", "accelerate", "peft", "trl"):
        packages += guard(
            f"derived/{pkg}.toml",
            lambda d: _rows(
                d,
                "release",
                lambda r: PackageRelease(
                    package=r.text("package"),
                    version=_version(r, "version"),
                    date=r.text("date"),
                    requires_python=_spec(r, "requires_python", ""),
                    requires=_requires(r, "requires"),
                ),
            ),
        )

    hf = guard(
        "huggingface.toml",
        lambda d: _rows(
            d,
            "constraint",
            lambda r: HfConstraint(
                package=r.text("package"),
                versions=_spec(r, "versions"),
                requires=_requires(r, "requires"),
                profiles=tuple(r.str_list("profiles", ["inference", "qlora"])),
                note=r.text("note"),
                source=_source(r),
                checked=_checked(r),
            ),
        ),
    )

    def combos(d: Fields) -> tuple[Any, ...]:
        def verified(r: Fields) -> Verified:
            pk = r.table("packages", {})
            assert pk is not None
            pairs = tuple(sorted((k, pk.text(k)) for k in list(pk.data)))
            return Verified(
                torch=_version(r, "torch"),
                variant=r.text("variant"),
                bnb=_version(r, "bnb"),
                platform=_platform(r, "platform"),
                cc=_cc(r, "cc"),
                gpu=r.text("gpu"),
                driver=_version(r, "driver"),
                python=r.text("python"),
                packages=pairs,
                evidence=r.text("evidence"),
                source=_source(r),
                checked=_checked(r),
            )

        good = _rows(d, "verified", verified)
        bad = _rows(
            d,
            "known_bad",
            lambda r: KnownBad(
                bnb=_spec(r, "bnb"),
                torch_variants=tuple(r.str_list("torch_variants", [])),
                platforms=tuple(r.str_list("platforms", [])),
                cc=tuple(r.str_list("cc", [])),
                effect=r.text("effect"),
                source=_source(r),
                checked=_checked(r),
            ),
        )
        return good, bad

    verified, known_bad = guard("combinations.toml", combos)

    def errors(d: Fields) -> tuple[ErrorPattern, ...]:
        def make(r: Fields) -> ErrorPattern:
            text = r.text("pattern")
            try:
                pattern = re.compile(text, re.IGNORECASE | re.MULTILINE)
            except re.error as exc:
                raise FieldError(f"{r.sub('pattern')}: not a regular expression ({exc})") from None
            return ErrorPattern(
                id=r.text("id"),
                pattern=pattern,
                category=r.text("category"),
                title=r.text("title"),
                explanation=r.text("explanation"),
                fix=r.text("fix"),
                source=_source(r),
            )

        return _rows(d, "pattern", make)

    error_patterns = guard("errors.toml", errors) if "errors.toml" in files else ()

    return CompatDB(
        version=version,
        toolkits=toolkits,
        families=families,
        arch_changes=changes,
        gpu_models=gpus,
        torch_releases=torch_releases,
        torch_indexes=indexes,
        torch_builds=builds,
        torch_index_url=index_url,
        bnb_releases=bnb_releases,
        bnb_libraries=bnb_libs,
        loader_rules=rules,
        bnb_windows_legacy_index=legacy_url,
        bnb_windows_legacy_versions=legacy_versions,
        bnb_features=feats,
        packages=tuple(packages),
        hf_constraints=hf,
        verified=verified,
        known_bad=known_bad,
        errors=error_patterns,
    )


def read_db_files(root: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.toml")):
        rel = path.relative_to(root).as_posix()
        try:
            files[rel] = _toml_load(path)
        except (OSError, ValueError) as exc:
            raise CompatDBError(f"{rel}: cannot be read as TOML ({exc})") from exc
    return files


def _db_signature(root: Path) -> str:
    """Every DB file's path, size and mtime: a changed DB gets another cache entry."""
    parts = [str(root.resolve())]
    for path in sorted(root.rglob("*.toml")):
        st = path.stat()
        parts.append(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\0".join(parts)


def _read_files_cached(folder: Path) -> dict[str, dict[str, Any]]:
    """The DB files as plain data, from the cache when this code and these files made it.

    The cache holds only what TOML parsing gave (JSON); every load validates it again.
    """
    from bnb_provision.core import cache

    try:
        key = cache.key_for("compat-db", _db_signature(folder)) if cache.enabled() else None
    except OSError:
        key = None
    data = cache.read_json("compat-db", key) if key else None
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        return data
    files = read_db_files(folder)
    if key:
        with contextlib.suppress(TypeError, ValueError):  # a value JSON cannot hold
            cache.write_json("compat-db", key, files, keep=4)
    return files


@functools.cache
def load_db(root: Path | None = None) -> CompatDB:
    """Load and validate the compat DB (the shipped one unless ``root`` is given).

    The parsed files are cached as plain data (``BNB_PROVISION_NO_CACHE=1`` turns that
    off); validation runs on every load, so a cached value passes the same checks.
    """
    folder = root or data_dir("compat_db")
    return parse_db(_read_files_cached(folder))
