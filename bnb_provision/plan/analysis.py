"""Facts derived from a machine snapshot: which bitsandbytes library loads, and
whether its kernels (and torch's) cover every GPU. Pure functions."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.detect.fatbin import describe_archs
from bnb_provision.plan.loader import LibraryChoice, choose_library

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.target import BnbLibrary

__all__ = ["BnbLoadReport", "bnb_load_report", "machine_driver_cuda"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbLoadReport:
    choice: LibraryChoice | None
    rule: str
    coverage: tuple[tuple[int, str | None], ...]  # (gpu index, "sass" | "ptx" | None)
    notes: tuple[str, ...]


def machine_driver_cuda(machine: Machine, db: CompatDB) -> CudaVersion | None:
    """The newest CUDA the machine's driver supports: as the driver reports it (NVML,
    nvidia-smi), else from its version by NVIDIA's toolkit/driver table; None: no driver."""
    nv = machine.nvidia
    if nv is None:
        return None
    if nv.cuda_driver:
        with contextlib.suppress(ValueError):
            return CudaVersion.parse(nv.cuda_driver)
    try:
        return db.driver_cuda(Version(nv.driver), machine.os.system)
    except InvalidVersion:
        return None


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
            coverage = _coverage(machine, lib, machine_driver_cuda(machine, db), notes)
    return BnbLoadReport(choice=choice, rule=rule, coverage=tuple(coverage), notes=tuple(notes))


def _coverage(
    machine: Machine, lib: BnbLibrary, driver_cuda: CudaVersion | None, notes: list[str]
) -> list[tuple[int, str | None]]:
    """How ``lib``'s kernels run on each GPU under this driver; what is worth saying goes
    to ``notes``."""
    assert lib.kernels is not None
    toolkit = CudaVersion.from_tag(lib.version) if lib.version else None
    archs = describe_archs(lib.kernels.sass, lib.kernels.ptx + lib.kernels.rel_ptx)
    coverage: list[tuple[int, str | None]] = []
    for gpu in machine.gpus:
        if gpu.compute_capability is None:
            continue
        how = lib.kernels.covers(*gpu.compute_capability, toolkit=toolkit, driver_cuda=driver_cuda)
        coverage.append((gpu.index, how))
        where = f"GPU {gpu.index} ({gpu.name}) is {gpu.sm}; {lib.file}"
        if how is None and lib.kernels.covers(*gpu.compute_capability) == "ptx":
            notes.append(
                f"{where} reaches it only through PTX built by CUDA {toolkit}, and the driver "
                f"supports CUDA {driver_cuda} at most: it cannot JIT-compile it, no kernel runs"
            )
        elif how is None:
            notes.append(f"{where} has {archs}: no kernel runs on it")
        elif how == "ptx":
            notes.append(f"{where} has no matching SASS ({archs}): it runs only through PTX JIT")
    return coverage
