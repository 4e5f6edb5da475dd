"""The GPUs a fit is judged against: this machine's, a snapshot's, or named on the command line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bnb_provision.detect.nvidia import Gpu
from bnb_provision.errors import FitInputError

__all__ = ["GpuTarget", "gpu_targets", "gpus_from_machine", "gpus_from_options"]


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuTarget:
    index: int
    name: str
    total_mib: int
    free_mib: int | None  # measured free memory (NVML), when known
    source: str  # where the numbers come from

    @property
    def available_mib(self) -> int:
        """Memory a new process can use: free when measured, else the card's total."""
        return self.free_mib if self.free_mib is not None else self.total_mib


def gpus_from_machine(snapshot: Path | None = None) -> tuple[GpuTarget, ...]:
    """This machine's GPUs (NVML / nvidia-smi), or a ``detect --json`` snapshot's."""
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine

    machine = load_machine(snapshot) if snapshot else detect_machine()
    return gpu_targets(machine.gpus, f"snapshot {snapshot}" if snapshot else "this machine")


def gpu_targets(gpus: Iterable[Gpu], where: str) -> tuple[GpuTarget, ...]:
    """The detected GPUs whose memory is known, as fit's targets."""
    return tuple(
        GpuTarget(
            index=g.index,
            name=g.name,
            total_mib=g.memory_total_mib,
            free_mib=g.memory_free_mib,
            source=f"{where} ({'free memory' if g.memory_free_mib is not None else 'total'})",
        )
        for g in gpus
        if g.memory_total_mib is not None
    )


def gpus_from_options(
    names: tuple[str, ...], memories_mib: tuple[int, ...], count: int
) -> tuple[GpuTarget, ...]:
    """``--gpu NAME`` / ``--gpu-memory SIZE`` (repeatable, or one of each and ``--gpus N``)."""
    if names and not memories_mib:
        from bnb_provision.db.load import load_db

        known = [m for n in names if (m := load_db().gpu_cc(n)) is not None]
        family = f" (compute capability {known[0].cc[0]}.{known[0].cc[1]})" if known else ""
        raise FitInputError(
            f"--gpu {names[0]!r}{family}: the GPU table has no memory size for it, so the "
            "memory is unknown; add --gpu-memory, e.g. --gpu-memory 12GiB"
        )
    if len(names) > 1 and len(memories_mib) not in (1, len(names)):
        raise FitInputError("give one --gpu-memory, or one per --gpu")
    n = max(len(names), len(memories_mib), 1) if count <= 1 else count
    if count > 1 and (len(names) > 1 or len(memories_mib) > 1):
        raise FitInputError("--gpus N repeats one GPU; give either --gpus or several --gpu-memory")
    out = []
    for i in range(n):
        mem = memories_mib[i] if i < len(memories_mib) else memories_mib[-1]
        name = names[i] if i < len(names) else (names[-1] if names else "")
        out.append(
            GpuTarget(index=i, name=name, total_mib=mem, free_mib=None, source="--gpu-memory")
        )
    return tuple(out)
