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

from dataclasses import dataclass

from bnb_provision.core.cuda import CudaVersion, is_cuda_tag

__all__ = ["LibraryChoice", "choose_library"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LibraryChoice:
    """The outcome of bitsandbytes' loader."""

    wanted: str  # the file name the loader looks for first
    chosen: str | None  # the file it loads, or None when none fits
    reason: str
    fallback: bool = False
    override: str | None = None  # BNB_CUDA_VERSION when it decided


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
    extra = "_nocublaslt" if nocublaslt else ""
    if override is not None:
        return _forced(override, shipped, extra, suffix)
    try:
        cuda = CudaVersion.parse(torch_cuda)
    except ValueError as exc:
        name = f"libbitsandbytes_cuda{torch_cuda}{extra}{suffix}"
        return LibraryChoice(wanted=name, chosen=None, reason=f"torch's CUDA version: {exc}")
    wanted = f"libbitsandbytes_cuda{cuda.tag}{extra}{suffix}"
    if cuda.tag in shipped:
        return LibraryChoice(
            wanted=wanted, chosen=wanted, reason=f"exact match for torch's CUDA {torch_cuda}"
        )
    if rule == "same-major":
        return _same_major(cuda, torch_cuda, shipped, wanted, suffix)
    return LibraryChoice(
        wanted=wanted,
        chosen=None,
        reason=f"no build for CUDA {torch_cuda} and this release has no fallback",
    )


def _forced(override: str, shipped: tuple[str, ...], extra: str, suffix: str) -> LibraryChoice:
    """``BNB_CUDA_VERSION`` decides: its library or none, never a fallback."""
    tag = override.strip()
    if not is_cuda_tag(tag):
        return LibraryChoice(
            wanted=f"libbitsandbytes_cuda{override}{suffix}",
            chosen=None,
            override=override,
            reason=f"BNB_CUDA_VERSION={override!r} is not a CUDA version tag (digits such as 124)",
        )
    name = f"libbitsandbytes_cuda{tag}{extra}{suffix}"
    if tag in shipped:
        return LibraryChoice(
            wanted=name, chosen=name, override=tag, reason=f"BNB_CUDA_VERSION={tag} forces {name}"
        )
    return LibraryChoice(
        wanted=name,
        chosen=None,
        override=tag,
        reason=f"BNB_CUDA_VERSION={tag} forces {name}, which is not shipped",
    )


def _same_major(
    cuda: CudaVersion, torch_cuda: str, shipped: tuple[str, ...], wanted: str, suffix: str
) -> LibraryChoice:
    """The highest shipped version below torch's of the same major, else the lowest above."""
    tags = [CudaVersion.from_tag(t) for t in shipped if is_cuda_tag(t)]
    same = sorted(v for v in tags if v.major == cuda.major)
    lower = [v for v in same if v.minor < cuda.minor]
    higher = [v for v in same if v.minor > cuda.minor]
    pick = lower[-1] if lower else (higher[0] if higher else None)
    if pick is None:
        return LibraryChoice(
            wanted=wanted,
            chosen=None,
            reason=f"no CUDA {cuda.major}.x library is shipped (no fallback across majors)",
        )
    return LibraryChoice(
        wanted=wanted,
        chosen=f"libbitsandbytes_cuda{pick.tag}{suffix}",
        fallback=True,
        reason=f"no build for CUDA {torch_cuda}; falls back to CUDA {pick} (same major)",
    )
