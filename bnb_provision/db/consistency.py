"""Facts in one table that must agree with another, checked on every load.

The GPU catalogue (``gpus.toml``) names each model once (no name or alias may find two
rows), and an NVIDIA model's compute capability agrees with the name patterns of
``nvidia.toml`` wherever those know the name.

The architectures a CUDA toolkit can target (``nvidia.toml`` ``[[arch_change]]``: what
each toolkit added, the oldest target it kept) bound the kernel lists of the torch
builds (``torch.toml``) and of the bitsandbytes libraries (``derived/bitsandbytes.toml``,
read from the binaries): a curated ``sm_100`` in a CUDA 12.6 build is a typo, and a
binary that holds one means the ``[[arch_change]]`` rows are wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import Version

from bnb_provision.core.cuda import CudaVersion, is_cuda_tag
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import ArchChange
from bnb_provision.errors import CompatDBError

__all__ = ["check_arch_support", "check_gpu_catalog"]


def _cuda(tag: str | None) -> Version | None:
    """``cu126`` (a torch variant) or ``126`` (a library tag) -> 12.6; else None."""
    if tag is None:
        return None
    found = CudaVersion.from_variant(tag) or (
        CudaVersion.from_tag(tag) if is_cuda_tag(tag) else None
    )
    return None if found is None else Version(str(found))


class _ArchSupport:
    """Which architectures a CUDA version can target, by the ``[[arch_change]]`` rows."""

    def __init__(self, changes: Iterable[ArchChange]) -> None:
        ordered = sorted(changes, key=lambda c: c.cuda)
        self.floors = [c for c in ordered if c.min_sm is not None]
        self.added: dict[int, ArchChange] = {}
        for change in ordered:
            for arch in change.added:
                self.added.setdefault(arch, change)

    def problem(self, cuda: Version, archs: Iterable[int]) -> str | None:
        floor = next((c for c in reversed(self.floors) if c.cuda <= cuda), None)
        for arch in archs:
            if floor is not None and floor.min_sm is not None and arch < floor.min_sm:
                return (
                    f"sm_{arch} is older than sm_{floor.min_sm}, the oldest target from "
                    f"CUDA {floor.cuda} on ({floor.note})"
                )
            first = self.added.get(arch)
            if first is not None and cuda < first.cuda:
                return f"sm_{arch} needs CUDA {first.cuda} ({first.note})"
        return None


def check_arch_support(db: CompatDB) -> None:
    """Every kernel list holds only architectures its CUDA version can target."""
    support = _ArchSupport(db.arch_changes)
    for i, build in enumerate(db.torch_builds):
        cuda = _cuda(build.variant)
        if cuda is None:
            continue
        for key, archs in (
            ("sass", build.sass),
            ("ptx", build.ptx),
            ("unverified_sass", build.unverified_sass),
        ):
            if problem := support.problem(cuda, archs):
                raise CompatDBError(
                    f"torch.toml: build[{i}].{key}: {problem}, but {build.variant} is CUDA "
                    f"{cuda}; fix the build's kernel list or nvidia.toml's [[arch_change]]"
                )
    seen: set[tuple[Version, tuple[int, ...]]] = set()  # a thousand rows, few lists
    for i, lib in enumerate(db.bnb_libraries):
        cuda = _cuda(lib.version) if lib.backend.startswith("cuda") else None
        archs = (*lib.sass, *lib.ptx, *lib.rel_ptx)
        if cuda is None or (cuda, archs) in seen:
            continue
        seen.add((cuda, archs))
        if problem := support.problem(cuda, archs):
            raise CompatDBError(
                f"derived/bitsandbytes.toml: library[{i}] ({lib.file} of {lib.bnb}): "
                f"{problem}, but the library is for CUDA {cuda}; the binary is what runs, "
                "so nvidia.toml's [[arch_change]] rows need fixing"
            )


def check_gpu_catalog(db: CompatDB) -> None:
    """No name finds two catalogue rows; NVIDIA rows agree with nvidia.toml's patterns."""
    rows = db.gpu_catalog
    for name, first, second in db.gpus().collisions():
        raise CompatDBError(
            f"gpus.toml: gpu[{rows.index(second)}] ({second.name}): the name {name!r} (as "
            f"matched) already finds gpu[{rows.index(first)}] ({first.name}); drop or "
            "rename one alias"
        )
    for i, entry in enumerate(rows):
        if entry.cc is None:
            continue
        model = db.gpu_cc(entry.name)
        if model is not None and model.cc != entry.cc:
            raise CompatDBError(
                f"gpus.toml: gpu[{i}].cc: {entry.name} is {entry.cc[0]}.{entry.cc[1]} here "
                f"but nvidia.toml's [[gpu]] patterns say {model.cc[0]}.{model.cc[1]}; "
                "fix one of them"
            )
