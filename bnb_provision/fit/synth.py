"""The tensors a model has, written out from its config when its checkpoint is not at hand.

Names follow the Llama layout transformers uses (``model.layers.N.self_attn.q_proj.weight``)
so that one classifier reads both these and real safetensors headers.
"""

from __future__ import annotations

from collections.abc import Iterator

from bnb_provision.fit.arch import ArchInfo
from bnb_provision.fit.safetensors import TensorInfo

__all__ = ["synthesize"]


def _t(name: str, *shape: int) -> TensorInfo:
    return TensorInfo(name=name, shape=tuple(shape), dtype="BF16")


def _attention(a: ArchInfo, p: str) -> Iterator[TensorInfo]:
    h = a.hidden
    if a.kv_lora_rank is not None:  # multi-head latent attention
        qk = a.qk_nope_dim + a.qk_rope_dim
        if a.q_lora_rank:
            yield _t(f"{p}.q_a_proj.weight", a.q_lora_rank, h)
            yield _t(f"{p}.q_a_layernorm.weight", a.q_lora_rank)
            yield _t(f"{p}.q_b_proj.weight", a.heads * qk, a.q_lora_rank)
        else:
            yield _t(f"{p}.q_proj.weight", a.heads * qk, h)
        yield _t(f"{p}.kv_a_proj_with_mqa.weight", a.kv_lora_rank + a.qk_rope_dim, h)
        yield _t(f"{p}.kv_a_layernorm.weight", a.kv_lora_rank)
        yield _t(f"{p}.kv_b_proj.weight", a.heads * (a.qk_nope_dim + a.v_head_dim), a.kv_lora_rank)
        yield _t(f"{p}.o_proj.weight", h, a.heads * a.v_head_dim)
        return
    q, kv = a.q_dim, a.kv_dim
    if a.fused_qkv:
        yield _t(f"{p}.qkv_proj.weight", q + 2 * kv, h)
    else:
        for name, rows in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
            yield _t(f"{p}.{name}.weight", rows, h)
            if a.attention_bias:
                yield _t(f"{p}.{name}.bias", rows)
    yield _t(f"{p}.o_proj.weight", h, q)
    if a.model_type.startswith(("gemma3", "qwen3")):
        yield _t(f"{p}.q_norm.weight", a.head_dim)
        yield _t(f"{p}.k_norm.weight", a.head_dim)


def _mlp(a: ArchInfo, p: str, inter: int) -> Iterator[TensorInfo]:
    h = a.hidden
    if not a.gated_mlp:
        yield _t(f"{p}.fc1.weight", inter, h)
        yield _t(f"{p}.fc2.weight", h, inter)
    elif a.fused_qkv:
        yield _t(f"{p}.gate_up_proj.weight", 2 * inter, h)
        yield _t(f"{p}.down_proj.weight", h, inter)
    else:
        yield _t(f"{p}.gate_proj.weight", inter, h)
        yield _t(f"{p}.up_proj.weight", inter, h)
        yield _t(f"{p}.down_proj.weight", h, inter)


def _moe(a: ArchInfo, p: str) -> Iterator[TensorInfo]:
    yield _t(f"{p}.gate.weight", a.experts, a.hidden)
    for e in range(a.experts):
        yield from _mlp(a, f"{p}.experts.{e}", a.moe_intermediate)
    if a.shared_intermediate:
        yield from _mlp(a, f"{p}.shared_expert", a.shared_intermediate)


def _layer(a: ArchInfo, i: int) -> Iterator[TensorInfo]:
    p = f"model.layers.{i}"
    yield from _attention(a, f"{p}.self_attn")
    if a.is_moe and i >= a.dense_layers:
        yield from _moe(a, f"{p}.mlp")
    else:
        yield from _mlp(a, f"{p}.mlp", a.intermediate)
    norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    if a.norms_per_layer == 4:  # noqa: PLR2004
        norms += ("pre_feedforward_layernorm", "post_feedforward_layernorm")
    for norm in norms:
        yield _t(f"{p}.{norm}.weight", a.hidden)


def _vision(a: ArchInfo) -> Iterator[TensorInfo]:
    v = a.vision or {}
    h, inter, layers = (v.get(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers"))
    if not (h and inter and layers):
        return
    patch = v.get("patch_size", 14)
    p = "model.vision_tower"
    yield _t(f"{p}.embeddings.patch_embedding.weight", h, v["num_channels"], patch, patch)
    yield _t(f"{p}.embeddings.position_embedding.weight", (v["image_size"] // patch) ** 2, h)
    for i in range(layers):
        q = f"{p}.encoder.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            yield _t(f"{q}.self_attn.{name}.weight", h, h)
        yield _t(f"{q}.mlp.fc1.weight", inter, h)
        yield _t(f"{q}.mlp.fc2.weight", h, inter)
        yield _t(f"{q}.layer_norm1.weight", h)
        yield _t(f"{q}.layer_norm2.weight", h)
    yield _t("model.multi_modal_projector.linear.weight", a.hidden, h)


def synthesize(a: ArchInfo) -> tuple[TensorInfo, ...]:
    """Every weight of the language model (and a vision tower when the config has one)."""
    out = [_t("model.embed_tokens.weight", a.vocab, a.hidden)]
    for i in range(a.layers):
        out.extend(_layer(a, i))
    out.append(_t("model.norm.weight", a.hidden))
    if not a.tied:
        out.append(_t("lm_head.weight", a.vocab, a.hidden))
    out.extend(_vision(a))
    return tuple(out)
