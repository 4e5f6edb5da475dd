"""The machine stamp written into each environment bnb-provision builds.

``<env>/bnb-provision-stamp.json`` records what the environment was built and
verified for (driver, GPUs, torch build, bitsandbytes library, lock hash, DB
version), so ``doctor`` and ``rebuild`` can tell when the machine drifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.jsonio import read_json
from bnb_provision.errors import NoPlanError, SnapshotError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.vocab import PROFILES, STACKS, Stack

if TYPE_CHECKING:
    from bnb_provision.detect.machine import Machine

__all__ = [
    "STAMP_FILE",
    "STAMP_SCHEMA",
    "Request",
    "Stamp",
    "gpu_ids",
    "machine_drift",
    "read_stamp",
]


STAMP_FILE: Final = "bnb-provision-stamp.json"
STAMP_SCHEMA: Final = "bnb-provision.stamp/1"
MAX_STAMP_BYTES: Final = 1024 * 1024  # a stamp is a few hundred bytes
T = TypeVar("T", bound=str)


def _choice(f: Fields, key: str, options: tuple[T, ...], what: str) -> T:
    """One word of a closed vocabulary, or a FieldError naming the field."""
    text = f.text(key)
    for option in options:
        if option == text:
            return option
    raise FieldError(f"{f.sub(key)}: unknown {what} {text!r} (one of {', '.join(options)})")


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """What init was asked, recorded so that rebuild asks the same: the stack, the plan's
    constraints, or the lock (as given: a folder, a manifest or a file; and the
    requirements file installed from it), or the adopted system torch."""

    stack: Stack
    constraints: Constraints
    lock: str | None = None  # absolute
    lock_file: str | None = None  # the requirements file installed (absolute)
    torch_system: str | None = None
    cuda_without_gpu: bool = False

    def to_dict(self) -> dict[str, Any]:
        c = self.constraints
        return {
            "stack": self.stack,
            "constraints": {
                "torch": c.torch,
                "bnb": c.bnb,
                "cuda": c.cuda,
                "python": c.python,
                "profile": c.profile,
            },
            "lock": None if self.lock is None else {"given": self.lock, "file": self.lock_file},
            "torch_system": self.torch_system,
            "cuda_without_gpu": self.cuda_without_gpu,
        }

    def describe(self) -> str:
        """``--lock /team/locks`` / ``--torch 2.13 --stack gptq``: as a command line says it."""
        if self.lock:
            return f"--lock {self.lock}"
        parts = self.constraints.describe()
        if self.torch_system:
            parts.insert(0, f"--torch system --system-python {self.torch_system}")
        if self.constraints.profile != "inference":
            parts.append(f"--profile {self.constraints.profile}")
        return " ".join([*parts, f"--stack {self.stack}"])


def _request(f: Fields) -> Request:
    c = f.table("constraints")
    constraints = Constraints(
        torch=c.text("torch", None),
        bnb=c.text("bnb", None),
        cuda=c.text("cuda", None),
        python=c.text("python", None),
        profile=_choice(c, "profile", PROFILES, "profile"),
    )
    c.done()
    lock = f.table("lock", None)
    given = file = None
    if lock is not None:
        given, file = lock.text("given"), lock.text("file", None)
        lock.done()
    r = Request(
        stack=_choice(f, "stack", STACKS, "stack"),
        constraints=constraints,
        lock=given,
        lock_file=file,
        torch_system=f.text("torch_system", None),
        cuda_without_gpu=f.flag("cuda_without_gpu", False),
    )
    f.done()
    return r


@dataclass(frozen=True, kw_only=True, slots=True)
class Stamp:
    created: str
    driver: str | None
    gpus: tuple[tuple[str, str], ...]  # (name, "X.Y")
    torch: str | None
    bitsandbytes: str | None
    library: str | None
    lock_sha256: str | None
    db_version: str
    verified: bool
    request: Request | None = None  # None in stamps written before it was recorded

    def to_dict(self) -> dict[str, Any]:
        request = {"request": self.request.to_dict()} if self.request else {}
        return {
            "schema": STAMP_SCHEMA,
            "created": self.created,
            "driver": self.driver,
            "gpus": [{"name": n, "compute_capability": c} for n, c in self.gpus],
            "torch": self.torch,
            "bitsandbytes": self.bitsandbytes,
            "library": self.library,
            "lock_sha256": self.lock_sha256,
            "db_version": self.db_version,
            "verified": self.verified,
            **request,
        }


def stamp_from_dict(data: object) -> Stamp:
    f = Fields(data, "")
    schema = f.text("schema")
    f.check(schema == STAMP_SCHEMA, "schema", f"expected {STAMP_SCHEMA!r}")
    gpus = []
    for g in f.tables("gpus", []):
        gpus.append((str(g.text("name")), str(g.text("compute_capability"))))
        g.done()
    s = Stamp(
        created=f.text("created"),
        driver=f.text("driver", None),
        gpus=tuple(gpus),
        torch=f.text("torch", None),
        bitsandbytes=f.text("bitsandbytes", None),
        library=f.text("library", None),
        lock_sha256=f.text("lock_sha256", None),
        db_version=f.text("db_version"),
        verified=f.flag("verified", False),
        request=_request(r) if (r := f.table("request", None)) is not None else None,
    )
    f.done()
    return s


def read_stamp(env_prefix: str | Path) -> Stamp | None:
    """The stamp of an environment, or None when it has none."""
    path = Path(env_prefix) / STAMP_FILE
    if not path.exists():
        return None
    try:
        return stamp_from_dict(read_json(path, max_bytes=MAX_STAMP_BYTES))
    except (OSError, ValueError, NoPlanError) as exc:  # FieldError and JsonInputError too
        raise SnapshotError(
            f"{path}: unreadable stamp ({exc}); delete it or run bnb-provision rebuild"
        ) from exc


def gpu_ids(machine: Machine) -> tuple[tuple[str, str], ...]:
    """The machine's GPUs as a stamp records them: (name, compute capability "X.Y")."""
    return tuple((g.name, g.cc_text or "?") for g in machine.gpus)


def machine_drift(stamp: Stamp, machine: Machine) -> list[str]:
    """What changed on the machine since the stamp was written: another driver, GPUs added
    or changed. A driver or GPUs no longer seen are not counted: that is as likely a
    detection that failed as hardware that left, and doctor reports it on its own."""
    out = []
    driver = machine.nvidia.driver if machine.nvidia else None
    if driver and stamp.driver != driver:
        out.append(f"driver {stamp.driver or 'none'} -> {driver}")
    live = gpu_ids(machine)
    if live and stamp.gpus != live:

        def show(gs: tuple[tuple[str, str], ...]) -> str:
            return ", ".join(f"{n} ({cc})" for n, cc in gs) or "none"

        out.append(f"GPUs {show(stamp.gpus)} -> {show(live)}")
    return out
