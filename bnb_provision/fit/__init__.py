"""``bnb-provision fit``: will this model load, run or QLoRA-train on this GPU?

An estimate of the peak and settled GPU memory of a bitsandbytes load, an inference prefill
or a QLoRA step, term by term, judged against GPUs the way transformers plans
``device_map="auto"``; the rules per release live in ``compat_db/fit.toml``, the constants
were measured on real loads (docs/hardware-validation.md).
"""

from __future__ import annotations

from bnb_provision.fit.api import FitRequest, fit
from bnb_provision.fit.estimate import Workload
from bnb_provision.fit.gpus import GpuTarget, gpus_from_machine, gpus_from_options
from bnb_provision.fit.model import ModelSpec, model_from_params, read_model
from bnb_provision.fit.report import FitReport
from bnb_provision.fit.units import parse_memory_mib, parse_params

__all__ = [
    "FitReport",
    "FitRequest",
    "GpuTarget",
    "ModelSpec",
    "Workload",
    "fit",
    "gpus_from_machine",
    "gpus_from_options",
    "model_from_params",
    "parse_memory_mib",
    "parse_params",
    "read_model",
]
