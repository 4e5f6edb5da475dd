"""Measure what bitsandbytes loads and QLoRA steps really take on a GPU (for `bnb-provision fit`).

Run on a CUDA machine that has torch, transformers, accelerate, peft and bitsandbytes:

    python scripts/hardware/fit_calibrate.py --out OUT_DIR [--models a,b] [--deadline SECONDS]

For each architecture below (shapes from the model's public config.json; every other field
is the transformers default, which does not change memory), it builds a random-weight
checkpoint in bf16, saves it with ``save_pretrained`` (safetensors), then:

* loads it with BitsAndBytesConfig nf4 / fp4 / int8 (bf16 compute, ``device_map="auto"``) and
  records the load peak (``torch.cuda.max_memory_allocated``/``max_memory_reserved``), the
  settled memory, and what is not torch's (NVML used minus torch reserved: the CUDA context
  and the libraries' own memory);
* runs a prefill + a few generated tokens (inference) at two sequence lengths;
* prepares the nf4 double-quant model as peft's ``prepare_model_for_kbit_training`` does,
  adds LoRA (r=16, all linear layers), and runs 3 training steps per setting (sequence
  length, batch, gradient checkpointing on/off, paged 8-bit AdamW or torch AdamW) under
  bf16 autocast, recording the step peak;
* emulates smaller cards: the process's torch memory is capped at card - non-torch memory
  (``torch.cuda.set_per_process_memory_fraction``) and ``torch.cuda.mem_get_info`` reports
  the card's size, so ``device_map="auto"`` plans for that card as it would on real hardware;
  it records whether a load or a training step fits, is refused by the device map, or runs
  out of memory.

Everything is written to OUT_DIR/fit_calibration.json after each step (a killed run keeps
what it measured).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch  # type: ignore[import-not-found]

GIB = 1024**3
MIB = 1024**2

# Shapes from each model's public config.json (the file on the Hugging Face Hub).
MODELS: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": {
        "source": "https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json",
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
    },
    "llama-3.2-1b": {
        "source": "https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json",
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
    },
    "gemma-3-1b": {
        "source": "https://huggingface.co/google/gemma-3-1b-pt/blob/main/config.json",
        "model_type": "gemma3_text",
        "hidden_size": 1152,
        "intermediate_size": 6912,
        "num_hidden_layers": 26,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 262144,
        "sliding_window": 512,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 4
        + ["sliding_attention"] * 2,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
    },
    "phi-3-mini-4k": {
        "source": "https://huggingface.co/microsoft/Phi-3-mini-4k-instruct/blob/main/config.json",
        "model_type": "phi3",
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    "olmoe-1b-7b": {
        "source": "https://huggingface.co/allenai/OLMoE-1B-7B-0924/blob/main/config.json",
        "model_type": "olmoe",
        "hidden_size": 2048,
        "intermediate_size": 1024,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "num_experts": 64,
        "num_experts_per_tok": 8,
        "vocab_size": 50304,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    "mistral-7b": {
        "source": "https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json",
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
    },
    "llama-2-7b": {
        "source": "https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json",
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    "qwen3-1.7b": {
        "source": "https://huggingface.co/Qwen/Qwen3-1.7B/blob/main/config.json",
        "model_type": "qwen3",
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": True,
    },
    "llama-3.1-8b": {
        "source": "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json",
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
    },
}

CARDS_GIB = (6, 8, 12, 16, 24)


class Recorder:
    """The results, written to disk after every measurement."""

    def __init__(self, out: Path) -> None:
        self.path = out / "fit_calibration.json"
        self.data: dict[str, Any] = {"schema": "bnb-provision.fit-calibration/1", "models": {}}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def nvml_used() -> int:
    """Device memory in use (bytes), as NVML / nvidia-smi reports it."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        return int(pynvml.nvmlDeviceGetMemoryInfo(h).used)
    except Exception:  # noqa: BLE001 - fall back to the command line tool
        query = [
            "nvidia-smi",
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ]
        out = subprocess.run(
            query,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return int(out.strip().splitlines()[0]) * MIB


_BASELINE = [0]  # NVML "used" before this process made a CUDA context (the driver's reservation)


def nontorch() -> int:
    """The CUDA context and the libraries' own device memory: NVML used, less torch's, less the
    driver's reservation (which lies outside the total CUDA reports)."""
    torch.cuda.synchronize()
    return int(nvml_used() - _BASELINE[0] - torch.cuda.memory_reserved())


def clean() -> None:
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def mem_now() -> dict[str, int]:
    torch.cuda.synchronize()
    return {
        "allocated": torch.cuda.memory_allocated(),
        "reserved": torch.cuda.memory_reserved(),
        "max_allocated": torch.cuda.max_memory_allocated(),
        "max_reserved": torch.cuda.max_memory_reserved(),
    }


@contextlib.contextmanager
def emulated_card(card_gib: int) -> Iterator[dict[str, int]]:
    """Cap torch at the card's size less the non-torch memory; report the card to accelerate."""
    total = torch.cuda.get_device_properties(0).total_memory
    card = card_gib * GIB
    other = nontorch()
    cap = max(card - other, 0)
    torch.cuda.set_per_process_memory_fraction(cap / total, 0)
    real = torch.cuda.mem_get_info

    def fake(device: Any = None) -> tuple[int, int]:  # noqa: ARG001 - torch's signature
        return max(card - other - torch.cuda.memory_reserved(), 0), card

    torch.cuda.mem_get_info = fake
    try:
        yield {"card_bytes": card, "nontorch": other, "torch_cap": cap}
    finally:
        torch.cuda.mem_get_info = real
        torch.cuda.set_per_process_memory_fraction(1.0, 0)


def classify_error(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return "oom"
    if "dispatched on the CPU or the disk" in text:
        return "device_map_refused"
    return "error"


def safetensors_headers(folder: Path) -> dict[str, Any]:
    tensors: dict[str, Any] = {}
    files = {}
    for f in sorted(folder.glob("*.safetensors")):
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        files[f.name] = {"size": f.stat().st_size, "header_bytes": n}
        for name, meta in header.items():
            if name != "__metadata__":
                tensors[name] = [meta["dtype"], meta["shape"]]
    return {"files": files, "tensors": tensors}


def build_checkpoint(name: str, spec: dict[str, Any], root: Path) -> dict[str, Any]:
    from transformers import AutoConfig, AutoModelForCausalLM  # type: ignore[import-not-found]

    kw = {k: v for k, v in spec.items() if k not in ("source", "model_type")}
    cfg = AutoConfig.for_model(spec["model_type"], **kw)
    t0 = time.time()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    folder = root / name
    model.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    del model
    clean()
    info = safetensors_headers(folder)
    info["params"] = params
    info["config"] = json.loads((folder / "config.json").read_text())
    info["build_s"] = round(time.time() - t0, 1)
    return info


def bnb_config(quant: str, double_quant: bool = False) -> Any:
    from transformers import BitsAndBytesConfig

    if quant == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant,
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=double_quant,
    )


def load(folder: Path, quant: str, double_quant: bool = False) -> tuple[Any, dict[str, Any]]:
    from transformers import AutoModelForCausalLM

    clean()
    before = mem_now()
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        quantization_config=bnb_config(quant, double_quant),
        dtype=torch.bfloat16,
        device_map="auto",
    )
    torch.cuda.synchronize()
    after = mem_now()
    rec = {
        "quant": quant,
        "double_quant": double_quant,
        "seconds": round(time.time() - t0, 1),
        "before_allocated": before["allocated"],
        "peak_allocated": after["max_allocated"],
        "peak_reserved": after["max_reserved"],
        "settled_allocated": after["allocated"],
        "settled_reserved": after["reserved"],
        "nontorch": nontorch(),
        "devices": sorted({str(p.device) for p in model.parameters()}),
        "footprint": int(model.get_memory_footprint()),
    }
    return model, rec


