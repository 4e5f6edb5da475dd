"""Check 1: bitsandbytes' native library against torch's CUDA runtime.

bitsandbytes picks ``libbitsandbytes_cudaXYZ`` from torch's CUDA version (or from
``BNB_CUDA_VERSION`` when set); the loader rule of the installed release says which
file that is and whether it falls back to another of the same major.
"""

from __future__ import annotations

import re

from bnb_provision.core.cuda import CudaVersion, is_cuda_tag
from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.target import BnbInfo, EnvInfo, TorchInfo
from bnb_provision.doctor.check import REBUILD, DoctorOptions
from bnb_provision.doctor.findings import Finding
from bnb_provision.plan.analysis import bnb_load_report
from bnb_provision.plan.loader import LibraryChoice

__all__ = ["check_runtime"]


def _cudart_majors(paths: tuple[str, ...], ld_library_path: str | None) -> set[int]:
    majors = set()
    for p in paths:
        m = re.search(r"(?:libcudart\.so\.|cudart64_)(\d+)", p)
        if m:
            majors.add(int(m.group(1)[:2]) if len(m.group(1)) > 2 else int(m.group(1)))  # noqa: PLR2004
    if ld_library_path:
        for part in ld_library_path.split(":"):
            m = re.search(r"cuda-?(\d+)(?:\.\d+)?", part)
            if m:
                majors.add(int(m.group(1)))
    return majors


def check_runtime(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """Does bitsandbytes find a library for torch's CUDA runtime, and does it load?"""
    env = m.env
    if env is None or env.bitsandbytes is None or env.torch is None or env.torch.cuda is None:
        return []
    report = bnb_load_report(m, db)
    if report is None or report.choice is None:
        return []
    c = report.choice
    bnb, torch = env.bitsandbytes, env.torch
    if c.override is not None:
        return _forced_library(env, db, c, bnb, torch)
    if c.chosen is None:
        return [_no_library(env, db, c, bnb, torch)]
    if c.fallback:
        return [
            Finding(
                id="bnb-library-fallback",
                category="cuda_runtime_mismatch",
                severity="info",
                title=f"bitsandbytes loads {c.chosen} for torch's CUDA {torch.cuda}",
                evidence=(c.reason,),
                source=db.loader_rule_row(bnb.version).source,
            )
        ]
    return []


def _forced_library(
    env: EnvInfo, db: CompatDB, c: LibraryChoice, bnb: BnbInfo, torch: TorchInfo
) -> list[Finding]:
    """``BNB_CUDA_VERSION`` decided: a library that is not there, or another CUDA major."""
    assert c.override is not None
    assert torch.cuda is not None
    torch_major = CudaVersion.parse(torch.cuda).major
    forced = c.override
    forced_major = CudaVersion.from_tag(forced).major if is_cuda_tag(forced) else None
    evidence = [
        f"BNB_CUDA_VERSION={forced} is set",
        f"torch {torch.version} uses CUDA {torch.cuda}",
        c.reason,
    ]
    if c.chosen is None:
        return [
            Finding(
                id="bnb-cuda-version-forces-missing-library",
                category="cuda_runtime_mismatch",
                severity="error",
                title=f"BNB_CUDA_VERSION={forced} forces a library this "
                f"bitsandbytes {bnb.version} does not ship",
                evidence=tuple(evidence),
                fix="unset BNB_CUDA_VERSION",
                source=db.loader_rule_row(bnb.version).source,
            )
        ]
    if forced_major is None or forced_major == torch_major:
        return []
    have = _cudart_majors(env.cudart, env.variable("LD_LIBRARY_PATH"))
    evidence.append(
        "CUDA runtimes in the environment: "
        + (", ".join(f"{x}.x" for x in sorted(have)) or "none found")
    )
    if forced_major not in have:
        evidence.append(
            f"{c.chosen} needs libcudart.so.{forced_major}, which is not "
            "there: import logs 'cannot open shared object file' and the "
            "first GPU call fails"
        )
    return [
        Finding(
            id="bnb-cuda-version-mismatch",
            category="cuda_runtime_mismatch",
            severity="error",
            title=f"BNB_CUDA_VERSION={forced} loads a CUDA {forced_major}.x library "
            f"under torch's CUDA {torch.cuda}",
            evidence=tuple(evidence),
            fix="unset BNB_CUDA_VERSION (bitsandbytes then loads "
            f"libbitsandbytes_cuda{CudaVersion.parse(torch.cuda).tag} or its same-major "
            "fallback)",
            source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/760",
        )
    ]


def _no_library(
    env: EnvInfo, db: CompatDB, c: LibraryChoice, bnb: BnbInfo, torch: TorchInfo
) -> Finding:
    """The installed bitsandbytes ships no library for torch's CUDA."""
    rule = db.loader_rule_row(bnb.version)
    shipped = sorted(lib.version or "" for lib in bnb.libraries if lib.backend == "cuda")
    stale = ""
    stamps = dict(env.installed_at)
    if stamps.get("bitsandbytes", 0) and stamps.get("torch", 0) > stamps["bitsandbytes"]:
        stale = "bitsandbytes was installed before the current torch: torch was upgraded after it"
    evidence = [
        f"torch {torch.version} uses CUDA {torch.cuda}",
        f"bitsandbytes {bnb.version} ships CUDA libraries: " + (", ".join(shipped) or "none"),
        f"loader ({rule.rule} rule): {c.reason}; {rule.missing}",
    ]
    if stale:
        evidence.append(stale)
    return Finding(
        id="no-bnb-library-for-torch-cuda",
        category="cuda_runtime_mismatch",
        severity="error",
        title=f"bitsandbytes {bnb.version} has no library for torch's CUDA {torch.cuda}",
        evidence=tuple(evidence),
        fix=REBUILD + " (or bnb-provision plan to see the versions)",
        source=rule.source,
    )
