"""diagnose: every doctor check on a machine snapshot with its ``env`` part (what
``detect --python`` reads), in the order failures happen in practice:

0. torch and bitsandbytes installed at all (:mod:`.installed`);
1. bitsandbytes' native library against torch's CUDA runtime (:mod:`.runtime`);
2. Windows installs (:mod:`.platform`);
3. compute capability against the kernels really present (:mod:`.kernels`);
4. memory for a quantized load, when a model size is given (:mod:`.memory_check`);
5. other quantization libraries in the same environment (:mod:`.stack`);

then a driver too old for torch's build, CPU-only torch on a GPU machine, macOS
(:mod:`.platform`), the Hugging Face floors, bf16 on GPUs without it, and drift from
the environment's stamp (:mod:`.stack`). Errors come first, then warnings, then notes;
within a severity, the order above. Pure: no I/O.
"""

from __future__ import annotations

from typing import Final

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.doctor.check import Check, DoctorOptions
from bnb_provision.doctor.findings import Finding
from bnb_provision.doctor.installed import check_installed
from bnb_provision.doctor.kernels import check_arch
from bnb_provision.doctor.memory_check import check_memory
from bnb_provision.doctor.platform import check_cpu_only, check_driver, check_macos, check_windows
from bnb_provision.doctor.runtime import check_runtime
from bnb_provision.doctor.stack import check_drift, check_dtype, check_hf, check_quant_libs

__all__ = ["CHECKS", "DoctorOptions", "diagnose"]

CHECKS: Final[tuple[Check, ...]] = (
    check_installed,
    check_runtime,
    check_windows,
    check_arch,
    check_memory,
    check_quant_libs,
    check_driver,
    check_cpu_only,
    check_macos,
    check_hf,
    check_dtype,
    check_drift,
)
"""The checks, most likely cause first; a new check goes where its failures happen."""

_SEVERITY_ORDER: Final = {"error": 0, "warning": 1, "info": 2}


def diagnose(
    machine: Machine, db: CompatDB, options: DoctorOptions | None = None
) -> tuple[Finding, ...]:
    """All findings for ``machine`` (and its target environment), most likely first."""
    opts = options or DoctorOptions()
    found = [
        (_SEVERITY_ORDER[f.severity], order, f)
        for order, check in enumerate(CHECKS)
        for f in check(machine, db, opts)
    ]
    found.sort(key=lambda t: (t[0], t[1]))
    return tuple(f for _, _, f in found)
