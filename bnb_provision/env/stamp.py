"""The machine stamp written into each environment bnb-provision builds.

``<env>/bnb-provision-stamp.json`` records what the environment was built and
verified for (driver, GPUs, torch build, bitsandbytes library, lock hash, DB
version), so ``doctor`` and ``rebuild`` can tell when the machine drifted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.errors import SnapshotError

if TYPE_CHECKING:
    from bnb_provision.detect.machine import Machine

__all__ = ["STAMP_FILE", "STAMP_SCHEMA", "Stamp", "gpu_ids", "machine_drift", "read_stamp"]

STAMP_FILE: Final = "bnb-provision-stamp.json"
STAMP_SCHEMA: Final = "bnb-provision.stamp/1"


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

    def to_dict(self) -> dict[str, Any]:
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
    )
    f.done()
    return s


def read_stamp(env_prefix: str | Path) -> Stamp | None:
    """The stamp of an environment, or None when it has none."""
    path = Path(env_prefix) / STAMP_FILE
    if not path.exists():
        return None
    try:
        return stamp_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, FieldError) as exc:
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