def load_prequantized(folder: Path) -> tuple[Any, dict[str, Any]]:
    """Load a checkpoint saved already quantized (nf4): no 16-bit copy on the GPU."""
    from transformers import AutoModelForCausalLM

    clean()
    before = mem_now()
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map="auto")
    after = mem_now()
    return model, {
        "quant": "nf4",
        "prequantized": True,
        "double_quant": False,
        "seconds": round(time.time() - t0, 1),
        "before_allocated": before["allocated"],
        "peak_allocated": after["max_allocated"],
        "peak_reserved": after["max_reserved"],
        "settled_allocated": after["allocated"],
        "settled_reserved": after["reserved"],
        "nontorch": nontorch(),
        "devices": sorted({str(p.device) for p in model.parameters()}),
        "footprint": int(model.get_memory_footprint()),
        "params": count_params(model),
    }


def count_params(model: Any) -> dict[str, int]:
    """Elements and bytes per storage kind, read from the loaded model."""
    out: dict[str, int] = {}
    for _, p in model.named_parameters():
        kind = type(p).__name__ + ":" + str(p.dtype).replace("torch.", "")
        out[kind + ":numel"] = out.get(kind + ":numel", 0) + p.numel()
        out[kind + ":bytes"] = out.get(kind + ":bytes", 0) + p.numel() * p.element_size()
    return out


