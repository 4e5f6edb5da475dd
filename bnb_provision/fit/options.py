"""From command-line values to a report: parse, read the model, find the GPUs, fit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bnb_provision.errors import FitInputError
from bnb_provision.fit.api import FitRequest, fit
from bnb_provision.fit.estimate import Mode, Optimizer, Workload
from bnb_provision.fit.gpus import GpuTarget, gpus_from_machine, gpus_from_options
from bnb_provision.fit.model import ModelSpec, model_from_params, read_model
from bnb_provision.fit.report import FitReport
from bnb_provision.fit.units import parse_memory_mib, parse_params

__all__ = ["FitOptions", "run_fit"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FitOptions:
    """What a user gives ``bnb-provision fit``, as written."""

    model: str | None = None
    model_params: str | None = None
    mode: Mode = "load"
    quant: str = "nf4"
    double_quant: bool = False
    compute_dtype: str = "bfloat16"
    skip_modules: tuple[str, ...] = ()
    seq: int = 2048
    batch: int = 1
    lora_r: int = 16
    gradient_checkpointing: bool = True
    optimizer: Optimizer = "paged_adamw_8bit"
    gpu_names: tuple[str, ...] = ()
    gpu_memory: tuple[str, ...] = ()
    gpu_count: int = 1
    machine: Path | None = None
    max_memory: tuple[str, ...] = ()
    versions: tuple[tuple[str, str], ...] = ()


def _model(o: FitOptions) -> ModelSpec:
    if o.model is None and o.model_params is None:
        raise FitInputError(
            "no model: give a folder, config.json or .safetensors, or --model-params N"
        )
    if o.model is not None and o.model_params is not None:
        raise FitInputError("give a model or --model-params N, not both")
    if o.model is not None:
        return read_model(o.model)
    assert o.model_params is not None
    return model_from_params(parse_params(o.model_params))


def _gpus(o: FitOptions) -> tuple[GpuTarget, ...]:
    explicit = bool(o.gpu_names or o.gpu_memory)
    if o.machine is not None and explicit:
        raise FitInputError("give --machine or --gpu/--gpu-memory, not both")
    if explicit:
        memories = tuple(parse_memory_mib(m) for m in o.gpu_memory)
        return gpus_from_options(o.gpu_names, memories, o.gpu_count)
    found = gpus_from_machine(o.machine)
    if o.gpu_count > 1 and found:
        found = found[: o.gpu_count]
    return found


def run_fit(o: FitOptions) -> FitReport:
    """The whole ``fit`` command: read, detect, estimate, judge, advise."""
    model = _model(o)
    gpus = _gpus(o)
    max_memory = tuple(parse_memory_mib(m, "--max-memory") for m in o.max_memory) or None
    request = FitRequest(
        model=model,
        quant=o.quant,
        double_quant=o.double_quant,
        compute_dtype=o.compute_dtype,
        skip_modules=o.skip_modules or None,
        workload=Workload(
            mode=o.mode,
            seq=o.seq,
            batch=o.batch,
            lora_r=o.lora_r,
            gradient_checkpointing=o.gradient_checkpointing,
            optimizer=o.optimizer,
        ),
        gpus=gpus,
        max_memory_mib=max_memory,
        versions=o.versions,
    )
    return fit(request)
