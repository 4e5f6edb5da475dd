"""The compat DB's rows: one frozen value per row of a ``compat_db/*.toml`` table.

Every curated row carries its public ``source``, most also the date it was ``checked``;
rows derived from PyPI (``compat_db/derived/``) carry neither: their file names its source.
:mod:`bnb_provision.db.row_parsers` builds them, :class:`bnb_provision.db.model.CompatDB`
holds them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import Coverage, CudaVersion, covers
from bnb_provision.vocab import Category, Platform, Profile

__all__ = [
    "BNB_FEATURES",
    "CHANNELS",
    "FLOOR_OSES",
    "GPU_FEATURES",
    "GPU_VENDORS",
    "PLACEHOLDERS",
    "ArchChange",
    "BnbLibraryRow",
    "BnbRelease",
    "Channel",
    "CudaFamily",
    "CudaToolkit",
    "ErrorPattern",
    "Feature",
    "FeatureName",
    "FloorOs",
    "GpuModel",
    "GpuVendor",
    "HfConstraint",
    "KnownBad",
    "LastBranch",
    "LoaderRule",
    "OsFloor",
    "PackageRelease",
    "TorchBuild",
    "TorchIndex",
    "TorchRelease",
    "Verified",
    "WheelPlatform",
]

Channel = Literal["index", "pypi", "any"]
"""Where a torch build comes from: download.pytorch.org, PyPI, or either."""
CHANNELS: Final[tuple[Channel, ...]] = get_args(Channel)
WheelPlatform = Literal[Platform, "any"]
"""A wheel's platform: ``any`` is a pure-Python wheel (bitsandbytes before 0.43 shipped its
Linux x86_64 libraries in one)."""
GpuFeatureName = Literal["bf16"]
"""A GPU feature whose compute-capability floor ``nvidia.toml`` holds."""
GPU_FEATURES: Final[tuple[GpuFeatureName, ...]] = get_args(GpuFeatureName)
BnbFeatureName = Literal["llm_int8", "nf4_fp4", "optimizers_8bit"]
"""A bitsandbytes feature whose compute-capability floor ``bitsandbytes.toml`` holds."""
BNB_FEATURES: Final[tuple[BnbFeatureName, ...]] = get_args(BnbFeatureName)
FeatureName = Literal[GpuFeatureName, BnbFeatureName]
FloorOs = Literal["windows", "macos"]
"""An OS bitsandbytes had no official wheels for at first."""
FLOOR_OSES: Final[tuple[FloorOs, ...]] = get_args(FloorOs)
GpuVendor = Literal["nvidia", "amd", "intel", "apple"]
"""Who makes a GPU in the catalogue (``gpus.toml``)."""
GPU_VENDORS: Final[tuple[GpuVendor, ...]] = get_args(GpuVendor)


# -- nvidia.toml, bitsandbytes.toml ----------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Feature:
    """The oldest compute capability with a feature (bf16 in nvidia.toml, the
    bitsandbytes features in bitsandbytes.toml)."""

    feature: FeatureName
    min_cc: tuple[int, int]
    source: str
    checked: str | None
    bnb: SpecifierSet | None = None  # the bitsandbytes releases whose documentation says so


@dataclass(frozen=True, kw_only=True, slots=True)
class LastBranch:
    """GPUs below ``below_cc`` run NVIDIA drivers up to branch ``branch`` only (the
    legacy branch that keeps them): no newer driver, so no newer CUDA, reaches them."""

    below_cc: tuple[int, int]
    branch: int  # 580 for R580
    source: str
    checked: str


# -- nvidia.toml -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CudaToolkit:
    """A CUDA toolkit release and the driver it needs (NVIDIA's table 3)."""

    version: Version  # 12.8 (GA) / 12.8.1 (Update 1)
    linux: Version | None  # None: NVIDIA publishes no minimum (only a branch)
    windows: Version | None
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
    """GPU architectures a CUDA toolkit added, or the oldest one it still targets."""

    cuda: Version
    min_sm: int | None
    added: tuple[int, ...]
    note: str
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuModel:
    """GPU names to compute capability (``pattern`` is a case-insensitive regex)."""

    pattern: re.Pattern[str]
    cc: tuple[int, int]
    jetson: bool
    source: str

    def matches(self, name: str) -> bool:
        return self.pattern.search(name) is not None


# -- torch.toml and derived/torch.toml -------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchRelease:
    """A torch release on PyPI (derived)."""

    version: Version
    requires_python: SpecifierSet
    pythons: tuple[str, ...]
    pypi: tuple[tuple[Platform, str], ...]  # (platform, variant) PyPI serves
    macos: tuple[tuple[str, Version], ...] = ()  # (Python, oldest macOS of its arm64 wheel)

    def pypi_variant(self, platform: str) -> str | None:
        return next((v for p, v in self.pypi if p == platform), None)

    def macos_floor(self, python: str) -> Version | None:
        """The oldest macOS release the arm64 wheel for ``python`` installs on."""
        return next((v for py, v in self.macos if py == python), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchIndex:
    """The CUDA variants a torch minor publishes on download.pytorch.org."""

    torch: str  # "2.8"
    variants: tuple[str, ...]
    proposed: tuple[str, ...]  # announced but not verified
    source: str
    checked: str
    rocm: tuple[str, ...] = ()  # rocm6.4: ROCm variants (Linux x86_64)


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchBuild:
    """The kernels compiled into one torch variant for a range of releases."""

    variant: str
    torch: SpecifierSet
    platforms: tuple[Platform, ...]
    channel: Channel
    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    source: str
    checked: str
    unverified_sass: tuple[int, ...] = ()

    @property
    def toolkit(self) -> CudaVersion | None:
        """The CUDA that compiled the build (and emitted its PTX): ``cu132`` -> 13.2."""
        return CudaVersion.from_variant(self.variant)

    def covers(
        self, cc: tuple[int, int], driver_cuda: CudaVersion | None = None
    ) -> Coverage | None:
        """:func:`~bnb_provision.core.cuda.covers`; with ``driver_cuda`` (the newest CUDA
        the driver supports) PTX counts only when the driver can JIT it."""
        return covers(
            cc, sass=self.sass, ptx=self.ptx, toolkit=self.toolkit, driver_cuda=driver_cuda
        )


# -- bitsandbytes.toml and derived/bitsandbytes.toml -----------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbRelease:
    """A bitsandbytes release on PyPI (derived)."""

    version: Version
    requires_python: SpecifierSet
    torch: SpecifierSet
    platforms: tuple[WheelPlatform, ...]
    macos: Version | None = None  # the oldest macOS its arm64 wheel installs on


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbLibraryRow:
    """One native library inside a bitsandbytes wheel and the kernels read from it."""

    bnb: Version
    platform: WheelPlatform
    file: str
    backend: str
    version: str | None
    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    rel_ptx: tuple[int, ...]
    gfx: tuple[str, ...] = ()  # ROCm: the gfx targets of its offload bundles

    @property
    def toolkit(self) -> CudaVersion | None:
        """The CUDA the library was built with (``cuda132`` -> 13.2); None without CUDA."""
        if not self.backend.startswith("cuda") or not self.version:
            return None
        return CudaVersion.from_tag(self.version)

    def covers(
        self, cc: tuple[int, int], driver_cuda: CudaVersion | None = None
    ) -> Coverage | None:
        """:func:`~bnb_provision.core.cuda.covers` (relocatable PTX counts); with
        ``driver_cuda`` PTX counts only when the driver can JIT it."""
        ptx = (*self.ptx, *self.rel_ptx)
        return covers(cc, sass=self.sass, ptx=ptx, toolkit=self.toolkit, driver_cuda=driver_cuda)

    def has_gfx(self, target: str) -> bool:
        """Whether the library holds code for an AMD GPU (``gfx90a:xnack-`` counts for
        ``gfx90a``: which mode the GPU runs in is not known here)."""
        return any(t.split(":", 1)[0] == target for t in self.gfx)


@dataclass(frozen=True, kw_only=True, slots=True)
class LoaderRule:
    """How the bitsandbytes releases in ``bnb`` pick their native library."""

    bnb: SpecifierSet
    rule: str  # exact | same-major
    nocublaslt_below: tuple[int, int] | None
    missing: str  # what happens when no library fits
    source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OsFloor:
    """The first bitsandbytes release with official wheels for an OS."""

    os: FloorOs
    bnb: Version
    source: str
    checked: str


# -- huggingface.toml and derived/{transformers,accelerate,peft,trl}.toml --------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageRelease:
    """A release of transformers/accelerate/peft/trl (derived)."""

    package: str
    version: Version
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
    profiles: tuple[Profile, ...]
    note: str
    source: str
    checked: str


# -- combinations.toml -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Verified:
    """A combination seen working on real hardware, with its evidence."""

    torch: Version
    variant: str
    bnb: Version
    platform: Platform
    cc: tuple[int, int]
    gpu: str
    driver: Version
    evidence: str
    source: str
    checked: str


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownBad:
    """bitsandbytes releases that fail with some torch variants, platforms or GPUs."""

    bnb: SpecifierSet
    torch_variants: tuple[str, ...]
    platforms: tuple[Platform, ...]  # empty = all
    cc: tuple[str, ...]  # "7.0" etc.; empty = all
    effect: str
    source: str
    checked: str


# -- errors.toml -----------------------------------------------------------------------


PLACEHOLDERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sm": "?",
        "cuda": "?",
        "lib": "the library",
        "cudamajor": "N",
        "minver": "",
        "minver2": "",
        "alloc": "",
    }
)
"""The facts ``explain`` fills into an error pattern's explanation and fix, and the text
each becomes when the pattern's regex did not capture it. A ``{placeholder}`` must be one
of these or a named group of the pattern; the loader rejects any other."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorPattern:
    """An error message users see (``pattern``), its cause and its fix.

    ``explanation`` and ``fix`` are :meth:`str.format` templates over the pattern's named
    groups and :data:`PLACEHOLDERS`.
    """

    id: str
    pattern: re.Pattern[str]
    category: Category
    title: str
    explanation: str
    fix: str
    source: str
