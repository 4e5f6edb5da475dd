"""Turn plan inputs (a snapshot, flags, or this machine) into the resolver's target, and
plan for it."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Final

from packaging.version import Version

from bnb_provision.core.cuda import ComputeCapability, DriverVersion
from bnb_provision.db.model import CompatDB
from bnb_provision.detect.accelerators import ACCELERATOR_VENDORS, Accelerator
from bnb_provision.detect.host import (
    OSInfo,
    PythonInfo,
    detect_python,
    normalize_arch,
    normalize_system,
)
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo
from bnb_provision.errors import SnapshotError
from bnb_provision.plan.constraints import Constraints, MachineFlags
from bnb_provision.plan.model import Plan, Target
from bnb_provision.plan.resolve import make_plan

_GFX_RE: Final = re.compile(r"gfx[0-9a-f]{3,5}")

__all__ = [
    "MachineFlags",
    "apply_flags",
    "load_machines",
    "plan_for",
    "target_from_machine",
]


def _gpu_from_flag(text: str, index: int, db: CompatDB) -> Gpu | Accelerator:
    """A ``--gpu`` value: a compute capability (``8.6``), a gfx target (``gfx1100``) or a
    model as users name it (``4090``, ``RX 7900 XTX``, ``Arc A770``, ``M3``)."""
    try:
        cc = ComputeCapability.parse(text)
    except ValueError:
        pass
    else:
        return _gpu_of_cc(text, cc, index, db)
    if _GFX_RE.fullmatch(text.strip().lower()):
        return _gpu_of_gfx(text.strip().lower(), index, db)
    match = db.gpus().find(text)
    if match is None:
        model = db.gpu_cc(text)  # the name patterns NVML names are matched with
        if model is not None:
            return Gpu(index=index, name=text, compute_capability=model.cc, memory_total_mib=None)
        near = db.gpus().suggest(text)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise SnapshotError(
            f"--gpu {text!r}: unknown GPU name; {hint}Or give what its kernels are built for: "
            "a compute capability (--gpu 8.6, https://developer.nvidia.com/cuda-gpus) or a gfx "
            "target (--gpu gfx1100)"
        )
    entry = match.entry
    if entry.cc is not None:
        return Gpu(
            index=index,
            name=entry.name,
            compute_capability=entry.cc,
            memory_total_mib=match.memory_mib,
        )
    return Accelerator(
        vendor=next(v for v in ACCELERATOR_VENDORS if v == entry.vendor),
        index=index,
        name=entry.name,
        target=entry.target,
        memory_total_mib=match.memory_mib,
    )


def _gpu_of_cc(text: str, cc: ComputeCapability, index: int, db: CompatDB) -> Gpu:
    known = [ComputeCapability(*cc) for cc in db.known_ccs()]
    if cc not in known:
        raise SnapshotError(
            f"--gpu {text}: no GPU with compute capability {cc} is known. Known: "
            f"{', '.join(map(str, known))} (https://developer.nvidia.com/cuda-gpus)"
        )
    return Gpu(
        index=index,
        name=f"GPU with compute capability {cc}",
        compute_capability=(cc.major, cc.minor),
        memory_total_mib=None,
    )


def _gpu_of_gfx(target: str, index: int, db: CompatDB) -> Accelerator:
    models = db.gpus().by_target(target)
    name = models[0].name if len(models) == 1 else "AMD GPU"
    return Accelerator(vendor="amd", index=index, name=name, target=target)


def apply_flags(base: Machine | None, flags: MachineFlags, db: CompatDB) -> Machine:
    """A machine from flags, on top of ``base`` (a snapshot) when one is given."""
    if base is None:
        base = Machine(
            os=OSInfo(system="linux", arch="x86_64"),
            python=PythonInfo(version=detect_python().version),
            nvidia=None,
            gpus=(),
        )
    m = _os_flags(base, flags)
    if flags.driver:
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9}){0,2}", flags.driver):
            raise SnapshotError(f"--driver {flags.driver!r}: expected a version such as 580.95.05")
        m = replace(m, nvidia=NvidiaInfo(driver=flags.driver, cuda_driver=None, source="flags"))
    if flags.gpus:
        given = [_gpu_from_flag(g, i, db) for i, g in enumerate(flags.gpus)]
        m = replace(
            m,
            gpus=tuple(g for g in given if isinstance(g, Gpu)),
            accelerators=tuple(g for g in given if isinstance(g, Accelerator)),
        )
    if flags.python:
        if not re.fullmatch(r"3\.[0-9]{1,3}", flags.python):
            raise SnapshotError(f"--python {flags.python!r}: expected X.Y such as 3.12")
        m = replace(m, python=PythonInfo(version=flags.python), env=None)
    return m


def _os_flags(m: Machine, flags: MachineFlags) -> Machine:
    """``--os``, ``--arch`` and ``--os-version`` on top of ``m``. ``--os macos`` means Apple
    silicon (arm64, spelled aarch64 here) unless ``--arch`` says otherwise."""
    if flags.os:
        system = normalize_system(flags.os)
        arch = "aarch64" if system == "macos" and m.os.system != "macos" else m.os.arch
        m = replace(m, os=replace(m.os, system=system, arch=arch))
    if flags.arch:
        m = replace(m, os=replace(m.os, arch=normalize_arch(flags.arch)))
    if flags.os_version:
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9}){0,2}", flags.os_version):
            raise SnapshotError(
                f"--os-version {flags.os_version!r}: expected a release such as 13 or 14.5"
            )
        if m.os.system != "macos":
            raise SnapshotError(
                "--os-version is the macOS release (it decides which macOS wheels install); "
                f"this machine is {m.os.system}: pass --os macos too"
            )
        m = replace(m, os=replace(m.os, release=flags.os_version))
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
    # an Intel GPU whose architecture is unknown (most integrated graphics) does not turn a
    # CPU plan into an xpu one: --gpu "Arc A770" or --cuda xpu asks for that
    accelerators = tuple(
        a
        for a in (_with_target(a, db) for a in machine.accelerators)
        if a.vendor != "intel" or a.target is not None
    )
    if machine.env is not None and python is None:
        python = machine.env.python.minor
    return Target(
        os=machine.os.system,
        arch=machine.os.arch,
        python=python or machine.python.minor,
        driver=DriverVersion(machine.nvidia.driver) if machine.nvidia is not None else None,
        driver_label=machine.nvidia.driver if machine.nvidia else None,
        gpus=tuple(gpus),
        jetson=jetson,
        wsl=machine.os.wsl,
        msvc_runtime=machine.os.msvc_runtime,
        accelerators=accelerators if not gpus else (),  # NVIDIA GPUs decide the build
        os_version=_macos_release(machine),
    )


def _with_target(a: Accelerator, db: CompatDB) -> Accelerator:
    """A detected GPU with its target from the catalogue when detection could not read it
    (Apple's chips; an Intel GPU the catalogue names)."""
    if a.target is not None:
        return a
    match = db.gpus().find(a.name)
    if match is None or match.entry.vendor != a.vendor:
        return a
    return replace(a, target=match.entry.target)


def _macos_release(machine: Machine) -> Version | None:
    """The macOS release (``14.5``) of a macOS machine, when its snapshot or a flag says."""
    release = machine.os.release
    if machine.os.system != "macos" or not release:
        return None
    m = re.match(r"[0-9]{1,9}(\.[0-9]{1,9})?", release.strip())
    return Version(m.group(0)) if m else None


def plan_for(machine: Machine, db: CompatDB, constraints: Constraints) -> Plan:
    """The plan for ``machine`` under ``constraints`` (raises NoPlanError with the way out)."""
    target = target_from_machine(machine, db, python=constraints.python)
    return make_plan(target, db, constraints)
