"""Checks of the Python stack around bitsandbytes: GPTQ/AWQ libraries in the same
environment, the Hugging Face version floors, bf16 on GPUs without it, and drift from
the environment's stamp."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.target import GPTQ_AWQ
from bnb_provision.doctor.check import REBUILD, DoctorOptions
from bnb_provision.doctor.check import version_or_none as _v
from bnb_provision.doctor.findings import Finding
from bnb_provision.env.stamp import machine_drift

__all__ = ["check_drift", "check_dtype", "check_hf", "check_quant_libs"]


def check_quant_libs(m: Machine, _db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """GPTQ/AWQ libraries installed beside bitsandbytes."""
    env = m.env
    if env is None:
        return []
    others = [(n, v) for n, v in env.quant_libs if n in GPTQ_AWQ]
    if not others or env.bitsandbytes is None:
        return []
    return [
        Finding(
            id="conflicting-quant-libs",
            category="conflicting_quant_libs",
            severity="warning",
            title="GPTQ/AWQ libraries share this environment with bitsandbytes",
            evidence=(
                *(f"{n} {v}" for n, v in others),
                (
                    "these pin their own torch builds and compiled kernels: installing or "
                    "upgrading one replaces the torch bitsandbytes was chosen for"
                ),
            ),
            fix="keep one environment per stack: bitsandbytes in .venv-bnb, GPTQ/AWQ in their own "
            "(pip uninstall " + " ".join(n for n, _ in others) + " here)",
            source="https://github.com/AutoGPTQ/AutoGPTQ/issues/291",
        )
    ]


def check_hf(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """The DB's Hugging Face floors, and accelerate missing beside transformers."""
    env = m.env
    if env is None:
        return []
    installed = {n: _v(v) for n, v in env.packages}
    out: list[Finding] = []
    for c in db.hf_constraints:
        have = installed.get(c.package)
        if have is None or not c.versions.contains(have, prereleases=True):
            continue
        for name, spec in c.requires:
            other = installed.get(name)
            if other is None or spec.contains(other, prereleases=True):
                continue
            out.append(
                Finding(
                    id=f"hf-floor-{c.package}-{name}",
                    category="hf_stack",
                    severity="error"
                    if "qlora" not in c.profiles or "inference" in c.profiles
                    else "warning",
                    title=f"{c.package} {have} needs {name}{spec}; {other} is installed",
                    evidence=(c.note,),
                    fix=f"pip install '{name}{spec}' (or {REBUILD})",
                    source=c.source,
                )
            )
    tr = installed.get("transformers")
    if tr is not None and installed.get("accelerate") is None and env.bitsandbytes is not None:
        need = next(
            (
                s
                for c in db.hf_constraints
                if c.package == "transformers" and c.versions.contains(tr)
                for n, s in c.requires
                if n == "accelerate"
            ),
            SpecifierSet(),
        )
        out.append(
            Finding(
                id="hf-accelerate-missing",
                category="hf_stack",
                severity="error",
                title="accelerate is missing: transformers loads bitsandbytes models through it",
                evidence=(f"transformers {tr}",),
                fix=f"pip install 'accelerate{need}'",
            )
        )
    return out


def check_dtype(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """GPUs without bfloat16."""
    bf16 = db.min_cc("bf16")
    low = [g for g in m.gpus if g.compute_capability and g.compute_capability < bf16]
    if not low:
        return []
    g = low[0]
    return [
        Finding(
            id="no-bf16",
            category="dtype",
            severity="info",
            title=f"GPU {g.index} ({g.name}, {g.sm}) has no bfloat16",
            evidence=("bf16 compute fails with 'expected scalar type Half' or runs emulated",),
            fix="use bnb_4bit_compute_dtype=torch.float16 and fp16 (not bf16) training",
        )
    ]


def check_drift(m: Machine, _db: CompatDB, o: DoctorOptions) -> list[Finding]:
    """The machine or the environment changed since the stamp was written."""
    s = o.stamp
    if s is None:
        return []
    changes = machine_drift(s, m)
    env = m.env
    if env is not None:
        if env.torch is not None and s.torch and s.torch != env.torch.version:
            changes.append(f"torch {s.torch} -> {env.torch.version}")
        bnb = env.version_of("bitsandbytes")
        if s.bitsandbytes and bnb and s.bitsandbytes != bnb:
            changes.append(f"bitsandbytes {s.bitsandbytes} -> {bnb}")
    if not changes:
        return []
    return [
        Finding(
            id="stamp-drift",
            category="drift",
            severity="warning",
            title="the machine or environment changed since it was built and verified",
            evidence=(f"stamp written {s.created}", *changes),
            fix=REBUILD + " (re-plans, rebuilds beside the old one, verifies, then swaps)",
        )
    ]
