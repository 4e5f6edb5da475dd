"""Which tensors bitsandbytes quantizes, and the bytes each one takes on the GPU once loaded.

The rules come from the transformers release (``ReleaseRules``): only ``nn.Linear`` weights are
converted; the output embedding and tied weights stay in the load dtype unless an explicit
``llm_int8_skip_modules`` list replaces those defaults; in transformers 5 the fused 3-D expert
weights of mixture-of-experts models stay 16-bit.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from bnb_provision.fit.arch import ArchInfo
from bnb_provision.fit.rules import ReleaseRules
from bnb_provision.fit.safetensors import TensorInfo

__all__ = ["DTYPE_SIZE", "Planned", "WeightPlan", "plan_weights"]

DTYPE_SIZE: Final = {"bfloat16": 2, "float16": 2, "float32": 4}
_BLOCK: Final = 512  # the CUDA caching allocator rounds every allocation up to 512 bytes
_EXPERT_RE: Final = re.compile(r"^(?P<layer>.*)\.experts\.(?P<e>\d+)\.(?P<proj>\w+)\.weight$")
_EMBED_RE: Final = re.compile(
    r"(^|\.)(embed_tokens|wte|wpe|word_embeddings|tok_embeddings|embed_in|embed_positions|"
    r"position_embedding|position_embeddings|shared|embeddings\.word_embeddings)\.weight$"
)
_HEAD_RE: Final = re.compile(r"(^|\.)(lm_head|embed_out|output)\.weight$")
_PREQUANT_META: Final = re.compile(
    r"\.(absmax|quant_map|nested_absmax|nested_quant_map|SCB|weight_format)$"
)
_CPU_META: Final = re.compile(r"\.quant_state\.bitsandbytes__\w+$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Planned:
    """One tensor as it sits on the GPU after loading."""

    name: str
    role: str  # quantized, embed, lm_head, expert, small, float, prequantized
    numel: int
    rows: int  # out_features of a weight matrix (int8 keeps one scale per row)
    gpu_bytes: float  # after loading, with the allocator's rounding
    map_bytes: float  # what device_map="auto" counts for it (transformers' param_element_size)
    float_bytes: float  # bytes when its numbers are 16/32-bit floats (0 for codes)


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightPlan:
    tensors: tuple[Planned, ...]
    quant: str
    prequantized: bool
    largest_quantized: int  # elements of the largest weight quantized while loading
    largest_fused_expert: int  # elements of the largest fused expert tensor (transformers 5)
    skipped: tuple[str, ...]  # linear weights left unquantized, by rule

    def total(self, role: str | None = None) -> float:
        return sum(t.gpu_bytes for t in self.tensors if role is None or t.role == role)

    def elements(self, *roles: str) -> int:
        return sum(t.numel for t in self.tensors if t.role in roles)


def _round(n: float) -> float:
    return math.ceil(n / _BLOCK) * _BLOCK


def quantized_bytes(n: int, rows: int, quant: str, double_quant: bool, r: ReleaseRules) -> float:
    """GPU bytes of one weight matrix of ``n`` elements once bitsandbytes quantized it."""
    if quant == "int8":
        return _round(n) + _round(4 * rows)
    blocks = math.ceil(n / r.blocksize_4bit)
    packed = _round(math.ceil(n / 2))
    if double_quant:
        nested = math.ceil(blocks / r.nested_blocksize)
        return packed + _round(blocks) + _round(4 * nested) + _round(4 * 256) + _round(64)
    return packed + _round(4 * blocks) + _round(64)


def _skipped(module: str, patterns: tuple[str, ...]) -> bool:
    """transformers' should_convert_module: a prefix regex match, or a name suffix."""
    for key in patterns:
        try:
            if re.match(key, module):
                return True
        except re.error:
            pass
        if module.endswith(key):
            return True
    return False


def _role(t: TensorInfo, arch: ArchInfo, r: ReleaseRules, prequant: bool) -> str:
    if prequant and (_PREQUANT_META.search(t.name) or t.dtype in ("U8", "I8")):
        return "prequantized"
    ndim = len(t.shape)
    if ndim <= 1:
        return "small"
    if ".experts." in t.name and (ndim == 3 or r.experts_fused(arch.model_type)):  # noqa: PLR2004
        return "expert"
    if r.experts_fused(arch.model_type) and re.search(r"\.(gate|router)\.weight$", t.name):
        return "small"  # the router is a parameter, not an nn.Linear, in transformers 5
    if _EMBED_RE.search(t.name):
        return "embed"
    if _HEAD_RE.search(t.name):
        return "lm_head"
    return "quantized" if ndim == 2 and t.name.endswith(".weight") else "float"  # noqa: PLR2004


def _fused_expert_max(tensors: tuple[TensorInfo, ...]) -> int:
    """Elements of the largest tensor transformers 5 assembles from per-expert weights."""
    groups: dict[tuple[str, str], int] = defaultdict(int)
    largest = 0
    for t in tensors:
        m = _EXPERT_RE.match(t.name)
        if m is None:
            if ".experts." in t.name and len(t.shape) == 3:  # noqa: PLR2004
                largest = max(largest, t.numel)
            continue
        proj = "gate_up" if m.group("proj") in ("gate_proj", "up_proj", "w1", "w3") else "down"
        groups[(m.group("layer"), proj)] += t.numel
    return max([largest, *groups.values()])


def plan_weights(
    tensors: tuple[TensorInfo, ...],
    arch: ArchInfo,
    rules: ReleaseRules,
    *,
    quant: str,
    double_quant: bool,
    dtype: str,
    skip_modules: tuple[str, ...] | None,
) -> WeightPlan:
    """Classify every tensor and size it as it will sit on the GPU."""
    prequant = arch.prequantized is not None
    size = DTYPE_SIZE[dtype]
    use_defaults = skip_modules is None or not rules.skip_list_replaces_defaults
    out: list[Planned] = []
    skipped: list[str] = []
    for t in tensors:
        if _CPU_META.search(t.name):
            continue
        role = _role(t, arch, rules, prequant)
        if prequant and role == "quantized":
            role = "float"  # kept in 16-bit when the checkpoint was quantized
        module = t.name.rsplit(".", 1)[0]
        if role == "quantized" and skip_modules and _skipped(module, skip_modules):
            role = "float"
            skipped.append(module)
        if role == "lm_head" and not use_defaults and not _skipped(module, skip_modules or ()):
            role = "quantized"
        rows = t.shape[0] if t.shape else 1
        float_bytes = t.numel * (size if t.dtype not in ("U8", "I8", "I32", "I64") else 0)
        if role == "quantized" and not prequant:
            gpu = quantized_bytes(t.numel, rows, quant, double_quant, rules)
            mapped = t.numel * (1.0 if quant == "int8" else 0.5)
        elif role == "prequantized":
            gpu = mapped = _round(t.nbytes)
        else:
            gpu = _round(float_bytes) if float_bytes else _round(t.nbytes)
            mapped = float_bytes or t.nbytes
        out.append(
            Planned(
                name=t.name,
                role=role,
                numel=t.numel,
                rows=rows,
                gpu_bytes=gpu,
                map_bytes=mapped,
                float_bytes=float_bytes,
            )
        )
    largest = max((p.numel for p in out if p.role == "quantized"), default=0)
    fused = _fused_expert_max(tensors) if rules.experts_fused(arch.model_type) else 0
    return WeightPlan(
        tensors=tuple(out),
        quant=quant,
        prequantized=prequant,
        largest_quantized=0 if prequant else largest,
        largest_fused_expert=0 if prequant else fused,
        skipped=tuple(skipped),
    )
