"""One constructor per row type: a :class:`Fields` view of one TOML table row to its
frozen value (:mod:`bnb_provision.db.rows`), through the typed readers of
:mod:`bnb_provision.db.values`. A bad field raises :class:`FieldError` with its path.
"""

from __future__ import annotations

import re

from bnb_provision.core.cuda import is_rocm
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.db import values
from bnb_provision.db.builds import CompanionRelease
from bnb_provision.db.gpus import GpuEntry
from bnb_provision.db.rows import (
    BNB_FEATURES,
    CHANNELS,
    FLOOR_OSES,
    GPU_FEATURES,
    GPU_VENDORS,
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
    LastBranch,
    LoaderRule,
    OsFloor,
    PackageRelease,
    TorchBuild,
    TorchIndex,
    TorchRelease,
    Verified,
)
from bnb_provision.vocab import COMPANIONS, PLATFORMS, PROFILES, Platform

__all__ = [
    "arch_change",
    "bnb_feature",
    "bnb_library",
    "bnb_release",
    "companion_release",
    "error_pattern",
    "family",
    "gpu_entry",
    "gpu_feature",
    "gpu_model",
    "hf_constraint",
    "known_bad",
    "last_branch",
    "loader_rule",
    "os_floor",
    "package_release",
    "toolkit",
    "torch_build",
    "torch_index",
    "torch_release",
    "verified",
]

# -- nvidia.toml -----------------------------------------------------------------------


def toolkit(r: Fields) -> CudaToolkit:
    values.documentary(r, "label", "branch")  # "12.0 Update 1"; "R615" where no minimum
    return CudaToolkit(
        version=values.version(r, "version"),
        linux=values.opt_driver(r, "linux"),
        windows=values.opt_driver(r, "windows"),
        source=values.source(r),
    )


