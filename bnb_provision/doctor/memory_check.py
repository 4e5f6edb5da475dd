"""Check 4: GPU memory for a quantized load of the model given on the command line.

The estimate is ``fit``'s (:mod:`bnb_provision.fit`): the settled weights, the 16-bit
transient of loading, the CUDA context, judged per GPU the way transformers plans
``device_map="auto"``. This check turns its answer into one finding.
"""

from __future__ import annotations

from typing import Final

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.doctor.check import DoctorOptions
from bnb_provision.doctor.findings import Finding
from bnb_provision.fit import FitRequest, fit
from bnb_provision.fit.gpus import gpu_targets
from bnb_provision.fit.report import FitReport

__all__ = ["check_memory"]

_HF_BNB: Final = "https://huggingface.co/docs/transformers/main/en/quantization/bitsandbytes"


def check_memory(m: Machine, _db: CompatDB, o: DoctorOptions) -> list[Finding]:
    """Does the load of ``o.model`` fit on the machine's GPUs (``bnb-provision fit``)?"""
    if o.model is None:
        return []
    gpus = gpu_targets(m.gpus, "this machine")
    report = fit(FitRequest(model=o.model, quant=o.quant, gpus=gpus))
    evidence = [
        f"model: {report.model.params / 1e9:.2f}B parameters ({report.model.source}), {o.quant}",
        (
            f"load-time peak {round(report.load_peak.total / 2**20)} MiB, settled "
            f"{report.settled_mib} MiB (bnb-provision fit: the breakdown and assumptions)"
        ),
        *(f"GPU {v.index} {v.name}: {v.reason}" for v in report.fits),
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
    if not report.fits:
        return []
    return [_verdict(report, tuple(evidence))]


def _verdict(report: FitReport, evidence: tuple[str, ...]) -> Finding:
    """Fits (on one GPU or split by device_map="auto"), or does not, with fit's advice."""
    split = len(report.placement) > 1
    if report.all_fit:
        return Finding(
            id="quant-load-needs-split" if split else "quant-load-fits",
            category="oom_on_quant_load",
            severity="warning" if split else "info",
            title=f"the {report.quant} load fits"
            + (f" split across {len(report.placement)} GPUs" if split else ""),
            evidence=evidence,
            fix="load with device_map='auto' (it splits the model this way)" if split else None,
            source=_HF_BNB if split else None,
        )
    advice = "; ".join(a.text for a in report.advice)
    need = max(v.need_mib for v in report.fits)
    return Finding(
        id="quant-load-oom",
        category="oom_on_quant_load",
        severity="error",
        title=f"the {report.quant} load does not fit: it needs ~{need} MiB on a GPU",
        evidence=evidence,
        fix=advice or "a smaller model, or more GPU memory",
        source=_HF_BNB,
    )
