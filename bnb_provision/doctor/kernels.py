"""Check 3: each GPU's compute capability against the kernels really compiled in.

bitsandbytes' kernels are read from the library that will load (the fatbin inside the
binary); torch's come from the compat DB's arch list of the installed build.
"""

from __future__ import annotations

from packaging.version import Version

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.fatbin import describe_archs
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu
from bnb_provision.detect.target import BnbLibrary, EnvInfo, TorchInfo
from bnb_provision.doctor.check import REBUILD, DoctorOptions
from bnb_provision.doctor.check import version_or_none as _v
from bnb_provision.doctor.findings import Finding
from bnb_provision.plan.analysis import bnb_load_report, machine_driver_cuda

__all__ = ["check_arch", "plan_for_gpu"]


def check_arch(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """GPUs that bitsandbytes' loaded library or torch's build has no kernels for."""
    env = m.env
    if env is None or not m.gpus:
        return []
    out = _bnb_arch(m, db, env)
    torch = env.torch
    if torch is not None and torch.cuda is not None:
        out += _torch_arch(m, db, torch)
    return out


def _bnb_arch(m: Machine, db: CompatDB, env: EnvInfo) -> list[Finding]:
    out: list[Finding] = []
    report = bnb_load_report(m, db) if env.bitsandbytes else None
    if report is None or report.choice is None or not report.choice.chosen:
        return out
    lib = next(
        (
            x
            for x in env.bitsandbytes.libraries  # type: ignore[union-attr]
            if x.file == report.choice.chosen
        ),
        None,
    )
    for idx, how in report.coverage:
        gpu = m.gpus[idx] if idx < len(m.gpus) else None
        if gpu is None or lib is None or lib.kernels is None:
            continue
        archs = describe_archs(lib.kernels.sass, lib.kernels.ptx + lib.kernels.rel_ptx)
        if how is None:
            out.append(_bnb_not_compiled(m, lib, gpu, archs))
        elif how == "ptx":
            out.append(
                Finding(
                    id="bnb-arch-ptx-only",
                    category="arch_not_compiled",
                    severity="warning",
                    title=f"{lib.file} reaches GPU {gpu.index} ({gpu.sm}) only through PTX JIT",
                    evidence=(
                        f"{lib.file}: {archs}",
                        (
                            "the first run compiles kernels (slow start, cached afterwards); "
                            "needs a driver at least as new as the toolkit that built the PTX"
                        ),
                    ),
                    fix=REBUILD + " (a build with native SASS for this GPU)",
                )
            )
    return out


def plan_for_gpu(m: Machine, gpu: Gpu) -> str:
    """The plan command for this GPU on this driver (a plan for a GPU needs the driver)."""
    driver = m.nvidia.driver if m.nvidia is not None else "VERSION"
    return f"bnb-provision plan --gpu {gpu.cc_text} --driver {driver}"


def _bnb_not_compiled(m: Machine, lib: BnbLibrary, gpu: Gpu, archs: str) -> Finding:
    return Finding(
        id="bnb-arch-not-compiled",
        category="arch_not_compiled",
        severity="error",
        title=f"{lib.file} has no kernels for GPU {gpu.index} ({gpu.name}, {gpu.sm})",
        evidence=(
            f"{lib.file} (read from the binary): {archs}",
            f"GPU {gpu.index}: {gpu.name}, compute capability {gpu.cc_text}",
        ),
        fix=REBUILD + f" ({plan_for_gpu(m, gpu)} shows which builds cover it)",
        source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/223",
    )


def _torch_arch(m: Machine, db: CompatDB, torch: TorchInfo) -> list[Finding]:
    out: list[Finding] = []
    tv = _v(torch.version)
    if tv is None:
        return out
    plat = f"{m.os.system}-{m.os.arch}"
    base = Version(tv.public)
    build = db.torch_build(torch.variant, base, plat, "pypi") or db.torch_build(
        torch.variant, base, plat, "index"
    )
    driver_cuda = machine_driver_cuda(m, db)
    for gpu in m.gpus:
        cc = gpu.compute_capability
        if build is None or cc is None:
            continue
        if build.covers(cc, driver_cuda) is None:
            out.append(
                Finding(
                    id="torch-arch-not-compiled",
                    category="arch_not_compiled",
                    severity="error",
                    title=f"torch {torch.version} has no kernels for GPU {gpu.index} "
                    f"({gpu.name}, {gpu.sm})",
                    evidence=(
                        f"torch {torch.variant} arch list (compat DB): "
                        + describe_archs(build.sass, build.ptx),
                        f"source: {build.source}",
                    ),
                    fix=REBUILD + f" ({plan_for_gpu(m, gpu)} shows which builds cover it)",
                    source=build.source,
                )
            )
    return out
