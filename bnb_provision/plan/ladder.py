"""Driver floors and the driver ladder.

A plan's *driver floor* is the oldest driver it runs on: the minor-version-compatibility
floor of its CUDA major, raised to the toolkit's own driver where a GPU runs only through
PTX (the driver must be as new as the toolkit that emitted it).

Without a driver version the resolver plans for the newest driver the GPUs can have: the
newest driver floor the DB records, but never past the legacy branch that ends support
for the oldest GPU (R580 for Maxwell, Pascal and Volta). It then walks down every older
floor the DB records and keeps each one that changes the answer: the *ladder*, so one
answer serves every driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from packaging.version import Version

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.db.model import CompatDB
from bnb_provision.plan.model import BnbChoice, Plan, Rung, Target, TorchChoice

__all__ = ["Ceiling", "driver_ceiling", "driver_floor", "walk_ladder"]

Attempt = Callable[[Target], Plan | None]
"""Plan for the target with a given driver; None when nothing qualifies there."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Ceiling:
    """The newest driver a plan without a driver version assumes, and why that one."""

    driver: Version
    why: str


def driver_ceiling(db: CompatDB, target: Target) -> Ceiling:
    """The newest driver floor the DB records for the target's OS, capped at the last
    branch that supports its oldest GPU."""
    floors = db.driver_floors(target.os)
    last = db.last_branch(target.ccs)
    if last is not None:
        capped = [f for f in floors if f.major <= last.branch]
        return Ceiling(
            driver=capped[-1],
            why=f"R{last.branch} is the last driver branch for compute capability below "
            f"{last.below_cc[0]}.{last.below_cc[1]}, {last.source}",
        )
    return Ceiling(driver=floors[-1], why="the newest driver floor the DB records")


def driver_floor(db: CompatDB, os_name: str, torch: TorchChoice, bnb: BnbChoice) -> Version | None:
    """The oldest driver ``torch`` and ``bnb`` run on (None: a build without CUDA)."""
    if torch.cuda is None:
        return None
    floor, _ = db.min_driver(torch.cuda, os_name)
    needs: list[Version | None] = [floor]
    if any(how == "ptx" for _, how in torch.coverage):
        needs.append(db.toolkit_driver(CudaVersion.parse(torch.cuda), os_name))
    if bnb.library and any(how == "ptx" for _, how in bnb.coverage):
        lib = next(
            (r for r in db.bnb_libraries if r.file == bnb.library and r.bnb == bnb.version), None
        )
        if lib is not None and lib.toolkit is not None:
            needs.append(db.toolkit_driver(lib.toolkit, os_name))
    known = [n for n in needs if n is not None]
    return max(known) if known else None


def _key(plan: Plan) -> tuple[object, ...]:
    t, b = plan.torch, plan.bitsandbytes
    return (t.version, t.variant, t.channel, b.version, b.library, plan.packages)


def walk_ladder(db: CompatDB, target: Target, top: Plan, attempt: Attempt) -> tuple[Rung, ...]:
    """The plans older driver floors get, newest first, each from the floor where it
    starts; ``top`` is the plan at the ceiling. Stops where nothing runs any more."""
    rungs: list[Rung] = []
    current = _key(top)
    ceiling = top.target.driver
    for drv in reversed(db.driver_floors(target.os)):
        if ceiling is not None and drv >= ceiling:
            continue
        plan = attempt(replace(target, driver=drv, driver_label=None))
        if plan is None:
            break
        if _key(plan) == current:
            continue
        current = _key(plan)
        floor = driver_floor(db, target.os, plan.torch, plan.bitsandbytes) or drv
        rungs.append(Rung(driver=floor, torch=plan.torch, bitsandbytes=plan.bitsandbytes))
    return tuple(rungs)
