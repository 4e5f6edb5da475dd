"""What the user pinned and said about the machine: the inputs every command that plans
takes.

A module of its own so that commands which only *carry* the pins (init with a
lock) do not load the resolver before their first subprocess starts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Constraints", "MachineFlags"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Constraints:
    """What the user pinned. ``torch``/``bnb`` are version prefixes (``2.8``)."""

    torch: str | None = None
    bnb: str | None = None
    cuda: str | None = None  # "12.6" or "cpu"
    python: str | None = None
    profile: str = "inference"

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
    """``--os/--arch/--driver/--gpu/--python`` given on the command line."""

    os: str | None = None
    arch: str | None = None
    driver: str | None = None
    gpus: tuple[str, ...] = ()
    python: str | None = None

    @property
    def any_machine_flag(self) -> bool:
        return bool(self.os or self.arch or self.driver or self.gpus)
