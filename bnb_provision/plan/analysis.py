"""Facts derived from a machine snapshot: which bitsandbytes library loads, and
whether its kernels (and torch's) cover every GPU. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bnb_provision.detect.fatbin import describe_archs
from bnb_provision.plan.loader import LibraryChoice, choose_library

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine

__all__ = ["BnbLoadReport", "bnb_load_report"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbLoadReport:
    choice: LibraryChoice | None
    rule: str
    coverage: tuple[tuple[int, str | None], ...]  # (gpu index, "sass" | "ptx" | None)
    notes: tuple[str, ...]


def bnb_load_report(machine: Machine, db: CompatDB) -> BnbLoadReport | None:
    """Explain which library the env's bitsandbytes will load on this machine."""
    env = machine.env
    if env is None or env.bitsandbytes is None:
        return None
    bnb = env.bitsandbytes
    rule = db.loader_rule(bnb.version)
    notes: list[str] = []
    if env.torch is None:
        return BnbLoadReport(
            choice=None,
            rule=rule,
            coverage=(),
            notes=("torch is not installed: bitsandbytes cannot load",),
        )
    if env.torch.cuda is None:
        notes.append(
            f"torch {env.torch.version} is a {env.torch.variant} build: bitsandbytes "
            "uses its non-CUDA backend"
        )
        return BnbLoadReport(choice=None, rule=rule, coverage=(), notes=tuple(notes))
    shipped = tuple(lib.version for lib in bnb.libraries if lib.backend == "cuda" and lib.version)
    suffix = ".dll" if any(lib.file.endswith(".dll") for lib in bnb.libraries) else ".so"
    choice = choose_library(
        rule=rule,
        torch_cuda=env.torch.cuda,
        shipped=shipped,
        override=env.variable("BNB_CUDA_VERSION"),
        suffix=suffix,
    )
    coverage: list[tuple[int, str | None]] = []
    if choice.chosen is not None:
        lib = next((x for x in bnb.libraries if x.file == choice.chosen), None)
        if lib is not None and lib.kernels is not None:
            for gpu in machine.gpus:
                if gpu.compute_capability is None:
                    continue
                how = lib.kernels.covers(*gpu.compute_capability)
                coverage.append((gpu.index, how))
                archs = describe_archs(lib.kernels.sass, lib.kernels.ptx + lib.kernels.rel_ptx)
                if how is None:
                    notes.append(
                        f"GPU {gpu.index} ({gpu.name}) is {gpu.sm}; {lib.file} has "
                        f"{archs}: no kernel runs on it"
                    )
                elif how == "ptx":
                    notes.append(
                        f"GPU {gpu.index} ({gpu.name}) is {gpu.sm}; {lib.file} has no "
                        f"matching SASS ({archs}): it runs only through PTX JIT"
                    )
    return BnbLoadReport(choice=choice, rule=rule, coverage=tuple(coverage), notes=tuple(notes))
