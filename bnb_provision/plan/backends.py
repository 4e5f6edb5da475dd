"""Plans for GPUs that are not NVIDIA's, and ``--cuda`` as a checked choice.

* ``--cuda`` takes ``12.6`` or ``cu126``, ``rocm7.2``, ``xpu``, ``mps`` or ``cpu``
  (:func:`~bnb_provision.core.cuda.normalize_cuda_option`), and only a build some torch
  release in the DB has: :func:`check_cuda_option` lists the known ones otherwise.
* :func:`backend_of` decides which build family serves a target: NVIDIA GPUs (or none)
  take the CUDA/CPU resolver (:mod:`~bnb_provision.plan.resolve`); an AMD GPU takes
  torch's ROCm build (:mod:`~bnb_provision.plan.rocm`), an Intel GPU the ``xpu`` build and
  Apple silicon the macOS build (:mod:`~bnb_provision.plan.xpu_mps`), each with the
  bitsandbytes backend that serves it. GPUs of two vendors in one plan are refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from bnb_provision.core.cuda import (
    CPU,
    MPS,
    XPU,
    CudaVersion,
    cuda_of_variant,
    is_rocm,
    normalize_cuda_option,
)
from bnb_provision.db.model import CompatDB
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.model import Plan, Target

__all__ = ["Backend", "backend_of", "check_cuda_option", "known_builds", "plan_backend"]

Backend = Literal["cuda", "rocm", "xpu", "mps"]


def known_builds(db: CompatDB) -> list[str]:
    """Every ``--cuda`` value the DB knows a torch build for, CUDA versions first."""
    cuda: set[str] = set()
    rocm: set[str] = set()
    for index in db.torch_indexes:
        cuda.update(v for v in (*index.variants, *index.proposed) if cuda_of_variant(v))
        rocm.update(index.rocm)
    cuda.update(b.variant for b in db.torch_builds if cuda_of_variant(b.variant))
    cuda.update(v for r in db.torch_releases for _, v in r.pypi if cuda_of_variant(v))
    versions = sorted({CudaVersion.from_variant(v) for v in cuda} - {None})  # type: ignore[type-var]
    return [
        *(str(v) for v in versions if v is not None),
        *sorted(rocm, key=lambda v: tuple(int(x) for x in v[4:].split("."))),
        XPU,
        MPS,
        CPU,
    ]


def check_cuda_option(db: CompatDB, cons: Constraints) -> Constraints:
    """``cons`` with ``--cuda`` in its one spelling; NoPlanError for a value that names no
    build, or a build no torch release in the DB has, listing those that exist."""
    if cons.cuda is None:
        return cons
    known = known_builds(db)
    try:
        option = normalize_cuda_option(cons.cuda)
    except ValueError as exc:
        raise NoPlanError(f"--cuda {cons.cuda}: {exc}.\nKnown: {', '.join(known)}") from None
    if option not in known:
        raise NoPlanError(
            f"--cuda {cons.cuda}: no torch build for it is in the DB.\nKnown: {', '.join(known)}"
        )
    return replace(cons, cuda=option)


def backend_of(target: Target, cons: Constraints) -> Backend:
    """Which build family serves ``target`` under ``cons``."""
    if cons.cuda is not None and is_rocm(cons.cuda):
        return "rocm"
    if cons.cuda in (XPU, MPS):
        return "xpu" if cons.cuda == XPU else "mps"
    if target.gpus or cons.cuda is not None or not target.accelerators:
        return "cuda"
    vendors = {a.vendor for a in target.accelerators}
    if len(vendors) > 1:
        names = ", ".join(f"{a.name} ({a.vendor})" for a in target.accelerators)
        raise NoPlanError(
            f"GPUs of more than one vendor: {names}. One environment serves one kind: name "
            "the GPUs to plan for with --gpu, or pick the build with --cuda (rocm7.2, xpu, "
            "mps, cpu)."
        )
    vendor = vendors.pop()
    return "rocm" if vendor == "amd" else ("xpu" if vendor == "intel" else "mps")


def plan_backend(target: Target, db: CompatDB, cons: Constraints) -> Plan:
    """The plan for an AMD, Intel or Apple target (raises NoPlanError with the way out)."""
    from bnb_provision.plan import rocm, xpu_mps

    backend = backend_of(target, cons)
    if target.gpus:
        raise NoPlanError(
            f"--cuda {cons.cuda} is not a build for NVIDIA GPUs "
            f"({', '.join(n for n, _ in target.gpus)}): give a CUDA version (12.6) or cpu"
        )
    if backend == "rocm":
        return rocm.plan_rocm(target, db, cons)
    if backend == "xpu":
        return xpu_mps.plan_xpu(target, db, cons)
    return xpu_mps.plan_mps(target, db, cons)
