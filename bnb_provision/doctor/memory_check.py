"""Check 4: GPU memory for a quantized load of the model given on the command line.

The estimate and its assumptions are :mod:`bnb_provision.doctor.memory`'s; this check
compares it with each GPU's free memory and says whether the load fits on one GPU,
fits split across several, or does not fit.
"""

from __future__ import annotations

from typing import Final

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu
from bnb_provision.doctor.check import DoctorOptions
from bnb_provision.doctor.findings import Finding
from bnb_provision.doctor.memory import GPU_SHARE, estimate_peak_bytes, mib
from bnb_provision.vocab import Quant

__all__ = ["check_memory"]

_HF_BNB: Final = "https://huggingface.co/docs/transformers/main/en/quantization/bitsandbytes"


def check_memory(m: Machine, _db: CompatDB, o: DoctorOptions) -> list[Finding]:
    """Does the load-time peak of ``o.model`` fit in the GPUs' free memory?"""
    if o.model is None:
        return []
    peak, weights = estimate_peak_bytes(o.model, o.quant)
    evidence = [
        f"model: {o.model.params / 1e9:.2f}B parameters ({o.model.source}), {o.quant}",
        f"estimated weights {mib(weights)} MiB, load-time peak {mib(peak)} MiB"
        + (
            " (lower bound: no config.json, largest tensor unknown)"
            if o.model.largest_tensor is None
            else ""
        ),
    ]
    if not m.gpus:
        return [
            Finding(
                id="no-gpu-for-quant-load",
                category="oom_on_quant_load",
                severity="warning",
                title="no NVIDIA GPU: a bitsandbytes load runs on the CPU backend",
                evidence=tuple(evidence),
            )
        ]
    offers = _offers(m.gpus, evidence)
    if not offers:
        return []
    return [_verdict(o.quant, peak, offers, tuple(evidence))]


def _offers(gpus: tuple[Gpu, ...], evidence: list[str]) -> list[tuple[Gpu, float]]:
    """Each GPU with the MiB transformers lets a load use; one evidence line per GPU."""
    offers = []
    for g in gpus:
        free = g.memory_free_mib if g.memory_free_mib is not None else g.memory_total_mib
        if free is None:
            continue
        offers.append((g, free * GPU_SHARE))
        evidence.append(
            f"GPU {g.index} {g.name}: {free} MiB "
            + ("free" if g.memory_free_mib is not None else "total (free unknown)")
            + f", {int(free * GPU_SHARE)} MiB usable (transformers keeps 10% back)"
        )
    return offers


def _verdict(
    quant: Quant, peak: float, offers: list[tuple[Gpu, float]], evidence: tuple[str, ...]
) -> Finding:
    """Fits on one GPU, fits split across several, or does not fit."""
    peak_mib = peak / 1024 / 1024
    best = max(offers, key=lambda t: t[1])
    total = sum(x for _, x in offers)
    config_fix = (
        "max_memory={"
        + ", ".join(f"{g.index}: '{int(x // 1024)}GiB'" for g, x in offers)
        + ", 'cpu': '64GiB'} with device_map='auto'"
    )
    if peak_mib <= best[1]:
        return Finding(
            id="quant-load-fits",
            category="oom_on_quant_load",
            severity="info",
            title=f"the {quant} load fits on GPU {best[0].index}",
            evidence=evidence,
        )
    if peak_mib <= total:
        return Finding(
            id="quant-load-needs-split",
            category="oom_on_quant_load",
            severity="warning",
            title=f"the {quant} load fits only split across {len(offers)} GPUs",
            evidence=evidence,
            fix=f"load with device_map='auto' and {config_fix}",
            source=_HF_BNB,
        )
    return Finding(
        id="quant-load-oom",
        category="oom_on_quant_load",
        severity="error",
        title=f"the {quant} load needs ~{mib(peak)} MiB; the GPUs offer {int(total)} MiB",
        evidence=evidence,
        fix="use a pre-quantized checkpoint (no 16-bit materialization), a smaller model, or "
        "CPU offload: BitsAndBytesConfig(..., llm_int8_enable_fp32_cpu_offload=True) with "
        + config_fix,
        source=_HF_BNB,
    )
