"""What init and rebuild build: the lock to install (the one given, or this machine's from a
manifest) and the plan the environment must satisfy (under the lock's own pins, around an
adopted system torch, or fresh from the constraints)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bnb_provision.core.cuda import cuda_option
from bnb_provision.env.options import BuildOptions, Log, PlanSummary
from bnb_provision.errors import LockfileError, NoPlanError, TargetEnvError
from bnb_provision.lock.pins import MANIFEST_FILE, LockPins, requirements_for

# The resolver, the DB and the machine load inside the functions that use them: with a
# lock given, init starts uv first and loads them while uv installs.
if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.target import EnvInfo
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.model import Plan

__all__ = [
    "Context",
    "Inputs",
    "context_for",
    "plan_env",
    "resolve_lock",
    "select_from_manifest",
]


class Inputs:
    """The machine and the DB, each worked out once, when first needed."""

    def __init__(self, machine: Machine | None, db: CompatDB | None) -> None:
        self._machine = machine
        self._db = db

    def machine(self) -> Machine:
        if self._machine is None:
            from bnb_provision.detect.machine import detect_machine

            self._machine = detect_machine()
        return self._machine

    def db(self) -> CompatDB:
        if self._db is None:
            from bnb_provision.db.load import load_db

            self._db = load_db()
        return self._db


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What planning found: the machine, its plan, the DB, an adopted torch's environment."""

    machine: Machine
    plan: Plan
    db: CompatDB
    system_env: EnvInfo | None = None

    @property
    def summary(self) -> PlanSummary:
        return PlanSummary.of(self.plan)


# -- the lock to install ------------------------------------------------------------


def select_from_manifest(
    manifest: Path, machine: Machine, db: CompatDB, constraints: Constraints
) -> Path:
    """The lock of the manifest's class that runs on ``machine``."""
    from bnb_provision.lock.manifest import read_manifest
    from bnb_provision.plan.inputs import plan_for

    locks = read_manifest(manifest)
    reasons = []
    for cls in locks.classes:
        pin = dataclasses.replace(
            constraints,
            torch=cls.torch,
            bnb=cls.bitsandbytes,
            cuda=cuda_option(cls.variant) or constraints.cuda,
            python=cls.python,
        )
        try:
            plan = plan_for(machine, db, pin)
        except NoPlanError as exc:
            reasons.append(f"{cls.name}: {str(exc).splitlines()[0]}")
            continue
        if plan.target.platform.startswith(cls.os) and plan.target.arch == cls.arch:
            return locks.requirements_of(cls)
        reasons.append(f"{cls.name}: for {cls.os}-{cls.arch}")
    raise NoPlanError(f"{manifest}: no lock class fits this machine:\n  " + "\n  ".join(reasons))


def resolve_lock(opts: BuildOptions, inputs: Inputs, log: Log) -> Path | None:
    """The requirements file to install: the given one, or this machine's from a manifest."""
    lock = opts.lock
    if lock is None:
        return None
    if lock.is_dir() or lock.name == MANIFEST_FILE:
        manifest = lock / MANIFEST_FILE if lock.is_dir() else lock
        if not manifest.is_file():
            raise LockfileError(f"{lock}: no {MANIFEST_FILE} in it (bnb-provision lock writes one)")
        lock = select_from_manifest(manifest, inputs.machine(), inputs.db(), opts.constraints)
        log(f"manifest: this machine uses {lock.name}")
    return requirements_for(lock).resolve()


# -- the plan -----------------------------------------------------------------------


def _plan_around(machine: Machine, db: CompatDB, opts: BuildOptions, system_env: EnvInfo) -> Plan:
    """The plan for an adopted torch: its version, its CUDA, its Python."""
    from packaging.version import Version

    from bnb_provision.plan.inputs import plan_for

    if system_env.torch is None:
        raise TargetEnvError(f"--torch system: {opts.torch_system} has no torch installed")
    cons = dataclasses.replace(
        opts.constraints,
        torch=str(Version(system_env.torch.version).public),
        python=system_env.python.minor,
        cuda=system_env.torch.cuda or "cpu",
    )
    return plan_for(machine, db, cons)


def _plan_for_lock(machine: Machine, db: CompatDB, pins: LockPins, opts: BuildOptions) -> Plan:
    """The plan this machine gets under the lock's own pins: it must exist, or the lock
    does not run here (a CUDA build too new for the driver, a GPU its kernels lack)."""
    from packaging.version import Version

    from bnb_provision.plan.inputs import plan_for

    cons = dataclasses.replace(
        opts.constraints,
        torch=Version(pins.torch).public if pins.torch else opts.constraints.torch,
        bnb=pins.bitsandbytes or opts.constraints.bnb,
        cuda=cuda_option(pins.torch_variant) or opts.constraints.cuda,
        python=pins.python or opts.constraints.python,
    )
    try:
        return plan_for(machine, db, cons)
    except NoPlanError as exc:
        raise NoPlanError(f"the lock does not run on this machine: {exc}") from exc


def plan_env(
    inputs: Inputs, opts: BuildOptions, pins: LockPins | None, system_env: EnvInfo | None
) -> Plan:
    """The plan an environment is built to: the lock's, the adopted torch's, or a fresh one."""
    from bnb_provision.plan.inputs import plan_for

    if system_env is not None:
        return _plan_around(inputs.machine(), inputs.db(), opts, system_env)
    if pins is not None:
        return _plan_for_lock(inputs.machine(), inputs.db(), pins, opts)
    return plan_for(inputs.machine(), inputs.db(), opts.constraints)


def context_for(inputs: Inputs, opts: BuildOptions, pins: LockPins | None) -> Context:
    """Inspect an adopted torch's environment, then plan."""
    from bnb_provision.detect.target import inspect_env

    system_env = inspect_env(str(opts.torch_system), []) if opts.torch_system else None
    return Context(
        machine=inputs.machine(),
        plan=plan_env(inputs, opts, pins, system_env),
        db=inputs.db(),
        system_env=system_env,
    )
