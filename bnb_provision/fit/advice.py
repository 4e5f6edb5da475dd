"""Advice computed from the estimate, never generic: the numbers that would make it work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final

from bnb_provision.fit.estimate import Estimate, Workload
from bnb_provision.fit.gpus import GpuTarget
from bnb_provision.fit.judge import Judgement, judge
from bnb_provision.fit.report import Advice
from bnb_provision.fit.rules import ReleaseRules
from bnb_provision.fit.weights import WeightPlan

__all__ = ["advise"]

_MIB: Final = 1024 * 1024
_GIB: Final = 1024 * _MIB
_MAX_SEQ: Final = 131072
Rerun = Callable[[Workload], Estimate]


def _fits(
    est: Estimate, plan: WeightPlan, gpus: tuple[GpuTarget, ...], rules: ReleaseRules
) -> bool:
    return all(v.fits for v in judge(est, plan, gpus, rules).verdicts)


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The largest n in [lo, hi] with ok(n), ok being monotone (None if not even lo)."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _max_memory(
    est: Estimate, plan: WeightPlan, gpus: tuple[GpuTarget, ...], rules: ReleaseRules
) -> list[Advice]:
    """When the device map refuses: the largest max_memory each GPU can really give, or offload."""
    load = est.load_peak
    reserve = load.context + load.transient_16bit + load.allocator
    sizes = tuple(max(int((g.available_mib * _MIB - reserve) // _MIB), 0) for g in gpus)
    j = judge(est, plan, gpus, rules, max_memory_mib=sizes)
    mapping = (
        "{" + ", ".join(f"{g.index}: '{m}MiB'" for g, m in zip(gpus, sizes, strict=True)) + "}"
    )
    if not j.placement.refused:
        ok = all(v.fits for v in j.verdicts)
        return [
            Advice(
                kind="max_memory",
                text=(
                    f"pass max_memory={mapping} with device_map='auto': transformers then keeps "
                    f"only {rules.quantizer_reserve:.0%} back instead of "
                    f"{1 - (1 - rules.quantizer_reserve) * (1 - rules.single_gpu_reserve):.0%}, "
                    + (
                        "and every module stays on the GPU"
                        if ok
                        else "but the peak still does not fit"
                    )
                ),
                value=mapping,
            )
        ]
    cpu = 4 * j.placement.leftover_elements
    return [
        Advice(
            kind="offload",
            text=(
                f"even max_memory={mapping} leaves {len(j.placement.leftover)} module(s) for the "
                "CPU; offloading them needs llm_int8_enable_fp32_cpu_offload=True, a device_map "
                f"you write, and {cpu / _GIB:.0f} GiB of CPU memory (they stay in fp32 there)"
            ),
            value=f"{cpu / _GIB:.0f}GiB",
        )
    ]


def _prequantized(est: Estimate, gpus: tuple[GpuTarget, ...], plan: WeightPlan) -> list[Advice]:
    load = est.load_peak
    transient = load.transient_16bit + load.allocator
    if plan.prequantized or not transient or est.phase != "load":
        return []
    without = (load.total - transient) / _MIB
    if all(without <= g.available_mib for g in gpus):
        return [
            Advice(
                kind="prequantized",
                text=(
                    f"the 16-bit copies made while quantizing ({transient / _MIB:.0f} MiB) are "
                    f"what breaks it: a checkpoint saved already quantized loads at "
                    f"{without:.0f} MiB "
                    "(quantize once on a larger GPU and save_pretrained, or use a published "
                    "bitsandbytes-4bit checkpoint)"
                ),
                value=f"{without:.0f}MiB",
            )
        ]
    return []


def _shapes(w: Workload, ok: Callable[[Workload], bool], fits_now: bool) -> list[Advice]:
    """The longest sequence at this batch, and the largest batch at this sequence, that fit."""
    out = []
    hi = max(w.seq * 8, _MAX_SEQ // max(w.batch, 1))
    seq = _largest(1, hi, lambda s: ok(replace(w, seq=s)))
    what = "inference" if w.mode == "inference" else "training step"
    if seq is None:
        out.append(
            Advice(kind="sequence", text=f"no sequence length fits at batch {w.batch}", value=None)
        )
    elif not fits_now or seq > w.seq:
        out.append(
            Advice(
                kind="sequence",
                text=f"the {what} fits up to --seq {seq} at --batch {w.batch}",
                value=str(seq),
            )
        )
    batch = _largest(1, max(w.batch * 8, 64), lambda b: ok(replace(w, batch=b)))
    if batch is not None and (not fits_now or batch > w.batch):
        out.append(
            Advice(
                kind="batch",
                text=f"at --seq {w.seq} the {what} fits up to --batch {batch}",
                value=str(batch),
            )
        )
    return out


def _training(w: Workload, ok: Callable[[Workload], bool]) -> list[Advice]:
    out = []
    if not w.gradient_checkpointing and ok(replace(w, gradient_checkpointing=True)):
        out.append(
            Advice(
                kind="checkpointing",
                text="with gradient checkpointing on, it fits (gradient_checkpointing=True)",
                value="on",
            )
        )
    if w.optimizer != "paged_adamw_8bit" and ok(replace(w, optimizer="paged_adamw_8bit")):
        out.append(
            Advice(
                kind="optimizer",
                text="with optim='paged_adamw_8bit' it fits",
                value="paged_adamw_8bit",
            )
        )
    return out


def advise(
    *,
    est: Estimate,
    judgement: Judgement,
    plan: WeightPlan,
    gpus: tuple[GpuTarget, ...],
    rules: ReleaseRules,
    workload: Workload,
    rerun: Rerun,
) -> list[Advice]:
    """Computed advice for the GPUs given: what to change, by how much."""
    out: list[Advice] = []
    fits_now = all(v.fits for v in judgement.verdicts)
    if judgement.placement.refused:
        out += _max_memory(est, plan, gpus, rules)
    if not fits_now and not judgement.placement.refused:
        out += _prequantized(est, gpus, plan)
    if workload.mode != "load" and not judgement.placement.refused:

        def ok(w: Workload) -> bool:
            return _fits(rerun(w), plan, gpus, rules)

        out += _shapes(workload, ok, fits_now)
        if workload.mode == "qlora" and not fits_now:
            out += _training(workload, ok)
    return out