def inference(model: Any, vocab: int, seq: int, batch: int) -> dict[str, Any]:
    clean()
    base = torch.cuda.memory_allocated()
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    try:
        with torch.no_grad():
            model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=4,
                min_new_tokens=4,
                do_sample=False,
            )
        m = mem_now()
        outcome = "fits"
    except Exception as exc:  # noqa: BLE001 - recorded
        m = mem_now()
        outcome = classify_error(exc)
    del ids
    return {
        "seq": seq,
        "batch": batch,
        "outcome": outcome,
        "static_allocated": base,
        "peak_allocated": m["max_allocated"],
        "peak_reserved": m["max_reserved"],
        "nontorch": nontorch(),
    }


def make_optimizer(params: list[Any], name: str) -> Any:
    if name == "paged_adamw_8bit":
        import bitsandbytes as bnb  # type: ignore[import-not-found]

        return bnb.optim.PagedAdamW8bit(params, lr=1e-4)
    return torch.optim.AdamW(params, lr=1e-4)


def optimizer_state_bytes(opt: Any) -> int:
    total = 0
    for state in opt.state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.is_cuda:
                total += v.numel() * v.element_size()
    return total


def train_steps(model: Any, vocab: int, setting: dict[str, Any], steps: int) -> dict[str, Any]:
    """A few QLoRA steps under bf16 autocast; the peak over them."""
    if setting["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    clean()
    static = torch.cuda.memory_allocated()
    opt = make_optimizer(params, setting["optimizer"])
    ids = torch.randint(0, vocab, (setting["batch"], setting["seq"]), device="cuda")
    rec: dict[str, Any] = dict(setting)
    rec.update(static_allocated=static, step_peaks=[], losses=[])
    try:
        for _ in range(steps):
            torch.cuda.reset_peak_memory_stats()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(input_ids=ids, labels=ids)
            if not rec.get("after_forward_allocated"):
                rec["after_forward_allocated"] = torch.cuda.memory_allocated()
            out.loss.backward()
            rec["losses"].append(float(out.loss.detach()))
            del out
            opt.step()
            opt.zero_grad(set_to_none=True)
            m = mem_now()
            rec["step_peaks"].append([m["max_allocated"], m["max_reserved"]])
        rec["outcome"] = "fits"
    except Exception as exc:  # noqa: BLE001 - recorded
        rec["outcome"] = classify_error(exc)
        rec["error"] = str(exc)[:300]
    rec["optimizer_state_bytes"] = optimizer_state_bytes(opt)
    rec["after_allocated"] = torch.cuda.memory_allocated()
    rec["nontorch"] = nontorch()
    opt.zero_grad(set_to_none=True)
    del opt, ids
    for p in params:
        p.grad = None
    clean()
    if rec["step_peaks"]:
        rec["peak_allocated"] = max(a for a, _ in rec["step_peaks"])
        rec["peak_reserved"] = max(r for _, r in rec["step_peaks"])
    return rec


def prepare_qlora(folder: Path, dropout: float = 0.05) -> tuple[Any, dict[str, Any]]:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training  # type: ignore[import-not-found]

    model, rec = load(folder, "nf4", double_quant=True)
    torch.cuda.reset_peak_memory_stats()
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    m = mem_now()
    rec["prepared_allocated"] = m["allocated"]
    rec["prepare_peak_allocated"] = m["max_allocated"]
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.config.use_cache = False
    rec["lora_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rec["lora_dtypes"] = sorted({str(p.dtype) for p in model.parameters() if p.requires_grad})
    rec["peft_allocated"] = torch.cuda.memory_allocated()
    rec["lora_dropout"] = dropout
    rec["params_after_prepare"] = count_params(model)
    return model, rec


SETTINGS = (
    {"seq": 512, "batch": 1, "checkpointing": True, "optimizer": "paged_adamw_8bit"},
    {"seq": 2048, "batch": 1, "checkpointing": True, "optimizer": "paged_adamw_8bit"},
    {"seq": 4096, "batch": 1, "checkpointing": True, "optimizer": "paged_adamw_8bit"},
    {"seq": 512, "batch": 4, "checkpointing": True, "optimizer": "paged_adamw_8bit"},
    {"seq": 512, "batch": 1, "checkpointing": False, "optimizer": "paged_adamw_8bit"},
    {"seq": 2048, "batch": 1, "checkpointing": False, "optimizer": "paged_adamw_8bit"},
    {"seq": 1024, "batch": 2, "checkpointing": True, "optimizer": "adamw"},
)
CARD_SETTINGS = (
    {"seq": 2048, "batch": 1, "checkpointing": True, "optimizer": "paged_adamw_8bit"},
    {"seq": 512, "batch": 1, "checkpointing": False, "optimizer": "paged_adamw_8bit"},
)


def capped_load(folder: Path, quant: str, card: int) -> dict[str, Any]:
    clean()
    rec: dict[str, Any] = {"mode": "load", "quant": quant, "card_gib": card}
    with emulated_card(card) as env:
        rec.update(env)
        try:
            model, res = load(folder, quant)
            rec["outcome"] = "fits"
            rec["peak_reserved"] = res["peak_reserved"]
            rec["devices"] = res["devices"]
            del model
        except Exception as exc:  # noqa: BLE001 - recorded
            rec["outcome"] = classify_error(exc)
            rec["error"] = str(exc)[:300]
        clean()
    return rec


def capped_steps(model: Any, vocab: int, card: int, setting: dict[str, Any]) -> dict[str, Any]:
    clean()
    rec: dict[str, Any] = {"mode": "qlora", "card_gib": card, **setting}
    with emulated_card(card) as env:
        rec.update(env)
        res = train_steps(model, vocab, setting, steps=2)
        rec["outcome"] = res["outcome"]
        rec["error"] = res.get("error")
        rec["peak_reserved"] = res.get("peak_reserved")
        rec["nontorch_after"] = res.get("nontorch")
    return rec


def near(peak_total: int, card: int) -> bool:
    """Cards worth testing for real: where the uncapped peak is within reach of the card."""
    return 0.55 * card * GIB <= peak_total <= 1.15 * card * GIB


DEFAULT_PLAN: dict[str, Any] = {
    "quants": ["nf4", "fp4", "int8"],
    "inference_seqs": [2048, 8192],
    "prequantized": True,
    "near_load_cards": True,
    "qlora": [dict(s) for s in SETTINGS],
    "lora_dropout": 0.05,
    "near_qlora_cards": [dict(s) for s in CARD_SETTINGS],
    "qlora_cards": [],  # explicit: {"card_gib": 12, "seq": 1024, ...}
}


def run_loads(
    name: str, entry: dict[str, Any], plan: dict[str, Any], root: Path, deadline: float
) -> None:
    folder, vocab = root / name, MODELS[name]["vocab_size"]
    for quant in plan["quants"]:
        if time.time() > deadline:
            return
        model, res = load(folder, quant)
        res["params"] = count_params(model)
        if quant == "nf4":
            for seq in plan["inference_seqs"]:
                entry["inference"].append(inference(model, vocab, seq, 1))
            if plan["prequantized"]:
                model.save_pretrained(root / f"{name}-nf4")
        del model
        clean()
        entry["loads"].append(res)
    if plan["prequantized"] and "nf4" in plan["quants"]:
        model, res = load_prequantized(root / f"{name}-nf4")
        del model
        clean()
        entry["loads"].append(res)
        shutil.rmtree(root / f"{name}-nf4", ignore_errors=True)
    for res in list(entry["loads"]) if plan["near_load_cards"] else []:
        if res["quant"] == "fp4" or res.get("prequantized"):
            continue
        total = res["peak_reserved"] + res["nontorch"]
        for card in CARDS_GIB:
            if near(total, card) and time.time() < deadline:
                entry["cards"].append(capped_load(folder, res["quant"], card))


def run_qlora(
    name: str, entry: dict[str, Any], plan: dict[str, Any], root: Path, deadline: float, steps: int
) -> None:
    vocab = MODELS[name]["vocab_size"]
    model, res = prepare_qlora(root / name, plan["lora_dropout"])
    entry["qlora_load"] = res
    # one small step loads the training kernels (torch AdamW: no paged buffers that would stay)
    warm = {"seq": 64, "batch": 1, "checkpointing": True, "optimizer": "adamw"}
    entry["warmup"] = train_steps(model, vocab, warm, 1)
    for card_setting in plan["qlora_cards"]:  # explicit cards first, in a fresh process state
        setting = {k: v for k, v in card_setting.items() if k != "card_gib"}
        if time.time() < deadline:
            entry["cards"].append(capped_steps(model, vocab, card_setting["card_gib"], setting))
    for setting in plan["qlora"]:
        if time.time() > deadline:
            break
        entry["qlora"].append(train_steps(model, vocab, setting, steps))
    for setting in plan["near_qlora_cards"]:
        run = next((q for q in entry["qlora"] if all(q[k] == v for k, v in setting.items())), None)
        if run is None or "peak_reserved" not in run:
            continue
        total = run["peak_reserved"] + run["nontorch"]
        for card in CARDS_GIB:
            if near(total, card) and time.time() < deadline:
                entry["cards"].append(capped_steps(model, vocab, card, setting))
    del model
    clean()


def run_model(
    name: str, rec: Recorder, root: Path, deadline: float, steps: int, plan: dict[str, Any]
) -> None:
    spec = MODELS[name]
    entry: dict[str, Any] = {"source": spec["source"], "loads": [], "inference": [], "qlora": []}
    entry["cards"] = []
    entry["plan"] = plan
    rec.data["models"][name] = entry
    entry["checkpoint"] = build_checkpoint(name, spec, root)
    rec.save()
    try:
        run_loads(name, entry, plan, root, deadline)
        rec.save()
        if time.time() < deadline and plan["qlora"] + plan["qlora_cards"]:
            run_qlora(name, entry, plan, root, deadline, steps)
    finally:
        rec.save()


def versions() -> dict[str, Any]:
    import accelerate  # type: ignore[import-not-found]
    import bitsandbytes
    import peft
    import transformers

    props = torch.cuda.get_device_properties(0)
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "peft": peft.__version__,
        "bitsandbytes": bitsandbytes.__version__,
        "python": sys.version.split()[0],
        "gpu": props.name,
        "gpu_total": props.total_memory,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--deadline", type=float, default=540.0, help="seconds from start")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fitckpt"))  # noqa: S108
    ap.add_argument("--plan", type=Path, help="JSON: {model: {plan keys}} overriding DEFAULT_PLAN")
    args = ap.parse_args()
    start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(args.out)
    base = nvml_used()
    _BASELINE[0] = base
    torch.cuda.init()
    torch.ones(1, device="cuda")
    rec.data["nvml_before_cuda"] = base
    rec.data["nontorch_after_init"] = nontorch()
    rec.data["versions"] = versions()
    rec.save()
    deadline = start + args.deadline
    plans = json.loads(args.plan.read_text()) if args.plan else {}
    names = list(plans) if plans else args.models.split(",")
    for name in names:
        if time.time() > deadline:
            rec.data.setdefault("skipped", []).append(name)
            continue
        t0 = time.time()
        try:
            run_model(
                name,
                rec,
                args.workdir,
                deadline,
                args.steps,
                {**DEFAULT_PLAN, **plans.get(name, {})},
            )
        except Exception as exc:  # noqa: BLE001 - one model's failure must not lose the others
            rec.data["models"][name]["error"] = repr(exc)[:500]
        rec.data["models"][name]["seconds"] = round(time.time() - t0, 1)
        shutil.rmtree(args.workdir / name, ignore_errors=True)
        rec.save()
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    rec.data["seconds"] = round(time.time() - start, 1)
    rec.save()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