def family(r: Fields) -> CudaFamily:
    return CudaFamily(
        major=r.integer("major"),
        linux=values.driver(r, "linux"),
        windows=values.driver(r, "windows"),
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
    values.documentary(r, "family")  # "Blackwell"
    return GpuModel(
        pattern=values.regex(r, "pattern", re.IGNORECASE),
        cc=values.cc(r, "cc"),
        jetson=r.flag("jetson", False),
        source=values.source(r),
    )


# -- gpus.toml -------------------------------------------------------------------------

_GFX_RE = re.compile(r"gfx[0-9a-f]{3,5}")
_TARGET_KEY = {"nvidia": "cc", "amd": "gfx", "intel": "arch", "apple": "arch"}


def gpu_entry(r: Fields) -> GpuEntry:
    values.documentary(r, "family")  # "Ada"
    vendor = values.choice(r, "vendor", GPU_VENDORS, "vendor")
    wanted = _TARGET_KEY[vendor]
    for key in ("cc", "gfx", "arch"):
        if key != wanted and key in r.data:
            raise FieldError(f"{r.sub(key)}: a {vendor} GPU gives {wanted!r}, not {key!r}")
    if wanted not in r.data:
        raise FieldError(f"{r.sub(wanted)}: required field is missing (a {vendor} GPU gives it)")
    gfx = r.text("gfx", None)
    r.check(gfx is None or bool(_GFX_RE.fullmatch(gfx)), "gfx", f"expected gfxNNN, got {gfx!r}")
    memory = tuple(r.int_list("memory_mib"))
    r.check(all(m > 0 for m in memory), "memory_mib", "sizes are positive MiB")
    if "memory_source" in r.data:  # else `source` gives the memory too
        values.source_key(r, "memory_source")
        r.check(bool(memory), "memory_source", "no memory_mib to source")
    return GpuEntry(
        vendor=vendor,
        name=r.text("name"),
        aliases=tuple(r.str_list("aliases")),
        cc=values.opt_cc(r, "cc"),
        gfx=gfx,
        arch=r.text("arch", None),
        memory_mib=memory,
        source=values.source(r),
        checked=values.checked(r),
    )


# -- torch.toml, derived/torch.toml ----------------------------------------------------


def torch_index(r: Fields) -> TorchIndex:
    rocm = tuple(r.str_list("rocm", []))
    for i, variant in enumerate(rocm):
        r.check(is_rocm(variant), f"rocm[{i}]", f"expected rocmX.Y, got {variant!r}")
    return TorchIndex(
        torch=r.text("torch"),
        variants=tuple(r.str_list("variants")),
        proposed=tuple(r.str_list("proposed", [])),
        source=values.source(r),
        checked=values.checked(r),
        rocm=rocm,
    )


def torch_build(r: Fields) -> TorchBuild:
    r.flag("binary", False)  # documentary: the arch list was read from the binary itself
    return TorchBuild(
        variant=r.text("variant"),
        torch=values.spec(r, "torch"),
        platforms=values.platforms(r, "platforms"),
        channel=values.choice(r, "channel", CHANNELS, "channel") if "channel" in r.data else "any",
        sass=tuple(r.int_list("sass")),
        ptx=tuple(r.int_list("ptx", [])),
        source=values.source(r),
        checked=values.checked(r),
        unverified_sass=tuple(r.int_list("unverified_sass", [])),
    )


def torch_release(r: Fields) -> TorchRelease:
    pypi: list[tuple[Platform, str]] = []
    for i, item in enumerate(r.str_list("pypi")):
        plat, _, variant = item.partition("=")
        known = next((p for p in PLATFORMS if p == plat), None)
        if known is None or not variant:
            raise FieldError(f"{r.sub('pypi')}[{i}]: expected PLATFORM=VARIANT, got {item!r}")
        pypi.append((known, variant))
    values.documentary_date(r, "date")  # upload date
    return TorchRelease(
        version=values.version(r, "version"),
        requires_python=values.spec(r, "requires_python", ""),
        pythons=tuple(r.str_list("pythons")),
        pypi=tuple(pypi),
        macos=values.macos_floors(r, "macos"),
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
    values.documentary(r, "note")
    return OsFloor(
        os=values.choice(r, "os", FLOOR_OSES, "OS"),
        bnb=values.version(r, "bnb"),
        source=values.source(r),
        checked=values.checked(r),
    )


def _feature(r: Fields, names: tuple[FeatureName, ...]) -> Feature:
    values.documentary(r, "note")
    return Feature(
        feature=values.choice(r, "feature", names, "feature"),
        min_cc=values.cc(r, "min_cc"),
        source=values.source(r),
        checked=values.opt_checked(r),
        bnb=values.spec(r, "bnb") if "bnb" in r.data else None,
    )


def last_branch(r: Fields) -> LastBranch:
    values.documentary(r, "note")
    return LastBranch(
        below_cc=values.cc(r, "below_cc"),
        branch=r.integer("branch"),
        source=values.source(r),
        checked=values.checked(r),
    )


def gpu_feature(r: Fields) -> Feature:
    return _feature(r, GPU_FEATURES)


def bnb_feature(r: Fields) -> Feature:
    return _feature(r, BNB_FEATURES)


def bnb_release(r: Fields) -> BnbRelease:
    values.documentary_date(r, "date")  # upload date
    return BnbRelease(
        version=values.version(r, "version"),
        requires_python=values.spec(r, "requires_python", ""),
        torch=values.spec(r, "torch", ""),
        platforms=values.wheel_platforms(r, "platforms"),
        macos=values.opt_version(r, "macos"),
    )


def bnb_library(r: Fields) -> BnbLibraryRow:
    return BnbLibraryRow(
        bnb=values.version(r, "bnb"),
        platform=values.wheel_platform(r, "platform"),
        file=r.text("file"),
        backend=r.text("backend"),
        version=r.text("version", None),
        sass=tuple(r.int_list("sass", [])),
        ptx=tuple(r.int_list("ptx", [])),
        rel_ptx=tuple(r.int_list("rel_ptx", [])),
        gfx=tuple(r.str_list("gfx", [])),
    )


# -- huggingface.toml, derived/{transformers,accelerate,peft,trl}.toml -----------------


def package_release(r: Fields) -> PackageRelease:
    values.documentary_date(r, "date")  # upload date
    return PackageRelease(
        package=r.text("package"),
        version=values.version(r, "version"),
        requires_python=values.spec(r, "requires_python", ""),
        requires=values.requires(r, "requires"),
    )


def companion_release(r: Fields) -> CompanionRelease:
    values.documentary_date(r, "date")  # upload date
    return CompanionRelease(
        package=values.choice(r, "package", COMPANIONS, "companion"),
        version=values.version(r, "version"),
        requires_python=values.spec(r, "requires_python", ""),
        torch=values.spec(r, "torch") if "torch" in r.data else None,
        macos=values.macos_floors(r, "macos"),
    )


def hf_constraint(r: Fields) -> HfConstraint:
    return HfConstraint(
        package=r.text("package"),
        versions=values.spec(r, "versions"),
        requires=values.requires(r, "requires"),
        profiles=values.optional_choices(r, "profiles", PROFILES, "profile", PROFILES),
        note=r.text("note"),
        source=values.source(r),
        checked=values.checked(r),
    )


# -- combinations.toml -----------------------------------------------------------------


def verified(r: Fields) -> Verified:
    # documentary: the Python and the Hugging Face versions of the verified run
    values.documentary(r, "python")
    pk = r.table("packages", {})
    values.documentary(pk, *pk.data)
    return Verified(
        torch=values.version(r, "torch"),
        variant=r.text("variant"),
        bnb=values.version(r, "bnb"),
        platform=values.platform(r, "platform"),
        cc=values.cc(r, "cc"),
        gpu=r.text("gpu"),
        driver=values.driver(r, "driver"),
        evidence=r.text("evidence"),
        source=values.source(r),
        checked=values.checked(r),
    )


def known_bad(r: Fields) -> KnownBad:
    return KnownBad(
        bnb=values.spec(r, "bnb"),
        torch_variants=tuple(r.str_list("torch_variants", [])),
        platforms=values.platforms(r, "platforms", []),
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
