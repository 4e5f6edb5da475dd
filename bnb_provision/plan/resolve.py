"""The resolver: (target, DB, constraints) -> plan. A pure function.

A combination qualifies only if

* the driver can run its CUDA build (minor-version compatibility floor);
* the torch build has kernels for every GPU (SASS of the same major with a minor no newer
  than the GPU's, or PTX no newer than it that the driver is new enough to JIT-compile);
* bitsandbytes has a wheel for the platform, accepts that torch and Python, and ships the
  library its loader would pick for that CUDA version, with kernels for every GPU;
* the companions asked for and the Hugging Face stack fit (Python, torch, the floors).

Among qualifying plans the newest torch wins. A combination verified on hardware is
evidence: it is shown, and it is preferred only over a combination of the same torch
minor. Without a driver version the plan is made for the newest driver the GPUs can have,
with the ladder of what older drivers get (:mod:`~bnb_provision.plan.ladder`).
The checks live in :mod:`~bnb_provision.plan.search`, a plan's reasons and warnings in
:mod:`~bnb_provision.plan.reasons`, the no-plan message in
:mod:`~bnb_provision.plan.rejections`.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from bnb_provision.core.cuda import CPU, variant_of_cuda
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import Verified
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.backends import backend_of, check_cuda_option, plan_backend
from bnb_provision.plan.capability import check_ccs
from bnb_provision.plan.constraints import Constraints, pin_matches
from bnb_provision.plan.ladder import driver_ceiling, driver_floor, walk_ladder
from bnb_provision.plan.model import Plan, Target
from bnb_provision.plan.reasons import plan_reasons, plan_warnings, snippet
from bnb_provision.plan.rejections import dedupe, no_plan_message
from bnb_provision.plan.search import Candidate, Search
from bnb_provision.vocab import PROFILES

__all__ = ["make_plan"]


def make_plan(target: Target, db: CompatDB, constraints: Constraints | None = None) -> Plan:
    """Choose the combination for ``target``, or raise :class:`NoPlanError` with the way out."""
    cons = check_cuda_option(db, constraints or Constraints())
    if backend_of(target, cons) != "cuda":  # AMD, Intel, Apple: plan.backends
        return plan_backend(target, db, cons)
    if target.gpus and target.driver is None:
        return _without_driver(target, db, cons)
    plan, search = _search(db, target, cons)
    if plan is not None:
        return plan
    retry = functools.partial(_try, db)
    raise NoPlanError(no_plan_message(db, target, cons, search.rejected, retry))


def _without_driver(target: Target, db: CompatDB, cons: Constraints) -> Plan:
    """The plan for the newest driver these GPUs can have, with its driver ladder."""
    _preflight(db, target, cons)
    ceiling = driver_ceiling(db, target)
    top_target = replace(target, driver=ceiling.driver, driver_label=None)
    top, search = _search(db, top_target, cons)
    if top is None:
        retry = functools.partial(_try, db)
        raise NoPlanError(
            no_plan_message(db, top_target, cons, search.rejected, retry, assumed=ceiling.why)
        )
    ladder = walk_ladder(db, target, top, lambda t: _try(db, t, cons))
    plan = _plan(search, (top.torch, top.bitsandbytes, _others(top)), top.verified, shown=target)
    head = (
        "no driver version given: planned for the newest driver these GPUs can have, "
        f"{ceiling.driver} ({ceiling.why}); this plan needs driver >= {plan.driver_floor}"
        + (
            "; older drivers get the plans of the driver ladder"
            if ladder
            else "; no older driver floor in the DB runs a combination"
        )
    )
    return replace(plan, ladder=ladder, reasons=(head, *plan.reasons))


def _others(plan: Plan) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in plan.packages if n not in ("torch", "bitsandbytes"))


def _try(db: CompatDB, target: Target, cons: Constraints) -> Plan | None:
    try:
        return _search(db, target, cons)[0]
    except NoPlanError:
        return None


def _preflight(db: CompatDB, t: Target, c: Constraints) -> None:
    """Refuse what no DB row could fix, with the way out."""
    if c.profile not in PROFILES:
        raise NoPlanError(f"--profile {c.profile}: expected one of {', '.join(PROFILES)}")
    if c.cuda is not None:
        try:
            variant_of_cuda(c.cuda)
        except ValueError:
            raise NoPlanError(
                f"--cuda {c.cuda}: expected a CUDA version X.Y such as 12.6, or cpu"
            ) from None
    if t.os == "macos" and (t.gpus or (c.cuda and c.cuda != CPU)):
        raise NoPlanError(
            "CUDA is not available on macOS: NVIDIA GPUs and CUDA builds of torch and "
            "bitsandbytes do not exist there.\nWay out: plan without --cuda (torch's MPS "
            "build with bitsandbytes >= 0.49, which ships a macOS arm64 wheel), or plan for a "
            "Linux machine with --os linux --gpu ... --driver ..."
        )
    if t.jetson and c.cuda != CPU:
        raise NoPlanError(
            "This is an NVIDIA Jetson (L4T): PyPI's aarch64 torch and bitsandbytes wheels are "
            "SBSA builds that fail there ('named symbol not found').\nWay out: JetPack's own "
            "torch wheels and a bitsandbytes built from source for the Jetson's arch "
            "(https://huggingface.co/docs/bitsandbytes/main/en/installation), or --cuda cpu."
        )
    check_ccs(db, t)


def _search(db: CompatDB, target: Target, cons: Constraints) -> tuple[Plan | None, Search]:
    _preflight(db, target, cons)
    if cons.python and target.python != cons.python:
        target = replace(target, python=cons.python)
    s = Search(db=db, target=target, cons=cons)
    newest = _newest(s)
    if newest is None:
        return None, s
    torch = newest[0].version
    verified = _verified(s, (torch.major, torch.minor))
    if verified is not None:
        return _plan(s, *verified), s
    return _plan(s, newest, _exact(s, newest)), s


def _newest(s: Search) -> Candidate | None:
    """The newest torch that runs here, with the newest bitsandbytes that fits it."""
    candidates: list[Candidate] = []
    for rel in s.torch_releases():
        if not s.python_ok(f"torch {rel.version}", rel.requires_python, rel.pythons):
            continue
        variants = s.torch_variants(rel)
        if not variants:
            s.reject(f"torch {rel.version}", "no build for this platform under the constraints")
        for variant, channel, unverified in variants:
            torch = s.check_torch(rel, variant, channel, unverified)
            if torch is None:
                continue
            for brel in s.bnb_releases:
                found = s.complete(torch, brel)
                if found is not None:
                    candidates.append(found)
                    break
        if candidates:
            break
    return candidates[0] if candidates else None


def _rows_here(s: Search) -> list[Verified]:
    """The verified rows of this platform whose GPU is the one every GPU here is."""
    t = s.target
    if not t.gpus:
        return []
    return [
        v for v in s.db.verified if v.platform == t.platform and all(cc == v.cc for cc in t.ccs)
    ]


def _exact(s: Search, c: Candidate) -> Verified | None:
    """The verified row that is exactly this combination, if any."""
    torch, bnb, _ = c
    return next(
        (
            v
            for v in _rows_here(s)
            if v.torch == torch.version and v.variant == torch.variant and v.bnb == bnb.version
        ),
        None,
    )


def _verified(s: Search, minor: tuple[int, int]) -> tuple[Candidate, Verified] | None:
    """A verified combination of torch ``minor`` (the newest that runs here) that qualifies
    here: it breaks the tie within that minor, never across minors."""
    t, cons = s.target, s.cons
    for v in _rows_here(s):
        if (v.torch.major, v.torch.minor) != minor:
            continue
        if not pin_matches(cons.torch, v.torch) or not pin_matches(cons.bnb, v.bnb):
            continue
        vrel = next((r for r in s.db.torch_releases if r.version == v.torch), None)
        if vrel is None or not s.python_ok(
            f"torch {vrel.version}", vrel.requires_python, vrel.pythons
        ):
            continue
        channel = "pypi" if vrel.pypi_variant(t.platform) == v.variant else "index"
        if cons.cuda and v.variant != variant_of_cuda(cons.cuda):
            continue
        torch = s.check_torch(vrel, v.variant, channel)
        vbnb = next((b for b in s.bnb_releases if b.version == v.bnb), None)
        if torch is None or vbnb is None:
            continue
        found = s.complete(torch, vbnb)
        if found is not None:
            return found, v
    return None


def _plan(
    s: Search, candidate: Candidate, verified: Verified | None, shown: Target | None = None
) -> Plan:
    """The plan of ``candidate``; ``shown`` is the target as the user described it, where
    the search ran for an assumed driver."""
    db = s.db
    t = shown or s.target
    torch, bnb, others = candidate
    companions = tuple((n, v) for n, v in others if n in s.cons.companions)
    floor = driver_floor(db, t.os, torch, bnb)
    evidence = tuple(v for v in _rows_here(s) if v is not verified)
    return Plan(
        target=t,
        python=s.target.python,
        profile=s.cons.profile,
        torch=torch,
        bitsandbytes=bnb,
        packages=(("torch", str(torch.version)), ("bitsandbytes", str(bnb.version)), *others),
        verified=verified,
        reasons=plan_reasons(t, db, torch, bnb, others, verified, evidence, floor),
        warnings=plan_warnings(t, db, torch, bnb),
        rejected=dedupe(s.rejected),
        constraints=s.cons,
        db_version=db.version,
        snippet=snippet(t, db, torch, bnb),
        driver_floor=floor,
        evidence=evidence,
        companions=companions,
    )
