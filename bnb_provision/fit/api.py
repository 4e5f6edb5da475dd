"""``fit()``: will this model load, run or QLoRA-train on these GPUs? The one library call."""

from __future__ import annotations

from dataclasses import dataclass, field

from bnb_provision.errors import FitInputError
from bnb_provision.fit.advice import advise
from bnb_provision.fit.estimate import Estimate, Workload, estimate
from bnb_provision.fit.gpus import GpuTarget
from bnb_provision.fit.judge import Judgement, judge
from bnb_provision.fit.model import ModelSpec
from bnb_provision.fit.report import FitReport, ModelSummary
from bnb_provision.fit.rules import ReleaseRules, load_rules
from bnb_provision.fit.weights import WeightPlan, plan_weights

__all__ = ["FitRequest", "fit"]

_QUANTS = ("nf4", "fp4", "int8")
_DTYPES = ("bfloat16", "float16", "float32")
_MAX_TOKENS = 1 << 24


@dataclass(frozen=True, kw_only=True, slots=True)
class FitRequest:
    model: ModelSpec
    quant: str = "nf4"
    double_quant: bool = False
    compute_dtype: str = "bfloat16"
    skip_modules: tuple[str, ...] | None = None
    workload: Workload = field(default_factory=Workload)
    gpus: tuple[GpuTarget, ...] = ()
    max_memory_mib: tuple[int, ...] | None = None
    versions: tuple[tuple[str, str], ...] = ()


def _check(req: FitRequest) -> None:
    w = req.workload
    if req.quant not in _QUANTS:
        raise FitInputError(f"quantization {req.quant!r}: one of {', '.join(_QUANTS)}")
    if req.compute_dtype not in _DTYPES:
        raise FitInputError(f"compute dtype {req.compute_dtype!r}: one of {', '.join(_DTYPES)}")
    if w.seq < 1 or w.batch < 1 or w.tokens > _MAX_TOKENS:
        raise FitInputError(f"--seq {w.seq} x --batch {w.batch}: both must be 1 or more")
    if w.mode == "qlora" and not 1 <= w.lora_r <= 4096:  # noqa: PLR2004
        raise FitInputError(f"--lora-r {w.lora_r}: expected 1..4096")
    if req.max_memory_mib is not None and len(req.max_memory_mib) != len(req.gpus):
        raise FitInputError("give one --max-memory per GPU")


def _plan(req: FitRequest, rules: ReleaseRules) -> tuple[WeightPlan, str, bool]:
    pre = req.model.arch.prequantized
    quant = pre.quant if pre else req.quant
    double = pre.double_quant if pre else req.double_quant
    skips = (
        req.skip_modules if req.skip_modules is not None else (pre.skip_modules if pre else None)
    )
    plan = plan_weights(
        req.model.tensors,
        req.model.arch,
        rules,
        quant=quant,
        double_quant=double,
        dtype=req.compute_dtype,
        skip_modules=skips,
    )
    return plan, quant, double


def _assumptions(req: FitRequest, rules: ReleaseRules, plan: WeightPlan) -> list[str]:
    cal = rules.calibration
    out = [*req.model.notes]
    versions = ", ".join(f"{k} {v}" for k, v in rules.versions)
    out.append(
        f"rules of {versions}: device_map='auto' keeps {rules.quantizer_reserve:.0%} of each GPU "
        f"back for bitsandbytes, and {rules.single_gpu_reserve:.0%} more on a single GPU "
        "without max_memory"
    )
    out.append(
        f"CUDA context and libraries: {cal['context_load_mib']:.0f} MiB to load, "
        f"{cal['context_train_mib']:.0f} MiB to train (measured on an H200 with torch "
        "2.11+cu130; other GPUs and drivers differ by a few hundred MiB)"
    )
    if plan.prequantized:
        out.append("pre-quantized checkpoint: weights are copied as stored, no 16-bit transient")
    if (
        req.model.arch.is_moe
        and rules.fused_expert_types
        and rules.experts_fused(req.model.arch.model_type)
    ):
        out.append(
            "mixture of experts: this transformers release keeps the fused expert weights in "
            "16-bit (bitsandbytes converts only nn.Linear)"
        )
    if req.workload.mode == "qlora":
        out.append(
            "QLoRA as peft's prepare_model_for_kbit_training leaves it: every 16-bit weight "
            "that is not 4-bit (embeddings, lm_head, norms) upcast to fp32; LoRA on all linear "
            "layers in fp32; bf16 autocast; loss in fp32"
        )
        if req.workload.optimizer == "paged_adamw_8bit":
            out.append(
                "paged 8-bit AdamW: states of tensors with 100000+ elements live in managed "
                "memory that moves to CPU RAM under pressure; they are counted in the peak"
            )
        if req.quant == "int8":
            out.append("8-bit LoRA: activation constants were measured with nf4 (not calibrated)")
    if not req.gpus:
        out.append("no GPU given or found: memory is estimated, no verdict")
    out.append("GB means GiB, as GPU vendors use it (a 12 GB card holds 12288 MiB)")
    return out


def _estimate(req: FitRequest, plan: WeightPlan, rules: ReleaseRules, w: Workload) -> Estimate:
    return estimate(plan, req.model.arch, rules, w, req.compute_dtype)


def _placement(judgement: Judgement | None, gpus: int) -> tuple[tuple[int, int, int], ...]:
    """Per GPU (several only): its index, how many modules land there, their MiB."""
    if judgement is None or gpus <= 1:
        return ()
    counts = [sum(1 for _, g in judgement.placement.modules if g == i) for i in range(gpus)]
    return tuple(
        (i, counts[i], round(judgement.placement.gpu_bytes[i] / 2**20)) for i in range(gpus)
    )


def fit(req: FitRequest) -> FitReport:
    """Estimate peak and settled GPU memory, judge each GPU, and advise."""
    _check(req)
    rules = load_rules().for_versions(dict(req.versions))
    plan, quant, double = _plan(req, rules)
    est = _estimate(req, plan, rules, req.workload)
    judgement = judge(est, plan, req.gpus, rules, req.max_memory_mib) if req.gpus else None
    advice = (
        advise(
            est=est,
            judgement=judgement,
            plan=plan,
            gpus=req.gpus,
            rules=rules,
            workload=req.workload,
            rerun=lambda w: _estimate(req, plan, rules, w),
        )
        if judgement
        else ()
    )
    arch = req.model.arch
    quantized = plan.elements("quantized")
    placement = _placement(judgement, len(req.gpus))
    return FitReport(
        model=ModelSummary(
            source=req.model.source,
            model_type=arch.model_type,
            read_from=req.model.tensors_from,
            params=req.model.params,
            quantized_params=quantized,
            kept_params=req.model.params - quantized - plan.elements("prequantized"),
            layers=arch.layers,
            hidden=arch.hidden,
            vocab=arch.vocab,
            experts=arch.experts,
            skipped=plan.skipped,
        ),
        quant=quant,
        double_quant=double,
        compute_dtype=req.compute_dtype,
        prequantized=plan.prequantized,
        workload=req.workload,
        lora_params=est.lora_params,
        peak=est.peak,
        settled=est.settled,
        load_peak=est.load_peak,
        phase=est.phase,
        fits=judgement.verdicts if judgement else (),
        placement=placement,
        advice=tuple(advice),
        assumptions=tuple(_assumptions(req, rules, plan)),
        versions=rules.versions,
        sources=(*rules.sources, rules.calibration.source),
    )
