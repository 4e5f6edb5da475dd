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
    from bnb_provision.lock.select import MachineFacts
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


def machine_facts(machine: Machine, db: CompatDB, constraints: Constraints) -> MachineFacts:
    """This machine as a lock class is matched: OS, arch, Python (``--python`` when given),
    driver and each GPU's architecture (looked up in the DB where a snapshot lacks it)."""
    from bnb_provision.lock.select import MachineFacts
    from bnb_provision.plan.inputs import target_from_machine

    target = target_from_machine(machine, db, python=constraints.python)
    return MachineFacts(
        os=target.os,
        arch=target.arch,
        python=target.python,
        driver=target.driver_label,
        gpu_archs=tuple(f"{a}.{b}" for _, (a, b) in target.gpus),
    )


def select_from_manifest(manifest: Path, inputs: Inputs, opts: BuildOptions, log: Log) -> Path:
    """The requirements file of the manifest's class this machine takes (its facts, not a
    plan, decide: lock.select), after saying why; NoPlanError with the nearest class
    when none fits."""
    from bnb_provision.lock.manifest import read_manifest
    from bnb_provision.lock.select import select_class

    locks = read_manifest(manifest)
    if all(c.stack != opts.stack for c in locks.classes):
        stacks = sorted({c.stack for c in locks.classes})
        raise LockfileError(
            f"{manifest}: its locks are for --stack {', '.join(stacks)}, not {opts.stack}; "
            f"pass --stack {stacks[0]} (its environment is .venv-{stacks[0]} by default)"
        )
    facts = machine_facts(inputs.machine(), inputs.db(), opts.constraints)
    chosen = select_class(locks, facts, cuda_without_gpu=opts.cuda_without_gpu)
    log(f"manifest: this machine ({facts.describe()}) takes {chosen.explain()}")
    return locks.requirements_of(chosen.chosen)


def resolve_lock(opts: BuildOptions, inputs: Inputs, log: Log) -> Path | None:
    """The requirements file to install: the given one, or this machine's from a manifest."""
    lock = opts.lock
    if lock is None:
        return None
    if lock.is_dir() or lock.name == MANIFEST_FILE:
        manifest = lock / MANIFEST_FILE if lock.is_dir() else lock
        if not manifest.is_file():
            raise LockfileError(f"{lock}: no {MANIFEST_FILE} in it (bnb-provision lock writes one)")
        lock = select_from_manifest(manifest, inputs, opts, log)
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
    if opts.offline:  # bitsandbytes and the Hugging Face packages come from the wheelhouse
        from bnb_provision.plan.wheelhouse import plan_from_wheelhouse, read_wheelhouse

        house = read_wheelhouse(opts.find_links)
        return plan_from_wheelhouse(machine, db, cons, house, keep_torch=True)
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
    machine = _machine_for_lock(machine, pins, opts)
    try:
        return plan_for(machine, db, cons)
    except NoPlanError as exc:
        raise NoPlanError(f"the lock does not run on this machine: {exc}") from exc


def _machine_for_lock(machine: Machine, pins: LockPins, opts: BuildOptions) -> Machine:
    """``machine``, or for a CUDA lock on a machine without GPU (only with
    ``--cuda-without-gpu``: an image built for GPU hosts) the machines the lock was made
    for, from its header (their GPU architectures and driver floor)."""
    from bnb_provision.detect.nvidia import Gpu, NvidiaInfo

    if machine.gpus or not pins.torch_variant.startswith("cu"):
        return machine
    torch = f"torch {pins.torch}" + ("" if "+" in (pins.torch or "+") else f"+{pins.torch_variant}")
    if not opts.cuda_without_gpu:
        raise NoPlanError(
            f"the lock is a CUDA build ({torch}) and this machine has no NVIDIA GPU: it would "
            "install gigabytes of CUDA libraries that nothing here uses, and torch would run "
            "on the CPU. Take a CPU lock (bnb-provision lock --cuda cpu), or pass "
            "--cuda-without-gpu to install it anyway (e.g. to build an image for GPU hosts)."
        )
    needs = pins.needs
    if needs is None or not needs.gpu_archs or not needs.driver_floor:
        raise NoPlanError(
            f"--cuda-without-gpu: the lock ({torch}) does not say which GPUs and driver it "
            "was made for (no '# Needs:' line in its header); lock it again with this "
            "bnb-provision"
        )
    gpus = tuple(
        Gpu(index=i, name=f"GPU with compute capability {cc}", compute_capability=_cc(cc),
            memory_total_mib=None)
        for i, cc in enumerate(needs.gpu_archs)
    )  # fmt: skip
    nvidia = NvidiaInfo(driver=needs.driver_floor, cuda_driver=None, source="lock")
    return dataclasses.replace(machine, gpus=gpus, nvidia=nvidia)


def _cc(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def plan_env(
    inputs: Inputs, opts: BuildOptions, pins: LockPins | None, system_env: EnvInfo | None
) -> Plan:
    """The plan an environment is built to: the lock's, the adopted torch's, or a fresh one."""
    from bnb_provision.plan.inputs import plan_for

    if system_env is not None:
        return _plan_around(inputs.machine(), inputs.db(), opts, system_env)
    if pins is not None:
        return _plan_for_lock(inputs.machine(), inputs.db(), pins, opts)
    if opts.offline:  # plan only what the wheelhouse holds: uv installs nothing else
        from bnb_provision.plan.wheelhouse import plan_from_wheelhouse, read_wheelhouse

        house = read_wheelhouse(opts.find_links)
        return plan_from_wheelhouse(inputs.machine(), inputs.db(), opts.constraints, house)
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
