"""The compat DB as one frozen value, and the questions the resolver and doctor ask it.

Build it with :func:`bnb_provision.db.load.load_db` (validated, cached) or
:func:`bnb_provision.db.parse.parse_db` (pure, from parsed TOML).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.db.gpus import GpuCatalog
from bnb_provision.db.rows import (
    ArchChange,
    BnbLibraryRow,
    BnbRelease,
    CudaFamily,
    CudaToolkit,
    ErrorPattern,
    Feature,
    FeatureName,
    FloorOs,
    GpuEntry,
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
    XpuFacts,
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
    torch_releases: tuple[TorchRelease, ...]
    torch_indexes: tuple[TorchIndex, ...]
    torch_builds: tuple[TorchBuild, ...]
    torch_index_url: str
    bnb_releases: tuple[BnbRelease, ...]
    bnb_libraries: tuple[BnbLibraryRow, ...]
    loader_rules: tuple[LoaderRule, ...]
    bnb_windows_legacy_index: str
    bnb_windows_legacy_versions: tuple[str, ...]
    os_floors: tuple[OsFloor, ...]  # one per FLOOR_OSES
    features: tuple[Feature, ...]  # one per GPU_FEATURES and BNB_FEATURES
    packages: tuple[PackageRelease, ...]
    hf_constraints: tuple[HfConstraint, ...]
    verified: tuple[Verified, ...]
    known_bad: tuple[KnownBad, ...]
    errors: tuple[ErrorPattern, ...]
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

    def min_cc(self, feature: FeatureName) -> tuple[int, int]:
        """The oldest compute capability with ``feature`` (``bf16``, ``llm_int8``, ...)."""
        return next(f.min_cc for f in self.features if f.feature == feature)

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
