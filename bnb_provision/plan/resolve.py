"""The resolver: (target, DB, constraints) -> plan. A pure function.

A combination qualifies only if

* the driver can run its CUDA build (minor-version compatibility floor);
* the torch build has kernels for every GPU (SASS of the same major with a
  minor no newer than the GPU's, or PTX no newer than it);
* bitsandbytes has a wheel for the platform, accepts that torch and Python,
  and ships the library its loader would pick for that CUDA version, with
  kernels for every GPU;
* the Hugging Face stack fits (Python, torch, the curated floors).

Among qualifying plans, verified combinations come first, then the newest.
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
from bnb_provision.plan.constraints import Constraints, pin_matches
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
    plan, search = _search(db, target, cons)
    if plan is not None:
        return plan
    retry = functools.partial(_try, db)
    raise NoPlanError(no_plan_message(db, target, cons, search.rejected, retry))


def _try(db: CompatDB, target: Target, cons: Constraints) -> Plan | None:
    try:
        return _search(db, target, cons)[0]
    except NoPlanError:
        return None


def _preflight(t: Target, c: Constraints) -> None:
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
            "bitsandbytes do not exist there.\nWay out: plan without --cuda (torch's MPS/CPU "
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
    if t.gpus and t.driver is None:
        raise NoPlanError(
            "GPUs are listed but no NVIDIA driver version is known: pass "
            "--driver VERSION (nvidia-smi prints it)."
        )


def _search(db: CompatDB, target: Target, cons: Constraints) -> tuple[Plan | None, Search]:
    _preflight(target, cons)
    if cons.python and target.python != cons.python:
        target = replace(target, python=cons.python)
    s = Search(db=db, target=target, cons=cons)
    newest = _newest(s)
    verified = _verified(s)
    if verified is not None:
        return _plan(s, *verified), s
    if newest is not None:
        return _plan(s, newest, None), s
    return None, s


def _newest(s: Search) -> Candidate | None:
    """The newest torch that runs here, with the newest bitsandbytes that fits it."""
    candidates: list[Candidate] = []
    for rel in s.torch_releases():
        if not s.python_ok(f"torch {rel.version}", rel.requires_python, rel.pythons):
            continue
        variants = s.torch_variants(rel)
        if not variants:
            s.reject(f"torch {rel.version}", "no build for this platform under the constraints")
        for variant, channel in variants:
            torch = s.check_torch(rel, variant, channel)
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


def _verified(s: Search) -> tuple[Candidate, Verified] | None:
    """The first combination verified on this platform and these GPUs that qualifies here."""
    t, cons = s.target, s.cons
    for v in s.db.verified:
        if v.platform != t.platform or not t.gpus:
            continue
        if any(cc != v.cc for cc in t.ccs):
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


def _plan(s: Search, candidate: Candidate, verified: Verified | None) -> Plan:
    t, db = s.target, s.db
    torch, bnb, stack = candidate
    return Plan(
        target=t,
        python=t.python,
        profile=s.cons.profile,
        torch=torch,
        bitsandbytes=bnb,
        packages=(("torch", str(torch.version)), ("bitsandbytes", str(bnb.version)), *stack),
        verified=verified,
        reasons=plan_reasons(t, db, torch, bnb, stack, verified),
        warnings=plan_warnings(t, db, torch, bnb),
        rejected=dedupe(s.rejected),
        constraints=s.cons,
        db_version=db.version,
        snippet=snippet(t, torch, db.min_cc("bf16")),
    )
