"""What the non-NVIDIA planners (:mod:`~bnb_provision.plan.rocm`,
:mod:`~bnb_provision.plan.xpu_mps`) hand back: a :class:`Plan` with its reasons, or the
no-plan message with the blocking facts and the way out."""

from __future__ import annotations

from bnb_provision.plan.model import BnbChoice, Plan, TorchChoice
from bnb_provision.plan.reasons import snippet
from bnb_provision.plan.rejections import dedupe, group_rejections
from bnb_provision.plan.search import Search

__all__ = ["backend_plan", "no_backend_plan"]

_BLOCKING = 15


def backend_plan(
    s: Search,
    torch: TorchChoice,
    bnb: BnbChoice,
    stack: tuple[tuple[str, str], ...],
    reasons: tuple[str, ...],
    warnings: tuple[str, ...],
) -> Plan:
    """The plan of a search that found ``torch``, ``bnb`` and the Hugging Face ``stack``."""
    t = s.target
    hf = (
        "Hugging Face: "
        + ", ".join(f"{n} {v}" for n, v in stack)
        + f" (newest that fit Python {t.python}, torch and the DB's floors)"
    )
    return Plan(
        target=t,
        python=t.python,
        profile=s.cons.profile,
        torch=torch,
        bitsandbytes=bnb,
        packages=(("torch", str(torch.version)), ("bitsandbytes", str(bnb.version)), *stack),
        verified=None,
        reasons=(*reasons, hf),
        warnings=warnings,
        rejected=dedupe(s.rejected),
        constraints=s.cons,
        db_version=s.db.version,
        snippet=snippet(t, s.db, torch, bnb),
    )


def no_backend_plan(s: Search, backend: str, way_out: str) -> str:
    """Why no ``backend`` combination runs on the target, and what to do."""
    t = s.target
    gpus = ", ".join(f"{a.name} ({a.target or 'target unknown'})" for a in t.accelerators)
    head = f"no known {backend} combination runs on this machine ({t.platform}, Python {t.python}"
    head += (f", {gpus})" if gpus else ")") + (
        " under " + " ".join(s.cons.describe()) if s.cons.describe() else ""
    )
    lines = [head, "Blocking facts:"]
    lines += [f"  - {line}" for line in group_rejections(s.rejected)[:_BLOCKING]]
    lines += ["Way out:", f"  - {way_out}"]
    return "\n".join(lines)
