"""The compat DB as one frozen value, and the questions the resolver and doctor ask it.

Build it with :func:`bnb_provision.db.load.load_db` (validated, cached) or
:func:`bnb_provision.db.parse.parse_db` (pure, from parsed TOML).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.db.builds import CompanionRelease, LegacyWindowsIndex, XpuFacts
from bnb_provision.db.gpus import GpuCatalog, GpuEntry
from bnb_provision.db.rows import (
    ArchChange,
    BnbLibraryRow,
    BnbRelease,
    CudaFamily,
    CudaToolkit,
    Feature,
    FeatureName,
    FloorOs,
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

__all__ = ["CompatDB"]


@dataclass(frozen=True, kw_only=True, slots=True)
class CompatDB:
    """Every row of ``compat_db/``; the methods below are its look-ups."""

    version: str
    toolkits: tuple[CudaToolkit, ...]
    families: tuple[CudaFamily, ...]
    arch_changes: tuple[ArchChange, ...]
    gpu_models: tuple[GpuModel, ...]
    last_branches: tuple[LastBranch, ...]
    torch_releases: tuple[TorchRelease, ...]
    torch_indexes: tuple[TorchIndex, ...]
    torch_builds: tuple[TorchBuild, ...]
    torch_index_url: str
    bnb_releases: tuple[BnbRelease, ...]
    bnb_libraries: tuple[BnbLibraryRow, ...]
    loader_rules: tuple[LoaderRule, ...]
    bnb_windows_legacy_index: str
    bnb_windows_legacy_versions: tuple[str, ...]
    bnb_windows_legacy: LegacyWindowsIndex
    os_floors: tuple[OsFloor, ...]  # one per FLOOR_OSES
    features: tuple[Feature, ...]  # one per GPU_FEATURES and BNB_FEATURES
    packages: tuple[PackageRelease, ...]
    companions: tuple[CompanionRelease, ...]
    hf_constraints: tuple[HfConstraint, ...]
    verified: tuple[Verified, ...]
    known_bad: tuple[KnownBad, ...]
    gpu_catalog: tuple[GpuEntry, ...] = ()
    xpu: XpuFacts | None = None
    _catalog: list[GpuCatalog] = field(default_factory=list, repr=False, compare=False)
    _libs: dict[tuple[Version, str], tuple[BnbLibraryRow, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _builds: dict[tuple[str, Version, str, str], TorchBuild | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    _drivers: dict[tuple[str, str], tuple[Version | None, str]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # -- bitsandbytes ----------------------------------------------------------------

    def loader_rule(self, bnb_version: str | Version) -> str:
        """The loader rule (``exact`` / ``same-major``) of a bitsandbytes release."""
        return self.loader_rule_row(bnb_version).rule

    def loader_rule_row(self, bnb_version: str | Version) -> LoaderRule:
        v = Version(str(bnb_version))
        for row in self.loader_rules:
            if row.bnb.contains(v, prereleases=True):
                return row
        return self.loader_rules[-1]

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

    def bnb_os_floor(self, os_name: FloorOs) -> Version:
        """The first bitsandbytes with official wheels for ``os_name``."""
        return next(f.bnb for f in self.os_floors if f.os == os_name)

    # -- GPUs and drivers ------------------------------------------------------------

    def known_ccs(self) -> tuple[tuple[int, int], ...]:
        """Every compute capability the DB knows, oldest first: its GPU names and catalogue
        rows, and the architectures its CUDA toolkits added."""
        ccs = {m.cc for m in self.gpu_models} | {e.cc for e in self.gpu_catalog if e.cc}
        for change in self.arch_changes:
            ccs |= {(a // 10, a % 10) for a in change.added}
        return tuple(sorted(ccs))

    def min_cc(self, feature: FeatureName, bnb: Version | None = None) -> tuple[int, int]:
        """The oldest compute capability with ``feature`` (``bf16``, ``llm_int8``, ...), as
        bitsandbytes ``bnb`` documents it where its floor changed between releases."""
        return self.feature_row(feature, bnb).min_cc

    def feature_row(self, feature: FeatureName, bnb: Version | None = None) -> Feature:
        """The row that states ``feature``'s floor for bitsandbytes ``bnb``: the one whose
        range holds it; else (no release given, or one no range holds) the row without a
        range, else the last row, which holds the current documentation."""
        rows = [f for f in self.features if f.feature == feature]
        hit = None
        if bnb is not None:
            hit = next((f for f in rows if f.bnb is not None and f.bnb.contains(bnb)), None)
        plain = next((f for f in rows if f.bnb is None), None)
        return hit or plain or rows[-1]

    def gpus(self) -> GpuCatalog:
        """The GPU catalogue (``gpus.toml``), indexed by every name users write."""
        if not self._catalog:
            self._catalog.append(GpuCatalog(self.gpu_catalog))
        return self._catalog[0]

    def gpu_cc(self, name: str) -> GpuModel | None:
        """The GPU model whose name pattern matches ``name``, if any."""
        return next((m for m in self.gpu_models if m.matches(name)), None)

    def min_driver(self, cuda: str, os_name: str) -> tuple[Version | None, str]:
        """The oldest driver that runs a CUDA ``X.Y`` build, and why.

        Minor-version compatibility lets any driver of the family's floor run
        any toolkit of that major (https://docs.nvidia.com/deploy/cuda-compatibility/).
        """
        key = (cuda, os_name)
        if key not in self._drivers:
            self._drivers[key] = self._min_driver(cuda, os_name)
        return self._drivers[key]

    def _min_driver(self, cuda: str, os_name: str) -> tuple[Version | None, str]:
        major = int(cuda.split(".", maxsplit=1)[0])
        fam = next((f for f in self.families if f.major == major), None)
        if fam is None:
            return None, f"no driver floor is known for CUDA {major}.x"
        floor = fam.windows if os_name == "windows" else fam.linux
        return floor, f"CUDA {major}.x minor-version compatibility needs driver >= {floor}"

    def driver_cuda(self, driver: Version, os_name: str) -> CudaVersion | None:
        """The newest CUDA ``X.Y`` whose toolkit ``driver`` runs without minor-version
        compatibility: the newest PTX it can JIT-compile (None: older than every toolkit)."""
        best = self.max_cuda_for_driver(driver, os_name)
        return None if best is None else CudaVersion(best.major, best.minor)

    def toolkit_driver(self, cuda: CudaVersion, os_name: str) -> Version | None:
        """The oldest driver NVIDIA names for a toolkit of ``cuda`` (its GA release)."""
        needs = [
            t.windows if os_name == "windows" else t.linux
            for t in self.toolkits
            if (t.version.major, t.version.minor) == cuda
        ]
        return min((n for n in needs if n is not None), default=None)

    def driver_floors(self, os_name: str) -> tuple[Version, ...]:
        """Every driver version the DB names as a floor on ``os_name`` (the CUDA families'
        and the toolkits'), oldest first: the drivers at which a plan can change."""
        floors = {f.windows if os_name == "windows" else f.linux for f in self.families}
        for t in self.toolkits:
            need = t.windows if os_name == "windows" else t.linux
            if need is not None:
                floors.add(need)
        return tuple(sorted(floors))

    def last_branch(self, ccs: tuple[tuple[int, int], ...]) -> LastBranch | None:
        """The legacy driver branch that ends support for the oldest of ``ccs``, if any."""
        rows = [b for b in self.last_branches if any(cc < b.below_cc for cc in ccs)]
        return min(rows, key=lambda b: b.branch, default=None)

    def max_cuda_for_driver(self, driver: Version, os_name: str) -> Version | None:
        """The newest CUDA toolkit whose own driver minimum ``driver`` meets."""
        best = None
        for t in self.toolkits:
            need = t.windows if os_name == "windows" else t.linux
            if need is not None and driver >= need and (best is None or t.version > best):
                best = t.version
        return best

    # -- torch -----------------------------------------------------------------------

    def index_url(self, variant: str) -> str:
        """The download.pytorch.org index of a variant (``cu128``, ``cpu``)."""
        return self.torch_index_url.format(variant=variant)

    def torch_index(self, torch: Version) -> TorchIndex | None:
        minor = f"{torch.major}.{torch.minor}"
        return next((i for i in self.torch_indexes if i.torch == minor), None)

    def torch_build(
        self, variant: str, torch: Version, platform: str, channel: str
    ) -> TorchBuild | None:
        """The kernel list of a torch variant on a platform and channel, if known."""
        key = (variant, torch, platform, channel)
        if key not in self._builds:
            self._builds[key] = next(
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
        return self._builds[key]

    # -- Hugging Face ----------------------------------------------------------------

    def companion_releases(self, package: str) -> tuple[CompanionRelease, ...]:
        return tuple(r for r in self.companions if r.package == package)

    def package_releases(self, package: str) -> tuple[PackageRelease, ...]:
        return tuple(r for r in self.packages if r.package == package)

    def hf_requires(self, package: str, version: Version) -> tuple[tuple[str, SpecifierSet], ...]:
        """What the curated constraints (huggingface.toml) ask of other packages when
        ``package`` is at ``version``, as (name, specifier) pairs."""
        return tuple(
            req
            for c in self.hf_constraints
            if c.package == package and c.versions.contains(version, prereleases=True)
            for req in c.requires
        )
