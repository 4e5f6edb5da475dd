"""What the resolver turned down, said once per reason, and when nothing qualifies, the
message that names the blocking facts and the ways out (a newer driver, fewer pins,
another Python, the CPU backend), each one tried before it is offered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final

from bnb_provision.core.cuda import CPU, ComputeCapability
from bnb_provision.db.model import CompatDB
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.model import Plan, Rejection, Target

__all__ = ["Retry", "dedupe", "group_rejections", "no_plan_message"]

_SHOWN: Final = 6  # items listed per grouped rejection
_BLOCKING: Final = 15  # grouped rejections in a no-plan message

Retry = Callable[[Target, Constraints], Plan | None]
"""Plan again for a changed target or changed pins; None when that fails too."""


def group_rejections(items: Iterable[Rejection]) -> list[str]:
    """One line per distinct reason: ``torch 2.14.1+cu126, 2.13.0+cu126: driver ... too old``."""
    order: list[str] = []
    groups: dict[str, list[str]] = {}
    for r in items:
        if r.why not in groups:
            order.append(r.why)
            groups[r.why] = []
        if r.what not in groups[r.why]:
            groups[r.why].append(r.what)
    out = []
    for why in order:
        whats = groups[why]
        extra = len(whats) - _SHOWN
        shown = ", ".join(whats[:_SHOWN]) + (f" and {extra} more" if extra > 0 else "")
        out.append(f"{shown}: {why}")
    return out


def dedupe(items: Iterable[Rejection]) -> tuple[Rejection, ...]:
    """The rejections in their first order, each once."""
    return tuple(dict.fromkeys(items))


def no_plan_message(
    db: CompatDB,
    target: Target,
    cons: Constraints,
    rejected: Iterable[Rejection],
    retry: Retry,
) -> str:
    """Why no combination runs on ``target`` under ``cons``, and what would make one run."""
    head = (
        f"no known combination runs on this machine ({target.platform}, Python "
        f"{cons.python or target.python}"
        + (
            ", " + ", ".join(f"{n} {ComputeCapability(*cc).sm}" for n, cc in target.gpus)
            if target.gpus
            else ""
        )
        + (f", driver {target.driver_text}" if target.driver else "")
        + ")"
    )
    if cons.describe():
        head += " under " + " ".join(cons.describe())
    lines = [head, "Blocking facts:"]
    lines += [f"  - {line}" for line in group_rejections(rejected)[:_BLOCKING]]
    lines.append("Way out:")
    outs = _ways_out(db, target, cons, retry) or [
        "none found in the DB; see the blocking facts above"
    ]
    lines += [f"  - {o}" for o in outs]
    return "\n".join(lines)


def _ways_out(db: CompatDB, target: Target, cons: Constraints, retry: Retry) -> list[str]:
    outs = []
    newer = _newer_driver(db, target, cons, retry)
    if newer is not None:
        outs.append(newer)
    if cons.describe():
        plan = retry(target, Constraints(profile=cons.profile, python=cons.python))
        if plan is not None:
            outs.append(
                f"drop {' '.join(c for c in cons.describe() if not c.startswith('--python'))}"
                f": torch {plan.torch.version}+{plan.torch.variant} with bitsandbytes "
                f"{plan.bitsandbytes.version} fits"
            )
    if cons.python:
        plan = retry(target, replace(cons, python=None))
        if plan is not None:
            outs.append(
                f"use Python {plan.python}: torch {plan.torch.version}+{plan.torch.variant} fits"
            )
    if target.gpus and cons.cuda != CPU:
        plan = retry(target, replace(cons, cuda=CPU))
        if plan is not None:
            outs.append(
                f"--cuda cpu: torch {plan.torch.version} CPU build with bitsandbytes "
                f"{plan.bitsandbytes.version}'s CPU backend (slow, but it runs)"
            )
    return outs


def _newer_driver(db: CompatDB, target: Target, cons: Constraints, retry: Retry) -> str | None:
    """The oldest driver floor above the target's under which a plan exists."""
    if target.driver is None or not target.gpus:
        return None
    floors = sorted(f.windows if target.os == "windows" else f.linux for f in db.families)
    for drv in floors:
        if drv > target.driver:
            plan = retry(replace(target, driver=drv, driver_label=None), cons)
            if plan is not None:
                return (
                    f"install NVIDIA driver >= {drv}: then torch {plan.torch.version}+"
                    f"{plan.torch.variant} with bitsandbytes "
                    f"{plan.bitsandbytes.version} fits"
                )
    return None
