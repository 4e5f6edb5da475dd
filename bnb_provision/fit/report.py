"""What ``fit`` answers, as frozen data; ``to_dict()`` is the ``bnb-provision.fit/1`` schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from bnb_provision.fit.estimate import Breakdown, Workload

__all__ = ["SCHEMA", "Advice", "FitReport", "GpuVerdict", "ModelSummary"]

SCHEMA: Final = "bnb-provision.fit/1"
Verdict = Literal["fits", "out_of_memory", "device_map_refuses"]


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuVerdict:
    index: int
    name: str
    memory_mib: int  # the card's memory (or what was given)
    available_mib: int  # free when measured, else the card's memory
    need_mib: int  # this GPU's peak, CUDA context included
    fits: bool
    verdict: Verdict
    margin_mib: int  # available - need (negative: short by that much)
    tight: bool  # the margin is within what the caching allocator's reuse can move
    reason: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "memory_mib": self.memory_mib,
            "available_mib": self.available_mib,
            "need_mib": self.need_mib,
            "fits": self.fits,
            "verdict": self.verdict,
            "margin_mib": self.margin_mib,
            "tight": self.tight,
            "reason": self.reason,
            "source": self.source,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Advice:
    kind: str  # max_memory, sequence, batch, checkpointing, optimizer, prequantized, offload, ...
    text: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "value": self.value}


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSummary:
    source: str
    model_type: str
    read_from: str
    params: int
    quantized_params: int
    kept_params: int  # left in 16-bit (or upcast to fp32 for QLoRA)
    layers: int
    hidden: int
    vocab: int
    experts: int
    skipped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model_type": self.model_type,
            "read_from": self.read_from,
            "params": self.params,
            "quantized_params": self.quantized_params,
            "kept_params": self.kept_params,
            "layers": self.layers,
            "hidden": self.hidden,
            "vocab": self.vocab,
            "experts": self.experts,
            "unquantized_linears": list(self.skipped),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FitReport:
    model: ModelSummary
    quant: str
    double_quant: bool
    compute_dtype: str
    prequantized: bool
    workload: Workload
    lora_params: int
    peak: Breakdown
    settled: Breakdown
    load_peak: Breakdown
    phase: str
    fits: tuple[GpuVerdict, ...]
    placement: tuple[tuple[int, int, int], ...]  # (GPU, modules, MiB of weights) when split
    advice: tuple[Advice, ...]
    assumptions: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]
    sources: tuple[str, ...]

    @property
    def peak_mib(self) -> int:
        return round(self.peak.total / 2**20)

    @property
    def settled_mib(self) -> int:
        return round(self.settled.total / 2**20)

    @property
    def all_fit(self) -> bool | None:
        return all(v.fits for v in self.fits) if self.fits else None

    def to_dict(self) -> dict[str, Any]:
        w = self.workload
        return {
            "schema": SCHEMA,
            "model": self.model.to_dict(),
            "quantization": {
                "quant": self.quant,
                "double_quant": self.double_quant,
                "compute_dtype": self.compute_dtype,
                "prequantized": self.prequantized,
            },
            "workload": {
                "mode": w.mode,
                "seq": w.seq if w.mode != "load" else None,
                "batch": w.batch if w.mode != "load" else None,
                "lora_r": w.lora_r if w.mode == "qlora" else None,
                "gradient_checkpointing": w.gradient_checkpointing if w.mode == "qlora" else None,
                "optimizer": w.optimizer if w.mode == "qlora" else None,
                "lora_params": self.lora_params,
            },
            "peak_mib": self.peak_mib,
            "settled_mib": self.settled_mib,
            "peak_phase": self.phase,
            "breakdown": {
                "peak": self.peak.mib(),
                "settled": self.settled.mib(),
                "load_peak": self.load_peak.mib(),
            },
            "fits": [v.to_dict() for v in self.fits],
            "placement": [{"gpu": g, "modules": n, "weights_mib": m} for g, n, m in self.placement],
            "advice": [a.to_dict() for a in self.advice],
            "assumptions": list(self.assumptions),
            "versions": dict(self.versions),
            "sources": list(self.sources),
        }
