"""``bnb-provision fit``: will this model load, run or QLoRA-train on this GPU?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bnb_provision.vocab import QUANTS

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
        lora = f"LoRA r={w['lora_r']} ({w['lora_params'] / 1e6:.1f}M params)"
        text += f", {lora}, {ckpt}, {w['optimizer']}"
    return text


def render(d: dict[str, Any]) -> str:
    """The report as a table a person reads."""
    m, q = d["model"], d["quantization"]
    kind = "pre-quantized " if q["prequantized"] else ""
    dq = " + double quant" if q["double_quant"] else ""
    lines = [
        (
            f"model     {m['source']} ({m['model_type']}, {m['params'] / 1e9:.2f}B params "
            f"from {m['read_from']})"
        ),
        (
            f"          {m['quantized_params'] / 1e9:.2f}B quantized {kind}{q['quant']}{dq}, "
            f"{m['kept_params'] / 1e9:.2f}B kept in {q['compute_dtype']}"
        ),
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
            f"{word[v['verdict']]}" + (" (tight)" if v["tight"] else "") + f" - {v['reason']}"
        )
    lines += [
        f"  GPU {p['gpu']}: {p['modules']} modules, {p['weights_mib']} MiB of weights"
        for p in d["placement"]
    ]
    if d["advice"]:
        lines += ["", "advice:"] + [f"  - {a['text']}" for a in d["advice"]]
    lines += ["", "assumptions:"] + [f"  - {a}" for a in d["assumptions"]]
    return "\n".join(lines)


_OPTIONS: list[Any] = [
    click.option("--model-params", metavar="N", help="Model size instead of MODEL: 7B, 70b, 7e9."),
    click.option(
        "--mode",
        type=click.Choice(["load", "inference", "qlora"]),
        default="load",
        show_default=True,
        help="Load only, an inference prefill, or a QLoRA training step.",
    ),
    click.option(
        "--quant",
        type=click.Choice(QUANTS),
        default="nf4",
        show_default=True,
        help="bitsandbytes weight format: 4-bit nf4 or fp4, or 8-bit int8.",
    ),
    click.option(
        "--double-quant/--no-double-quant",
        default=None,
        help="Quantize the 4-bit absmax too (default: on for qlora, off otherwise).",
    ),
    click.option(
        "--compute-dtype",
        type=click.Choice(["bfloat16", "float16", "float32"]),
        default="bfloat16",
        show_default=True,
        help="Compute dtype, and the dtype of the weights left unquantized.",
    ),
    click.option(
        "--skip-module",
        "skip_modules",
        multiple=True,
        metavar="NAME",
        help="An llm_int8_skip_modules entry; repeatable (replaces transformers' defaults).",
    ),
    click.option("--seq", type=int, default=2048, show_default=True, help="Sequence length."),
    click.option("--batch", type=int, default=1, show_default=True, help="Batch size."),
    click.option("--lora-r", type=int, default=16, show_default=True, help="LoRA rank (qlora)."),
    click.option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        default=True,
        show_default=True,
        help="Recompute activations in the backward pass (qlora): less memory, more time.",
    ),
    click.option(
        "--optimizer",
        type=click.Choice(["paged_adamw_8bit", "adamw_8bit", "adamw"]),
        default="paged_adamw_8bit",
        show_default=True,
        help="The optimizer of the QLoRA step (its state counts in the peak).",
    ),
    click.option(
        "--gpu",
        "gpu_names",
        multiple=True,
        metavar="NAME",
        help="A GPU by name (with --gpu-memory).",
    ),
    click.option(
        "--gpu-memory",
        multiple=True,
        metavar="SIZE",
        help="A GPU's memory: 8GiB, 12GB; repeatable.",
    ),
    click.option(
        "--gpus",
        "gpu_count",
        type=int,
        default=1,
        show_default=True,
        help="How many such GPUs (device_map='auto' splits the model).",
    ),
    click.option(
        "--machine",
        "machine",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help="Judge the GPUs of a snapshot (bnb-provision detect --json).",
    ),
    click.option(
        "--max-memory", multiple=True, metavar="SIZE", help="The max_memory you pass, per GPU."
    ),
    click.option(
        "--transformers", metavar="VERSION", help="transformers release (default 5.17.0)."
    ),
    click.option("--peft", metavar="VERSION", help="peft release (default 0.21.0)."),
    click.option("--accelerate", metavar="VERSION", help="accelerate release (default 1.15.0)."),
    click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (schema bnb-provision.fit/1)."
    ),
]


def _with_options(f: Any) -> Any:
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def _options(model: str | None, kw: dict[str, Any]) -> Any:
    from bnb_provision.fit.options import FitOptions

    versions = {k: kw.pop(k) for k in ("transformers", "peft", "accelerate")}
    double = kw.pop("double_quant")
    kw.pop("as_json")
    return FitOptions(
        model=model,
        double_quant=kw["mode"] == "qlora" if double is None else double,
        versions=tuple((k, v) for k, v in versions.items() if v),
        **kw,
    )


@click.command()
@click.argument("model", required=False, metavar="[MODEL]")
@_with_options
def fit(model: str | None, **kw: Any) -> None:
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
    from bnb_provision.fit.options import run_fit

    as_json = kw["as_json"]
    data = run_fit(_options(model, kw)).to_dict()
    click.echo(json.dumps(data, indent=2) if as_json else render(data))
