"""``bnb-provision fit``: will this model load, run or QLoRA-train on this GPU?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["fit"]

_ROWS = (
    ("weights", "weights"),
    ("transient_16bit", "16-bit copies while quantizing"),
    ("context", "CUDA context + libraries"),
    ("allocator", "caching allocator"),
    ("kv_cache", "KV cache"),
    ("activations", "activations"),
    ("lora_params", "LoRA parameters"),
    ("gradients", "gradients"),
    ("optimizer_state", "optimizer state"),
    ("optimizer_paged", "optimizer state (paged)"),
)


def _workload(d: dict[str, Any]) -> str:
    w = d["workload"]
    if w["mode"] == "load":
        return "load"
    text = f"{w['mode']} --seq {w['seq']} --batch {w['batch']}"
    if w["mode"] == "qlora":
        ckpt = "gradient checkpointing" if w["gradient_checkpointing"] else "no checkpointing"
        text += f", LoRA r={w['lora_r']} ({w['lora_params'] / 1e6:.1f}M params), {ckpt}, {w['optimizer']}"
    return text


def render(d: dict[str, Any]) -> str:
    """The report as a table a person reads."""
    m, q = d["model"], d["quantization"]
    kind = "pre-quantized " if q["prequantized"] else ""
    lines = [
        f"model     {m['source']} ({m['model_type']}, {m['params'] / 1e9:.2f}B params from "
        f"{m['read_from']})",
        f"          {m['quantized_params'] / 1e9:.2f}B quantized {kind}{q['quant']}"
        + (" + double quant" if q["double_quant"] else "")
        + f", {m['kept_params'] / 1e9:.2f}B kept in {q['compute_dtype']}",
        f"workload  {_workload(d)}",
        "",
        f"{'MiB':<32}{'peak':>8}{'settled':>9}",
    ]
    peak, settled = d["breakdown"]["peak"], d["breakdown"]["settled"]
    for key, label in _ROWS:
        if peak[key] or settled[key]:
            lines.append(f"  {label:<30}{peak[key]:>8}{settled[key]:>9}")
    lines.append(
        f"  {'total':<30}{d['peak_mib']:>8}{d['settled_mib']:>9}   (peak: {d['peak_phase']})"
    )
    lines.append("")
    for v in d["fits"]:
        word = {"fits": "fits", "out_of_memory": "does NOT fit", "device_map_refuses": "refused"}
        lines.append(
            f"GPU {v['index']}{' ' + v['name'] if v['name'] else ''} ({v['available_mib']} MiB): "
            f"{word[v['verdict']]}"
            + (" (tight)" if v["tight"] else "")
            + f" - {v['reason']}"
        )
    for p in d["placement"]:
        lines.append(f"  GPU {p['gpu']}: {p['modules']} modules, {p['weights_mib']} MiB of weights")
    if d["advice"]:
        lines += ["", "advice:"] + [f"  - {a['text']}" for a in d["advice"]]
    lines += ["", "assumptions:"] + [f"  - {a}" for a in d["assumptions"]]
    return "\n".join(lines)


def _versions(pairs: dict[str, str | None]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in pairs.items() if v)


@click.command()
@click.argument("model", required=False, metavar="MODEL")
@click.option("--model-params", metavar="N", help="Model size instead of MODEL: 7B, 70b, 7e9.")
@click.option(
    "--mode",
    type=click.Choice(["load", "inference", "qlora"]),
    default="load",
    show_default=True,
    help="Load only, an inference prefill, or a QLoRA training step.",
)
@click.option(
    "--quant", type=click.Choice(["nf4", "fp4", "int8"]), default="nf4", show_default=True
)
@click.option(
    "--double-quant/--no-double-quant",
    default=None,
    help="Quantize the 4-bit absmax too (default: on for qlora).",
)
@click.option(
    "--compute-dtype",
    type=click.Choice(["bfloat16", "float16", "float32"]),
    default="bfloat16",
    show_default=True,
    help="Compute dtype, and the dtype of the weights left unquantized.",
)
@click.option(
    "--skip-module",
    "skip_modules",
    multiple=True,
    metavar="NAME",
    help="llm_int8_skip_modules entry; repeatable (replaces the defaults, as transformers does).",
)
@click.option("--seq", type=int, default=2048, show_default=True, help="Sequence length.")
@click.option("--batch", type=int, default=1, show_default=True, help="Batch size.")
@click.option("--lora-r", type=int, default=16, show_default=True, help="LoRA rank (qlora).")
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True
)
@click.option(
    "--optimizer",
    type=click.Choice(["paged_adamw_8bit", "adamw_8bit", "adamw"]),
    default="paged_adamw_8bit",
    show_default=True,
)
@click.option(
    "--gpu",
    "gpu_names",
    multiple=True,
    metavar="NAME",
    help="A GPU by name (give --gpu-memory too); repeatable.",
)
@click.option(
    "--gpu-memory",
    multiple=True,
    metavar="SIZE",
    help="A GPU's memory: 8GiB, 12GB, 24576MiB; repeatable.",
)
@click.option(
    "--gpus",
    "gpu_count",
    type=int,
    default=1,
    show_default=True,
    help="How many such GPUs (device_map='auto' splits).",
)
@click.option(
    "--machine",
    "machine_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Judge the GPUs of a snapshot (bnb-provision detect --json).",
)
@click.option(
    "--max-memory",
    multiple=True,
    metavar="SIZE",
    help="max_memory you pass per GPU (default: transformers' own).",
)
@click.option(
    "--transformers",
    "tf_version",
    metavar="VERSION",
    help="transformers release whose rules apply (default 5.17.0).",
)
@click.option("--peft", "peft_version", metavar="VERSION", help="peft release (default 0.21.0).")
@click.option(
    "--accelerate", "acc_version", metavar="VERSION", help="accelerate release (default 1.15.0)."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable JSON (schema bnb-provision.fit/1).",
)
def fit(
    model: str | None,
    model_params: str | None,
    mode: str,
    quant: str,
    double_quant: bool | None,
    compute_dtype: str,
    skip_modules: tuple[str, ...],
    seq: int,
    batch: int,
    lora_r: int,
    gradient_checkpointing: bool,
    optimizer: str,
    gpu_names: tuple[str, ...],
    gpu_memory: tuple[str, ...],
    gpu_count: int,
    machine_file: Path | None,
    max_memory: tuple[str, ...],
    tf_version: str | None,
    peft_version: str | None,
    acc_version: str | None,
    as_json: bool,
) -> None:
    """Will a model load, run or QLoRA-train on a GPU? Peak and settled memory, per GPU.

    MODEL is a model folder (config.json and, when present, the safetensors headers are
    read; no weight is loaded), a config.json, or a .safetensors file. Without --gpu-memory,
    --gpu or --machine it judges this machine's GPUs; with none at all it only estimates.

    \b
    Example:
        bnb-provision fit --model-params 8B --mode qlora --seq 2048 --gpu-memory 12GB
        bnb-provision fit ./Llama-3.1-8B --quant int8 --gpu-memory 8GiB --json
        bnb-provision fit --model-params 70B --gpu-memory 24GB --gpus 2
    """
    from bnb_provision.fit.options import FitOptions, run_fit

    report = run_fit(
        FitOptions(
            model=model,
            model_params=model_params,
            mode=mode,  # type: ignore[arg-type]
            quant=quant,
            double_quant=mode == "qlora" if double_quant is None else double_quant,
            compute_dtype=compute_dtype,
            skip_modules=skip_modules,
            seq=seq,
            batch=batch,
            lora_r=lora_r,
            gradient_checkpointing=gradient_checkpointing,
            optimizer=optimizer,  # type: ignore[arg-type]
            gpu_names=gpu_names,
            gpu_memory=gpu_memory,
            gpu_count=gpu_count,
            machine=machine_file,
            max_memory=max_memory,
            versions=_versions(
                {"transformers": tf_version, "peft": peft_version, "accelerate": acc_version}
            ),
        )
    )
    data = report.to_dict()
    click.echo(json.dumps(data, indent=2) if as_json else render(data))
