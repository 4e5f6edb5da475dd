"""Load-time GPU memory of a bitsandbytes-quantized model: an estimate with its assumptions.

Assumptions (each one stated in the finding it produces):

* NF4/FP4 store 4 bits per weight plus one fp32 absmax per 64-weight block
  (0.5 + 4/64 bytes per parameter; double quantization makes that smaller, so
  this errs high); LLM.int8() stores 1 byte per weight.
* Embeddings and the output head are not quantized (transformers skips the
  output head) and stay in the 16-bit compute dtype.
* While loading, each weight is materialized in 16 bits on the GPU before it is
  quantized, so the peak is the quantized total plus the largest tensor in 16 bits.
* transformers' bitsandbytes quantizers keep 10% of each GPU back
  (``adjust_max_memory``), so a GPU offers 90% of its free memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core.jsonio import JsonInputError, read_json

__all__ = ["ModelShape", "estimate_peak_bytes", "read_model_shape"]

BYTES_PER_PARAM: Final = {"nf4": 0.5 + 4 / 64, "fp4": 0.5 + 4 / 64, "int8": 1.0}
HALF: Final = 2  # bytes of a 16-bit compute dtype
GPU_SHARE: Final = 0.9  # transformers' bnb quantizers: max_memory * 0.90
_MIB: Final = 1024 * 1024
_LARGEST: Final = 2**40
MAX_CONFIG_BYTES: Final = 16 * _MIB  # a config.json is a few KiB


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelShape:
    params: float  # total parameters
    quantizable: float  # parameters inside the quantized Linear layers
    largest_tensor: float | None  # elements of the largest single weight, when known
    source: str


def _int(cfg: dict[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` that holds a positive integer; one past any real model's
    size (2**40) is refused, so that the counts below stay finite floats."""
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            if v > _LARGEST:
                raise ValueError(f"{k}: larger than 2**40, more than any model has")
            return v
    return None


def shape_from_config(cfg: dict[str, Any], source: str) -> ModelShape:
    """Count parameters of a decoder-only transformer from its ``config.json``."""
    text = cfg.get("text_config")
    if isinstance(text, dict):
        cfg = {**cfg, **text}
    try:
        return _shape(cfg, source)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _shape(cfg: dict[str, Any], source: str) -> ModelShape:
    h = _int(cfg, "hidden_size", "d_model", "n_embd")
    layers = _int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _int(cfg, "vocab_size")
    if not (h and layers and vocab):
        raise ValueError("needs hidden_size, num_hidden_layers and vocab_size")
    inter = _int(cfg, "intermediate_size", "ffn_dim", "n_inner") or 4 * h
    heads = _int(cfg, "num_attention_heads", "n_head") or 1
    kv = _int(cfg, "num_key_value_heads") or heads
    head_dim = _int(cfg, "head_dim") or h // heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o + k, v
    gated = any(k in str(cfg.get("hidden_act", "")) for k in ("silu", "swiglu", "gelu_pytorch"))
    mlp = (3 if gated or "intermediate_size" in cfg else 2) * h * inter
    experts = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts") or 1
    per_layer = attn + mlp * experts
    quantizable = float(per_layer * layers)
    tied = bool(cfg.get("tie_word_embeddings", False))
    embed = vocab * h * (1 if tied else 2)
    return ModelShape(
        params=quantizable + embed,
        quantizable=quantizable,
        largest_tensor=float(max(vocab * h, h * inter)),
        source=source,
    )


def read_model_shape(path: str | Path) -> ModelShape:
    """Read ``config.json`` (a file or a model folder): at most 16 MiB, 64 levels deep.
    Raises OSError when it cannot be read, ValueError (naming the file) when it is not a
    model's configuration."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        cfg = read_json(p, max_bytes=MAX_CONFIG_BYTES)
    except JsonInputError as exc:
        raise ValueError(f"{p}: {exc}; expected a model's config.json") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{p}: not a JSON object")  # noqa: TRY004 - reported as bad input
    return shape_from_config(cfg, str(p))


def shape_from_params(params: float) -> ModelShape:
    return ModelShape(
        params=params, quantizable=params, largest_tensor=None, source=f"--model-params {params:g}"
    )


def estimate_peak_bytes(shape: ModelShape, quant: str) -> tuple[float, float]:
    """(peak while loading, steady-state weights) in bytes."""
    per = BYTES_PER_PARAM[quant]
    kept = max(shape.params - shape.quantizable, 0.0)
    weights = shape.quantizable * per + kept * HALF
    peak = weights + (shape.largest_tensor or 0.0) * HALF
    return peak, weights


def mib(value: float) -> int:
    return int(value // _MIB)
