"""Turn plan inputs (a snapshot, flags, or this machine) into a plan, and plans into JSON."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.db.model import CompatDB
from bnb_provision.detect.host import (
    OSInfo,
    PythonInfo,
    detect_python,
    normalize_arch,
    normalize_system,
)
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo
from bnb_provision.errors import NoPlanError, SnapshotError
from bnb_provision.plan.constraints import Constraints, MachineFlags
from bnb_provision.plan.resolve import Plan, make_plan, target_from_machine

__all__ = [
    "PLAN_SCHEMA",
    "MachineFlags",
    "apply_flags",
    "load_machines",
    "plan_for",
    "plan_to_dict",
]

PLAN_SCHEMA: Final = "bnb-provision.plan/1"


def _gpu_from_flag(text: str, index: int, db: CompatDB) -> Gpu:
    m = re.fullmatch(r"(?:sm_?)?(\d+)\.?(\d)", text.strip())
    if m and ("." in text or text.startswith("sm")):
        cc = (int(m.group(1)), int(m.group(2)))
        return Gpu(
            index=index,
            name=f"GPU with compute capability {cc[0]}.{cc[1]}",
            compute_capability=cc,
            memory_total_mib=None,
        )
    model = db.gpu_cc(text)
    if model is None:
        raise SnapshotError(
            f"--gpu {text!r}: unknown GPU name. Give its compute capability "
            "instead, e.g. --gpu 8.6 (see https://developer.nvidia.com/cuda-gpus)"
        )
    return Gpu(index=index, name=text, compute_capability=model.cc, memory_total_mib=None)


def apply_flags(base: Machine | None, flags: MachineFlags, db: CompatDB) -> Machine:
    """A machine from flags, on top of ``base`` (a snapshot) when one is given."""
    if base is None:
        base = Machine(
            os=OSInfo(system="linux", arch="x86_64"),
            python=PythonInfo(version=detect_python().version),
            nvidia=None,
            gpus=(),
        )
    m = base
    if flags.os:
        m = replace(m, os=replace(m.os, system=normalize_system(flags.os)))
    if flags.arch:
        m = replace(m, os=replace(m.os, arch=normalize_arch(flags.arch)))
    if flags.driver:
        if not re.fullmatch(r"\d+(\.\d+){0,2}", flags.driver):
            raise SnapshotError(f"--driver {flags.driver!r}: expected a version such as 580.95.05")
        m = replace(m, nvidia=NvidiaInfo(driver=flags.driver, cuda_driver=None, source="flags"))
    if flags.gpus:
        m = replace(m, gpus=tuple(_gpu_from_flag(g, i, db) for i, g in enumerate(flags.gpus)))
    if flags.python:
        if not re.fullmatch(r"3\.\d+", flags.python):
            raise SnapshotError(f"--python {flags.python!r}: expected X.Y such as 3.12")
        m = replace(m, python=PythonInfo(version=flags.python), env=None)
    if m.gpus and m.nvidia is None:
        raise NoPlanError(
            "--gpu was given without --driver: pass the driver version too "
            "(e.g. --driver 570.133.07), since it decides which CUDA builds run"
        )
    return m


def load_machines(paths: tuple[Path, ...], flags: MachineFlags, db: CompatDB) -> list[Machine]:
    """The machines to plan for: snapshot files and folders of them, else the flags alone,
    else this machine; the flags apply on top of each."""
    from bnb_provision.detect.machine import detect_machine, load_machine

    machines = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise SnapshotError(
                    f"--machine {path}: the folder holds no *.json snapshot "
                    "(bnb-provision detect --json > NAME.json writes one)"
                )
            machines += [load_machine(p) for p in found]
        else:
            machines.append(load_machine(path))
    if machines:
        return [apply_flags(m, flags, db) for m in machines]
    if flags.any_machine_flag:
        return [apply_flags(None, flags, db)]
    return [apply_flags(detect_machine(), flags, db)]


def plan_for(machine: Machine, db: CompatDB, constraints: Constraints) -> Plan:
    target = target_from_machine(machine, db, python=constraints.python)
    return make_plan(target, db, constraints)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    t = plan.target
    v = plan.verified
    return {
        "schema": PLAN_SCHEMA,
        "tool": {"name": "bnb-provision", "version": __version__},
        "db_version": plan.db_version,
        "machine": {
            "platform": t.platform,
            "os": t.os,
            "arch": t.arch,
            "driver": t.driver_label or (str(t.driver) if t.driver else None),
            "gpus": [{"name": n, "compute_capability": f"{cc[0]}.{cc[1]}"} for n, cc in t.gpus],
            "wsl": t.wsl,
        },
        "python": plan.python,
        "profile": plan.profile,
        "torch": {
            "version": str(plan.torch.version),
            "variant": plan.torch.variant,
            "cuda": plan.torch.cuda,
            "channel": plan.torch.channel,
            "index_url": plan.torch.index_url,
            "coverage": dict(plan.torch.coverage),
        },
        "bitsandbytes": {
            "version": str(plan.bitsandbytes.version),
            "library": plan.bitsandbytes.library,
            "loader_rule": plan.bitsandbytes.rule,
            "fallback": plan.bitsandbytes.fallback,
            "coverage": dict(plan.bitsandbytes.coverage),
        },
        "packages": dict(plan.packages),
        "verified": None
        if v is None
        else {
            "gpu": v.gpu,
            "driver": str(v.driver),
            "evidence": v.evidence,
            "source": v.source,
            "checked": v.checked,
        },
        "reasons": list(plan.reasons),
        "warnings": list(plan.warnings),
        "rejected": [{"what": r.what, "why": r.why} for r in plan.rejected],
        "constraints": {
            "torch": plan.constraints.torch,
            "bnb": plan.constraints.bnb,
            "cuda": plan.constraints.cuda,
            "python": plan.constraints.python,
            "profile": plan.constraints.profile,
        },
        "bnb_config_snippet": plan.snippet,
    }
