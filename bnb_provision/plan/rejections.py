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


def group_rejections(items: Iterable[Rejection], shown: int | None = _SHOWN) -> list[str]:
    """One line per distinct reason: ``torch 2.14.1+cu126, 2.13.0+cu126: driver ... too old``;
    at most ``shown`` candidates a line (None: every one)."""
    limit = shown
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
        whats = groups[why] if limit is None else groups[why][:limit]
        extra = len(groups[why]) - len(whats)
        out.append(", ".join(whats) + (f" and {extra} more" if extra > 0 else "") + f": {why}")
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
    assumed: str | None = None,
) -> str:
    """Why no combination runs on ``target`` under ``cons``, and what would make one run.
    ``assumed``: no driver was given, and ``target``'s is the newest the GPUs can have
    (this says why)."""
    driver = f", driver {target.driver_text}" if target.driver else ""
    if assumed is not None:
        driver = (
            ", no driver given: not even the newest driver these GPUs can have runs one, "
            f"{target.driver_text} ({assumed})"
        )
    head = (
        f"no known combination runs on this machine ({target.platform}, Python "
        f"{cons.python or target.python}"
        + (
            ", " + ", ".join(f"{n} {ComputeCapability(*cc).sm}" for n, cc in target.gpus)
            if target.gpus
            else ""
        )
        + driver
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
    newer = _newer_driver(db, target, cons, retry) or _newer_macos(db, target, cons, retry)
    if newer is not None:
        outs.append(newer)
    pins = [c for c in cons.describe() if not c.startswith("--python")]
    if pins:
        plan = retry(target, replace(cons, torch=None, bnb=None, cuda=None))
        if plan is not None:
            outs.append(
                f"drop {' '.join(pins)}: torch {plan.torch.label} with bitsandbytes "
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


def _newer_macos(db: CompatDB, target: Target, cons: Constraints, retry: Retry) -> str | None:
    """The oldest macOS release above the target's whose wheels make a plan."""
    if target.os != "macos" or target.os_version is None:
        return None
    floors = {r.macos for r in db.bnb_releases if r.macos is not None}
    floors |= {v for r in db.torch_releases for _, v in r.macos}
    for release in sorted(f for f in floors if f > target.os_version):
        plan = retry(replace(target, os_version=release), cons)
        if plan is not None:
            return (
                f"upgrade to macOS {release}: then torch {plan.torch.label} with bitsandbytes "
                f"{plan.bitsandbytes.version} fits (their macOS wheels need it)"
            )
    return None


def _newer_driver(db: CompatDB, target: Target, cons: Constraints, retry: Retry) -> str | None:
    """The oldest driver floor above the target's under which a plan exists (never past the
    last branch of these GPUs). A newer driver only adds builds, so a bisection finds it."""
    if target.driver is None or not target.gpus:
        return None
    last = db.last_branch(target.ccs)
    floors = [
        f
        for f in db.driver_floors(target.os)
        if f > target.driver and (last is None or f.major <= last.branch)
    ]

    def attempt(i: int) -> Plan | None:
        return retry(replace(target, driver=floors[i], driver_label=None), cons)

    if not floors or (best := attempt(len(floors) - 1)) is None:
        return None
    low, high = 0, len(floors) - 1  # a plan at high; find the lowest index with one
    while low < high:
        mid = (low + high) // 2
        plan = attempt(mid)
        if plan is None:
            low = mid + 1
        else:
            high, best = mid, plan
    return (
        f"install NVIDIA driver >= {floors[high]}: then torch {best.torch.label} with "
        f"bitsandbytes {best.bitsandbytes.version} fits"
    )
