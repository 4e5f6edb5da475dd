"""GPU memory of a bitsandbytes load, an inference prefill, or a QLoRA step, term by term.

Every term follows what the code does (transformers' loader, peft's
``prepare_model_for_kbit_training``, bitsandbytes' optimizers, the loss in fp32); the per-token
constants were measured on real runs (``compat_db/fit.toml`` ``[calibration]``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Final, Literal

from bnb_provision.fit.arch import ArchInfo
from bnb_provision.fit.rules import ReleaseRules
from bnb_provision.fit.weights import DTYPE_SIZE, WeightPlan

__all__ = ["Breakdown", "Estimate", "Workload", "estimate"]

Mode = Literal["load", "inference", "qlora"]
Optimizer = Literal["paged_adamw_8bit", "adamw_8bit", "adamw"]
_MIB: Final = 1024 * 1024
_LAYER_RE: Final = re.compile(r"\.layers\.(\d+)\.")
_NOT_TEXT: Final = re.compile(r"vision|visual|image|audio|multi_modal")


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    mode: Mode = "load"
    seq: int = 2048
    batch: int = 1
    lora_r: int = 16
    gradient_checkpointing: bool = True
    optimizer: Optimizer = "paged_adamw_8bit"

    @property
    def tokens(self) -> int:
        return self.seq * self.batch


@dataclass(frozen=True, kw_only=True, slots=True)
class Breakdown:
    """Bytes per kind of memory at one moment (all on one GPU unless split)."""

    weights: float = 0.0
    transient_16bit: float = 0.0
    context: float = 0.0
    allocator: float = 0.0
    kv_cache: float = 0.0
    activations: float = 0.0
    lora_params: float = 0.0
    gradients: float = 0.0
    optimizer_state: float = 0.0
    optimizer_paged: float = 0.0

    @property
    def total(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))

    @property
    def torch_total(self) -> float:
        """What torch's caching allocator holds (all but the context and paged states)."""
        return self.total - self.context - self.optimizer_paged

    def mib(self) -> dict[str, int]:
        return {f.name: round(getattr(self, f.name) / _MIB) for f in fields(self)}


@dataclass(frozen=True, kw_only=True, slots=True)
class Estimate:
    peak: Breakdown
    settled: Breakdown
    load_peak: Breakdown
    phase: str  # what the peak is: "load", "prefill", "logits", "recompute", ...
    lora_params: int
    band: float = 0.0  # +- bytes the caching allocator's reuse can move the peak


# -- shapes ---------------------------------------------------------------------------------


def _layer_inputs(plan: WeightPlan) -> float:
    """Sum of in_features of the quantized (LoRA-targeted) linears, per decoder layer."""
    per_layer: dict[int, float] = defaultdict(float)
    for t in plan.tensors:
        m = _LAYER_RE.search(t.name)
        if m and t.role == "quantized" and t.rows and not _NOT_TEXT.search(t.name):
            per_layer[int(m.group(1))] += t.numel / t.rows
    return sum(per_layer.values()) / max(len(per_layer), 1)


