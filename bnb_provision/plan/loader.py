"""Which native library bitsandbytes loads, by the rule of its release era.

The rules (sources in ``compat_db/bitsandbytes.toml``, ``[[loader_rules]]``):

* ``exact`` (0.39 to 0.49): ``libbitsandbytes_cuda{XYZ}`` for torch's CUDA
  ``X.Y`` exactly (``_nocublaslt`` before 0.45 on GPUs below 7.5); a missing
  file means the CPU library (<= 0.45) or an error at the first GPU call.
* ``same-major`` (0.50+): the exact file; else the highest packaged version
  below torch's with the same major; else the lowest above it, same major;
  never across majors.
* ``BNB_CUDA_VERSION`` (digits, e.g. ``124``) replaces the version and turns
  off any fallback, in every era.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LibraryChoice", "choose_library", "cuda_tag"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LibraryChoice:
    """The outcome of bitsandbytes' loader."""

    wanted: str  # the file name the loader looks for first
    chosen: str | None  # the file it loads, or None when none fits
    reason: str
    fallback: bool = False
    override: str | None = None  # BNB_CUDA_VERSION when it decided


def cuda_tag(cuda: str) -> str:
    """``"12.4"`` -> ``"124"``; ``"13.0"`` -> ``"130"``."""
    major, _, rest = cuda.partition(".")
    return f"{major}{(rest or '0').split('.')[0]}"


def _split(tag: str) -> tuple[int, int]:
    # "124" -> (12, 4); "118" -> (11, 8); "130" -> (13, 0); "92" -> (9, 2)
    return int(tag[:-1]), int(tag[-1])


def choose_library(
    *,
    rule: str,
    torch_cuda: str,
    shipped: tuple[str, ...],
    override: str | None = None,
    suffix: str = ".so",
    nocublaslt: bool = False,
) -> LibraryChoice:
    """Apply a loader rule.

    ``shipped`` holds the CUDA version tags of the libraries present
    (``("118", "121", "130")``). ``rule`` is ``exact`` or ``same-major``.
    """
    tag = cuda_tag(torch_cuda)
    extra = "_nocublaslt" if nocublaslt else ""
    if override is not None:
        if not re.fullmatch(r"\d{2,3}", override.strip()):
            return LibraryChoice(
                wanted=f"libbitsandbytes_cuda{override}{suffix}",
                chosen=None,
                override=override,
                reason=f"BNB_CUDA_VERSION={override!r} is not a CUDA version tag "
                "(digits such as 124)",
            )
        otag = override.strip()
        name = f"libbitsandbytes_cuda{otag}{extra}{suffix}"
        if otag in shipped:
            return LibraryChoice(
                wanted=name,
                chosen=name,
                override=otag,
                reason=f"BNB_CUDA_VERSION={otag} forces {name}",
            )
        return LibraryChoice(
            wanted=name,
            chosen=None,
            override=otag,
            reason=f"BNB_CUDA_VERSION={otag} forces {name}, which is not shipped",
        )
    wanted = f"libbitsandbytes_cuda{tag}{extra}{suffix}"
    if tag in shipped:
        return LibraryChoice(
            wanted=wanted, chosen=wanted, reason=f"exact match for torch's CUDA {torch_cuda}"
        )
    if rule == "same-major":
        major, minor = _split(tag)
        same = sorted((_split(s) for s in shipped if _split(s)[0] == major), key=lambda v: v[1])
        lower = [v for v in same if v[1] < minor]
        higher = [v for v in same if v[1] > minor]
        pick = lower[-1] if lower else (higher[0] if higher else None)
        if pick is not None:
            name = f"libbitsandbytes_cuda{pick[0]}{pick[1]}{suffix}"
            return LibraryChoice(
                wanted=wanted,
                chosen=name,
                fallback=True,
                reason=f"no build for CUDA {torch_cuda}; falls back to CUDA {pick[0]}.{pick[1]} "
                "(same major)",
            )
        return LibraryChoice(
            wanted=wanted,
            chosen=None,
            reason=f"no CUDA {major}.x library is shipped (no fallback across majors)",
        )
    return LibraryChoice(
        wanted=wanted,
        chosen=None,
        reason=f"no build for CUDA {torch_cuda} and this release has no fallback",
    )
