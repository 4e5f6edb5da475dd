"""Rows about builds beside the main torch x bitsandbytes matrix: torch's companions
(torchvision, torchaudio), the third-party Windows index of old bitsandbytes releases, and
Intel's XPU builds."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.vocab import Companion, Platform

__all__ = ["CompanionRelease", "LegacyWindowsIndex", "XpuFacts"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LegacyWindowsIndex:
    """The third-party index of Windows bitsandbytes wheels from before the official ones."""

    url: str
    versions: tuple[str, ...]
    cuda: tuple[str, ...]  # the library tags every release carries (111 ... 118)
    cuda_added: tuple[tuple[Version, str], ...]  # (first release, tag) added later
    min_cc_70: tuple[str, ...]  # releases without kernels below compute capability 7.0
    source: str

    def cuda_tags(self, bnb: Version) -> tuple[str, ...]:
        """The CUDA library tags of release ``bnb``'s wheel there."""
        return (*self.cuda, *(tag for first, tag in self.cuda_added if bnb >= first))


@dataclass(frozen=True, kw_only=True, slots=True)
class XpuFacts:
    """Intel GPU builds: torch's ``xpu`` variant (``torch.toml [xpu]``) and the torch that
    bitsandbytes' XPU build needs (``bitsandbytes.toml [xpu]``)."""

    torch: SpecifierSet
    platforms: tuple[Platform, ...]
    validated: tuple[str, ...]  # Xe architectures PyTorch validates
    linux_only: tuple[str, ...]
    bnb_torch: SpecifierSet
    source: str
    bnb_source: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CompanionRelease:
    """A torchvision or torchaudio release (derived): the torch its metadata requires."""

    package: Companion
    version: Version
    requires_python: SpecifierSet
    torch: SpecifierSet | None  # None: its metadata names no torch (so no plan picks it)
    macos: tuple[tuple[str, Version], ...] = ()  # (Python or "py3", oldest arm64 macOS)

    def macos_floor(self, python: str) -> Version | None:
        return next((v for py, v in self.macos if py in (python, "py3")), None)
