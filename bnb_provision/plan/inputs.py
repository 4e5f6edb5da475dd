"""Turn plan inputs (a snapshot, flags, or this machine) into the resolver's target, and
plan for it."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from packaging.version import Version

from bnb_provision.core.cuda import ComputeCapability
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
from bnb_provision.plan.model import Plan, Target
from bnb_provision.plan.resolve import make_plan

__all__ = [
    "MachineFlags",
    "apply_flags",
    "load_machines",
    "plan_for",
    "target_from_machine",
]


def _gpu_from_flag(text: str, index: int, db: CompatDB) -> Gpu:
    try:
        cc = ComputeCapability.parse(text)
    except ValueError:
        pass
    else:
        return Gpu(
            index=index,
            name=f"GPU with compute capability {cc}",
            compute_capability=(cc.major, cc.minor),
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
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine

    machines = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise SnapshotError(
                    f"--machine {path}: the folder holds no *.json snapshot "
                    "(bnb-provision detect --json > NAME.json writes one)"
                )
            machines += [load_machine(p, python=flags.python) for p in found]
        else:
            machines.append(load_machine(path, python=flags.python))
    if machines:
        return [apply_flags(m, flags, db) for m in machines]
    if flags.any_machine_flag:
        return [apply_flags(None, flags, db)]
    return [apply_flags(detect_machine(), flags, db)]


def target_from_machine(machine: Machine, db: CompatDB, python: str | None = None) -> Target:
    """Reduce a machine snapshot to what the resolver needs; look up unknown CCs."""
    gpus = []
    jetson = False
    for g in machine.gpus:
        model = db.gpu_cc(g.name)
        cc = g.compute_capability or (model.cc if model else None)
        if cc is None:  # a machine's description is wrong, not the plan: a snapshot error
            raise SnapshotError(
                f"{machine.label or 'this machine'}: GPU {g.index} ({g.name}): its compute "
                "capability is unknown (the driver did not report it and the DB does not know "
                'the name). Add it to the snapshot ("compute_capability": "8.6") or pass it as '
                "--gpu X.Y, e.g. --gpu 8.6."
            )
        jetson = jetson or bool(model and model.jetson)
        gpus.append((g.name, cc))
    if machine.env is not None and python is None:
        python = machine.env.python.minor
    return Target(
        os=machine.os.system,
        arch=machine.os.arch,
        python=python or machine.python.minor,
        driver=Version(machine.nvidia.driver) if machine.nvidia is not None else None,
        driver_label=machine.nvidia.driver if machine.nvidia else None,
        gpus=tuple(gpus),
        jetson=jetson,
        wsl=machine.os.wsl,
        msvc_runtime=machine.os.msvc_runtime,
    )


def plan_for(machine: Machine, db: CompatDB, constraints: Constraints) -> Plan:
    """The plan for ``machine`` under ``constraints`` (raises NoPlanError with the way out)."""
    target = target_from_machine(machine, db, python=constraints.python)
    return make_plan(target, db, constraints)
