"""Judging an estimate against GPUs: the device map transformers would plan, then the peak."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bnb_provision.fit.devicemap import Placement, balanced_budgets, build_tree, place
from bnb_provision.fit.estimate import Estimate
from bnb_provision.fit.gpus import GpuTarget
from bnb_provision.fit.report import GpuVerdict, Verdict
from bnb_provision.fit.rules import ReleaseRules
from bnb_provision.fit.weights import WeightPlan

__all__ = ["Judgement", "judge"]

_MIB: Final = 1024 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class Judgement:
    verdicts: tuple[GpuVerdict, ...]
    placement: Placement
    need_mib: tuple[int, ...]


def _needs(est: Estimate, placement: Placement, n: int) -> list[float]:
    """Each GPU's peak: context and transients on every GPU, the rest split like the weights."""
    peak = est.peak
    own = peak.context + peak.transient_16bit + (peak.allocator if est.phase == "load" else 0)
    shared = peak.total - own
    if n == 1:
        return [peak.total]
    total = sum(placement.gpu_bytes) or 1.0
    return [own + shared * b / total for b in placement.gpu_bytes]


def _verdict(
    g: GpuTarget,
    need_mib: int,
    band_mib: int,
    est: Estimate,
    placement: Placement,
    budgets: list[float],
) -> GpuVerdict:
    margin = g.available_mib - need_mib
    verdict: Verdict
    if placement.refused:
        verdict = "device_map_refuses"
        reason = (
            f"device_map='auto' keeps {round(sum(budgets) / _MIB)} MiB for weights after "
            f"transformers' headroom; {len(placement.leftover)} module(s) "
            f"({', '.join(placement.leftover[:3])}...) would go to the CPU, which "
            "bitsandbytes refuses ('Some modules are dispatched on the CPU or the disk')"
        )
    elif margin < 0:
        verdict = "out_of_memory"
        reason = f"needs {need_mib} MiB at its peak ({est.phase}), {-margin} MiB more than it has"
    else:
        verdict = "fits"
        reason = f"peak {need_mib} MiB ({est.phase}) leaves {margin} MiB"
    tight = not placement.refused and abs(margin) <= band_mib
    if tight:
        reason += f"; tight: the caching allocator can move the peak by about {band_mib} MiB"
    return GpuVerdict(
        index=g.index,
        name=g.name,
        memory_mib=g.total_mib,
        available_mib=g.available_mib,
        need_mib=need_mib,
        fits=verdict == "fits",
        verdict=verdict,
        margin_mib=margin,
        tight=tight,
        reason=reason,
        source=g.source,
    )


def judge(
    est: Estimate,
    plan: WeightPlan,
    gpus: tuple[GpuTarget, ...],
    rules: ReleaseRules,
    max_memory_mib: tuple[int, ...] | None = None,
) -> Judgement:
    """Will ``device_map="auto"`` place the model, and does each GPU hold its peak?"""
    ctx = est.load_peak.context
    root = build_tree(plan.tensors)
    if max_memory_mib is not None:
        free = [float(m * _MIB) for m in max_memory_mib]
    else:
        free = [max(g.available_mib * _MIB - ctx, 0.0) for g in gpus]
    budgets = balanced_budgets(
        root,
        free,
        user_max_memory=max_memory_mib is not None,
        single_gpu_reserve=rules.single_gpu_reserve,
        quantizer_reserve=rules.quantizer_reserve,
    )
    placement = place(root, budgets)
    needs = _needs(est, placement, len(gpus))
    band_mib = round(est.band / _MIB)
    verdicts = [
        _verdict(g, round(need / _MIB), band_mib, est, placement, budgets)
        for g, need in zip(gpus, needs, strict=True)
    ]
    return Judgement(
        verdicts=tuple(verdicts),
        placement=placement,
        need_mib=tuple(round(n / _MIB) for n in needs),
    )
