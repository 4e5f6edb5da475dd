"""What the user pinned: the constraints every command that plans takes.

A module of its own so that commands which only *carry* the pins (init with a
lock) do not load the resolver before their first subprocess starts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Constraints"]


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