def _lora(plan: WeightPlan, arch: ArchInfo, r: ReleaseRules, rank: int) -> list[tuple[int, int]]:
    """(A elements, B elements) of every LoRA pair peft adds with target_modules='all-linear'."""
    pairs = [
        (rank * (t.numel // t.rows), rank * t.rows)
        for t in plan.tensors
        if t.role == "quantized" and t.rows and "lm_head" not in t.name
    ]
    if _param_wrapper(arch, r):
        h, i, e = arch.hidden, arch.moe_intermediate, arch.experts
        for _ in range(arch.layers - arch.dense_layers):
            pairs.append((2 * rank * e * h, 2 * rank * e * 2 * i))  # gate_up: rank doubled
            pairs.append((rank * e * i, rank * e * h))  # down
            pairs.append((rank * h, rank * e))  # the router, an nn.Linear subclass
    return pairs


def _optimizer(
    pairs: list[tuple[int, int]], opt: Optimizer, r: ReleaseRules
) -> tuple[float, float]:
    """(device bytes, paged bytes) of the optimizer's two Adam states."""
    device = paged = 0.0
    for n in (x for pair in pairs for x in pair):
        if opt == "adamw" or n < r.min_8bit_size:
            device += 8 * n
            continue
        size = 2 * n + 2 * 4 * -(-n // r.state_blocksize)
        if opt == "paged_adamw_8bit" and n >= r.min_paged_size:
            paged += size
        else:
            device += size
    return device, paged


def _mlp_width(arch: ArchInfo) -> float:
    """Intermediate activations per token of one MLP (elements), experts routed top-k."""
    if arch.is_moe:
        return arch.experts_per_token * arch.moe_intermediate + arch.shared_intermediate
    return arch.intermediate


def _expert_elements(arch: ArchInfo) -> float:
    """Elements of one MoE layer's fused expert weights (gate_up and down)."""
    return float(arch.experts * 3 * arch.moe_intermediate * arch.hidden) if arch.is_moe else 0.0


def _param_wrapper(arch: ArchInfo, r: ReleaseRules) -> bool:
    """peft wraps transformers 5's fused expert parameters with LoRA (lora.ParamWrapper)."""
    return arch.is_moe and "moe_param_wrapper" in r.peft and r.experts_fused(arch.model_type)


# -- the modes --------------------------------------------------------------------------------


def _load(plan: WeightPlan, r: ReleaseRules, ctx: float) -> Breakdown:
    copies = r.transient.get(plan.quant, 1.0)
    transient = max(
        2 * copies * plan.largest_quantized,
        2 * r.transient["fused_experts"] * plan.largest_fused_expert,
    )
    return Breakdown(
        weights=plan.total(),
        transient_16bit=transient,
        allocator=transient * r.calibration["load_allocator_transients"],
        context=ctx,
    )


def _inference(plan: WeightPlan, arch: ArchInfo, r: ReleaseRules, w: Workload) -> Breakdown:
    cal = r.calibration
    t = w.tokens
    kv = 2.0 * t * arch.layers * arch.kv_dim_per_token
    if arch.is_moe:
        width = arch.experts_per_token * (4 * arch.moe_intermediate + 2 * arch.hidden)
        width += 3 * arch.shared_intermediate
    else:
        width = (4 if arch.fused_qkv else 3) * arch.intermediate
    act = t * (
        cal["inference_intermediate_bytes"] * width + cal["inference_hidden_bytes"] * arch.hidden
    )
    act += 2.0 * plan.largest_quantized + cal["cublas_workspace_mib"] * _MIB
    if plan.quant == "int8":
        widest = max((p.rows for p in plan.tensors if p.role == "quantized"), default=0)
        act += 4.0 * t * widest  # LLM.int8's int32 product of the widest layer
    return Breakdown(
        weights=plan.total(),
        kv_cache=kv,
        activations=act,
        context=cal["context_inference_mib"] * _MIB,
    )


def _upcast_weights(plan: WeightPlan, dtype: str) -> tuple[float, float]:
    """(bytes after prepare_model_for_kbit_training, largest upcast tensor's 16-bit bytes)."""
    size = DTYPE_SIZE[dtype]
    total = largest = 0.0
    for p in plan.tensors:
        if p.role in ("quantized", "prequantized") or not p.float_bytes or size != 2:  # noqa: PLR2004
            total += p.gpu_bytes
        else:
            total += 2 * p.float_bytes
            largest = max(largest, p.float_bytes)
    return total, largest


def _activation_phases(
    plan: WeightPlan, arch: ArchInfo, r: ReleaseRules, w: Workload
) -> tuple[float, float, str]:
    """(activation bytes at the step's peak, one layer's backward working set, the phase)."""
    cal = r.calibration
    t, h, layers, vocab = w.tokens, arch.hidden, arch.layers, arch.vocab
    per_layer = (
        cal["layer_norm_bytes"] * arch.norms_per_layer * h
        + cal["layer_linear_input_bytes"] * _layer_inputs(plan)
        + cal["layer_intermediate_bytes"] * _mlp_width(arch)
        + cal["moe_routed_hidden_bytes"] * arch.experts_per_token * h * arch.is_moe
    )
    kept = cal["residual_bytes"] * h * layers if w.gradient_checkpointing else per_layer * layers
    # LoRA on fused experts materializes W + BA per layer (kept for backward, fp32)
    experts = _expert_elements(arch) if _param_wrapper(arch, r) else 0.0
    saved = cal["expert_lora_saved_bytes"] * experts
    if w.gradient_checkpointing:
        merged = saved + cal["expert_lora_transient_bytes"] * experts
    else:
        merged = saved * (arch.layers - arch.dense_layers)
    head = 2.0 * vocab * h + 2.0 * plan.largest_quantized
    logits = merged + head + t * (cal["logits_train_bytes"] * vocab + kept)
    working = t * cal["recompute_layers"] * per_layer
    recompute = merged + t * kept + working
    if logits >= recompute:
        return logits, working, "logits"
    return recompute, working, "recompute" if w.gradient_checkpointing else "backward"


def _qlora(plan: WeightPlan, arch: ArchInfo, r: ReleaseRules, w: Workload, dtype: str) -> Estimate:
    cal = r.calibration
    ctx = cal["context_train_mib"] * _MIB
    weights, largest_float = _upcast_weights(plan, dtype)
    pairs = _lora(plan, arch, r, w.lora_r)
    lora_n = sum(a + b for a, b in pairs)
    opt_device, opt_paged = _optimizer(pairs, w.optimizer, r)
    act, working, phase = _activation_phases(plan, arch, r, w)
    workspace = cal["cublas_workspace_mib"] * _MIB
    static = Breakdown(
        weights=weights,
        lora_params=4.0 * lora_n,
        optimizer_state=opt_device,
        optimizer_paged=opt_paged,
        context=ctx,
        allocator=workspace,
    )
    # freed blocks of one layer's working set that the caching allocator cannot hand to a
    # request of another size: what a capped GPU still needs beyond the allocated peak
    frag = cal["allocator_layer_fraction"] * working
    step = Breakdown(**{**_as_dict(static), "activations": act, "allocator": workspace + frag})
    prepare = Breakdown(weights=weights, transient_16bit=largest_float, context=ctx)
    load = _load(plan, r, cal["context_load_mib"] * _MIB)
    peak, where = max(
        ((step, phase), (prepare, "prepare"), (load, "load")), key=lambda x: x[0].total
    )
    return Estimate(
        peak=peak,
        settled=static,
        load_peak=load,
        phase=where,
        lora_params=lora_n,
        band=frag if where == phase else load.allocator,
    )


def _as_dict(b: Breakdown) -> dict[str, float]:
    return {f.name: getattr(b, f.name) for f in fields(b)}


def estimate(
    plan: WeightPlan, arch: ArchInfo, rules: ReleaseRules, w: Workload, dtype: str
) -> Estimate:
    """The peak and settled memory of one workload on one GPU holding the whole model."""
    cal = rules.calibration
    load = _load(plan, rules, cal["context_load_mib"] * _MIB)
    settled = Breakdown(weights=plan.total(), context=load.context)
    if w.mode == "load":
        return Estimate(
            peak=load,
            settled=settled,
            load_peak=load,
            phase="load",
            lora_params=0,
            band=load.allocator,
        )
    if w.mode == "inference":
        prefill = _inference(plan, arch, rules, w)
        peak, phase = (prefill, "prefill") if prefill.total >= load.total else (load, "load")
        return Estimate(
            peak=peak,
            settled=Breakdown(weights=plan.total(), context=prefill.context),
            load_peak=load,
            phase=phase,
            lora_params=0,
            band=load.allocator if phase == "load" else 0.0,
        )
    return _qlora(plan, arch, rules, w, dtype)
