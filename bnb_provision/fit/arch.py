"""A decoder's shape from its ``config.json``: the numbers memory depends on.

Covers dense decoders (Llama, Mistral, Qwen2/3, Gemma 1-3, Phi-3), mixture-of-experts models
(Mixtral, Qwen-MoE, OLMoE, DeepSeek V2/V3 with multi-head latent attention) and
vision-language models, whose language model is read from ``text_config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from bnb_provision.errors import FitInputError

__all__ = ["ArchInfo", "Prequantized", "arch_from_config"]

_FOUR_NORMS: Final = ("gemma2", "gemma3", "gemma3_text", "gemma3n_text")
_FUSED_QKV: Final = ("phi3", "phimoe")
_NO_GATE_MLP: Final = ("gpt2", "gpt_neox", "phi", "starcoder2", "falcon", "opt", "bloom")


@dataclass(frozen=True, kw_only=True, slots=True)
class Prequantized:
    """A checkpoint saved already quantized by bitsandbytes (``quantization_config``)."""

    quant: str  # nf4, fp4 or int8
    double_quant: bool
    skip_modules: tuple[str, ...] | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchInfo:
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    norms_per_layer: int = 2
    attention_bias: bool = False
    gated_mlp: bool = True
    fused_qkv: bool = False
    experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    dense_layers: int = 0  # leading layers with a dense MLP in a MoE model (DeepSeek)
    sliding_window: int | None = None
    sliding_layers: int = 0  # layers that keep only the sliding window in the KV cache
    kv_dim_per_token: int = 0  # K+V elements cached per token per layer
    q_lora_rank: int | None = None  # multi-head latent attention (DeepSeek V2/V3)
    kv_lora_rank: int | None = None
    qk_rope_dim: int = 0
    qk_nope_dim: int = 0
    v_head_dim: int = 0
    vision: dict[str, int] | None = None
    torch_dtype: str | None = None
    prequantized: Prequantized | None = None

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def q_dim(self) -> int:
        if self.kv_lora_rank is not None:
            return self.heads * (self.qk_nope_dim + self.qk_rope_dim)
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


_MAX_DIM = 2**40  # no model dimension comes near; beyond it a config is not a model's
# Layers, times experts in a MoE, plus vision layers: DeepSeek V3 has 61 x 256, about half
# this. fit writes out (and walks) a few tensors per block, so time stays bounded.
_MAX_BLOCKS = 2**15


def _int(cfg: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            if value > _MAX_DIM:
                raise FitInputError(f"config.json: {key} is larger than 2**40; not a model's")
            return value
    return default


def _need(cfg: dict[str, Any], source: str, *keys: str) -> int:
    value = _int(cfg, *keys)
    if value is None:
        raise FitInputError(
            f"{source}: no {keys[0]} (a positive integer) in the config; fit reads decoder "
            "language models (give --model-params N for others)"
        )
    return value


def _text_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int] | None]:
    """The language model's config and, for a vision-language model, its vision tower."""
    text = cfg.get("text_config") or cfg.get("llm_config") or cfg.get("language_config")
    vision_cfg = cfg.get("vision_config")
    vision = None
    if isinstance(vision_cfg, dict):
        vision = {
            k: v
            for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size")
            if (v := _int(vision_cfg, k)) is not None
        }
        vision["num_channels"] = _int(vision_cfg, "num_channels", default=3) or 3
        vision["image_size"] = _int(vision_cfg, "image_size", default=224) or 224
    if isinstance(text, dict):
        merged = {**{k: v for k, v in cfg.items() if k != "text_config"}, **text}
        return merged, vision
    return cfg, vision


def _prequantized(cfg: dict[str, Any]) -> Prequantized | None:
    q = cfg.get("quantization_config")
    if not isinstance(q, dict) or q.get("quant_method") != "bitsandbytes":
        return None
    skip = q.get("llm_int8_skip_modules")
    skips = tuple(str(s) for s in skip) if isinstance(skip, list) else None
    if q.get("load_in_8bit"):
        return Prequantized(quant="int8", double_quant=False, skip_modules=skips)
    quant = str(q.get("bnb_4bit_quant_type") or "fp4")
    return Prequantized(
        quant=quant if quant in ("nf4", "fp4") else "fp4",
        double_quant=bool(q.get("bnb_4bit_use_double_quant")),
        skip_modules=skips,
    )


