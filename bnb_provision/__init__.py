"""bnb-provision: detect, plan, lock and repair bitsandbytes / PyTorch / CUDA stacks.

The public API, for scripts; each stage is one call::

    import bnb_provision as bp

    machine = bp.detect_machine()  # or bp.load_machine("machine.json")
    db = bp.load_db()
    plan = bp.plan_for(machine, db, bp.Constraints(profile="qlora"))
    locks = bp.lock_machines([machine], db, bp.Constraints(), bp.LockOptions(output=Path("locks")))
    built = bp.init_env(bp.BuildOptions(env=Path(".venv-bnb"), constraints=bp.Constraints()))
    findings = bp.diagnose(bp.detect_machine(python=".venv-bnb/bin/python"), db)
    findings = bp.explain_text(traceback_text, db)

Every error is a :class:`ProvisionError` subclass with its own ``exit_code``. The
names load on first use (a module ``__getattr__``), so ``import bnb_provision`` and
``bnb-provision detect`` import only what they use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

__version__ = "0.1.0"

__all__ = [
    "BuildOptions",
    "CompatDBError",
    "Constraints",
    "DoctorOptions",
    "ExternalToolError",
    "FindingsError",
    "FitInputError",
    "FitRequest",
    "LockDriftError",
    "LockOptions",
    "LockRequest",
    "LockfileError",
    "MachineFlags",
    "NoPlanError",
    "ProvisionError",
    "SnapshotError",
    "TargetEnvError",
    "__version__",
    "detect_machine",
    "diagnose",
    "explain_text",
    "init_env",
    "load_db",
    "load_machine",
    "lock_machines",
    "lock_request",
    "plan_for",
    "rebuild_env",
]

_WHERE: Final = {
    # detect: the machine and a target environment
    "detect_machine": "bnb_provision.detect.machine",
    "load_machine": "bnb_provision.detect.snapshot",
    # db: the curated compatibility database
    "load_db": "bnb_provision.db.load",
    # plan: the combination that runs on a machine
    "plan_for": "bnb_provision.plan.inputs",
    "Constraints": "bnb_provision.plan.constraints",
    "MachineFlags": "bnb_provision.plan.constraints",
    # lock: hash-pinned lock files through uv
    "lock_machines": "bnb_provision.lock.lockset",
    "lock_request": "bnb_provision.lock.lockset",
    "LockOptions": "bnb_provision.lock.spec",
    "LockRequest": "bnb_provision.lock.lockset",
    # env: build, rebuild
    "init_env": "bnb_provision.env.build",
    "rebuild_env": "bnb_provision.env.build",
    "BuildOptions": "bnb_provision.env.options",
    # doctor: diagnose an environment, explain an error text
    "diagnose": "bnb_provision.doctor.diagnose",
    "DoctorOptions": "bnb_provision.doctor.check",
    "explain_text": "bnb_provision.doctor.explain",
    # errors, each with its exit code
    "ProvisionError": "bnb_provision.errors",
    "TargetEnvError": "bnb_provision.errors",
    "SnapshotError": "bnb_provision.errors",
    "CompatDBError": "bnb_provision.errors",
    "NoPlanError": "bnb_provision.errors",
    "ExternalToolError": "bnb_provision.errors",
    "LockfileError": "bnb_provision.errors",
    "FindingsError": "bnb_provision.errors",
    "FitInputError": "bnb_provision.errors",
    # fit: will a model load, or QLoRA-train, on these GPUs (bnb_provision.fit.fit)
    "FitRequest": "bnb_provision.fit.api",
    "LockDriftError": "bnb_provision.errors",
}
"""Each public name and the module that defines it."""

if TYPE_CHECKING:
    from bnb_provision.db.load import load_db
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine
    from bnb_provision.doctor.check import DoctorOptions
    from bnb_provision.doctor.diagnose import diagnose
    from bnb_provision.doctor.explain import explain_text
    from bnb_provision.env.build import init_env, rebuild_env
    from bnb_provision.env.options import BuildOptions
    from bnb_provision.errors import (
        CompatDBError,
        ExternalToolError,
        FindingsError,
        FitInputError,
        LockDriftError,
        LockfileError,
        NoPlanError,
        ProvisionError,
        SnapshotError,
        TargetEnvError,
    )
    from bnb_provision.fit.api import FitRequest
    from bnb_provision.lock.lockset import LockRequest, lock_machines, lock_request
    from bnb_provision.lock.spec import LockOptions
    from bnb_provision.plan.constraints import Constraints, MachineFlags
    from bnb_provision.plan.inputs import plan_for


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bnb_provision' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
