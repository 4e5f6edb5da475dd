"""What the user pinned and said about the machine: the inputs every command that plans
takes, and how a version is matched against a pin or a requirement.

A module of its own so that commands which only *carry* the pins (init with a
lock) do not load the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from bnb_provision.errors import NoPlanError
from bnb_provision.vocab import Companion, Profile

__all__ = ["Constraints", "MachineFlags", "contains", "pin_matches"]

_SPECIFIER_CHARS = "<>=!~,"


@dataclass(frozen=True, kw_only=True, slots=True)
class Constraints:
    """What the user pinned. ``torch``/``bnb`` are version prefixes (``2.8``)."""

    torch: str | None = None
    bnb: str | None = None
    cuda: str | None = None  # "12.6" or "cpu"
    python: str | None = None
    profile: Profile = "inference"
    companions: tuple[Companion, ...] = ()  # --with torchvision,torchaudio
    legacy_windows_index: bool = False  # --allow-legacy-windows-index

    def __post_init__(self) -> None:
        """A pin that is neither a version prefix nor a specifier is refused where it is
        made (the CLI refuses it earlier, as a usage error naming the flag)."""
        for flag, pin in (("--torch", self.torch), ("--bnb", self.bnb)):
            if pin and any(op in pin for op in _SPECIFIER_CHARS):
                try:
                    SpecifierSet(pin)
                except InvalidSpecifier:
                    raise NoPlanError(
                        f"{flag} {pin!r}: not a version specifier; give a version such as "
                        "2.8 or a specifier such as '>=2.8,<2.10'"
                    ) from None

    def describe(self) -> list[str]:
        out = []
        for name, flag in (
            ("torch", "--torch"),
            ("bnb", "--bnb"),
            ("cuda", "--cuda"),
            ("python", "--python"),
        ):
            value = getattr(self, name)
            if value is not None:
                out.append(f"{flag} {value}")
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class MachineFlags:
    """``--os/--os-version/--arch/--driver/--gpu/--python`` given on the command line."""

    os: str | None = None
    arch: str | None = None
    driver: str | None = None
    gpus: tuple[str, ...] = ()
    python: str | None = None
    os_version: str | None = None  # --os-version: the macOS release

    @property
    def any_machine_flag(self) -> bool:
        return bool(self.os or self.arch or self.driver or self.gpus or self.os_version)


def pin_matches(pin: str | None, version: Version) -> bool:
    """Whether ``version`` is one the pin allows: a prefix (``2.8`` takes 2.8.1, not 2.80)
    or a specifier (``>=2.8,<2.10``); no pin allows every version."""
    if not pin:
        return True
    if any(op in pin for op in _SPECIFIER_CHARS):
        return SpecifierSet(pin).contains(version, prereleases=True)
    want = pin.split(".")
    have = str(version.public).split(".")
    return have[: len(want)] == want


def contains(spec: SpecifierSet, version: Version | str) -> bool:
    """``version in spec``, pre-releases included: the DB's ranges are meant to hold them."""
    return spec.contains(version, prereleases=True)