def _sliding(cfg: dict[str, Any], layers: int) -> tuple[int | None, int]:
    window = _int(cfg, "sliding_window")
    types = cfg.get("layer_types")
    if window is None:
        return None, 0
    if isinstance(types, list):
        return window, sum(1 for t in types if t == "sliding_attention")
    if cfg.get("use_sliding_window") is False:
        return None, 0
    pattern = _int(cfg, "sliding_window_pattern")
    if pattern:
        return window, layers - layers // pattern
    return window, layers


def _moe(cfg: dict[str, Any], intermediate: int) -> dict[str, int]:
    experts = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0
    if experts <= 1:
        return {}
    moe_i = _int(cfg, "moe_intermediate_size", default=intermediate) or intermediate
    shared = _int(cfg, "shared_expert_intermediate_size", default=0) or 0
    n_shared = _int(cfg, "n_shared_experts", "num_shared_experts", default=0) or 0
    return {
        "experts": experts,
        "experts_per_token": _int(cfg, "num_experts_per_tok", "moe_topk", default=2) or 2,
        "moe_intermediate": moe_i,
        "shared_intermediate": shared or n_shared * moe_i,
        "dense_layers": _int(cfg, "first_k_dense_replace", default=0) or 0,
    }


def _mla(cfg: dict[str, Any]) -> dict[str, Any]:
    kv_rank = _int(cfg, "kv_lora_rank")
    if kv_rank is None:
        return {}
    return {
        "kv_lora_rank": kv_rank,
        "q_lora_rank": _int(cfg, "q_lora_rank"),
        "qk_rope_dim": _int(cfg, "qk_rope_head_dim", default=64) or 64,
        "qk_nope_dim": _int(cfg, "qk_nope_head_dim", default=128) or 128,
        "v_head_dim": _int(cfg, "v_head_dim", default=128) or 128,
    }


def arch_from_config(config: dict[str, Any], source: str) -> ArchInfo:
    """The shape of the language model a ``config.json`` describes."""
    cfg, vision = _text_config(config)
    model_type = str(cfg.get("model_type") or "unknown")
    hidden = _need(cfg, source, "hidden_size", "d_model", "n_embd")
    layers = _need(cfg, source, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _need(cfg, source, "vocab_size")
    heads = _int(cfg, "num_attention_heads", "n_head", default=max(hidden // 128, 1)) or 1
    kv_heads = _int(cfg, "num_key_value_heads", "multi_query_group_num", default=heads) or heads
    head_dim = _int(cfg, "head_dim", default=hidden // heads) or hidden // heads
    intermediate = _int(cfg, "intermediate_size", "ffn_dim", "n_inner", default=4 * hidden)
    assert intermediate is not None
    window, sliding_layers = _sliding(cfg, layers)
    mla = _mla(cfg)
    moe = _moe(cfg, intermediate)
    blocks = layers * (1 + moe.get("experts", 0)) + (vision or {}).get("num_hidden_layers", 0)
    if blocks > _MAX_BLOCKS:
        raise FitInputError(
            f"{source}: {layers} layers, {moe.get('experts', 0)} experts each, is more than "
            f"fit reads ({_MAX_BLOCKS:,} layer blocks); not a model's config"
        )
    kv_per_token = (
        heads * (mla["qk_nope_dim"] + mla["qk_rope_dim"] + mla["v_head_dim"])
        if mla
        else 2 * kv_heads * head_dim
    )
    dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    return ArchInfo(
        model_type=model_type,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        tied=bool(cfg.get("tie_word_embeddings", model_type in _FOUR_NORMS)),
        norms_per_layer=4 if model_type in _FOUR_NORMS else 2,
        attention_bias=bool(cfg.get("attention_bias", model_type in ("qwen2", "qwen2_moe"))),
        gated_mlp=model_type not in _NO_GATE_MLP,
        fused_qkv=model_type in _FUSED_QKV,
        sliding_window=window,
        sliding_layers=sliding_layers,
        kv_dim_per_token=kv_per_token,
        vision=vision,
        torch_dtype=dtype if isinstance(dtype, str) else None,
        prequantized=_prequantized(config),
        **moe,
        **mla,
    )
