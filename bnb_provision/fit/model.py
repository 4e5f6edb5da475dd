"""A model as ``fit`` sees it: its shape and every tensor, read without loading a weight.

From a folder (``config.json``, plus the safetensors headers when the weights are there, or the
index when only it is), a single ``config.json`` or ``.safetensors`` file, or a bare parameter
count (``--model-params 7B``), for which the shape of the nearest Llama 3 size is assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core.jsonio import JsonInputError, read_json
from bnb_provision.errors import FitInputError
from bnb_provision.fit.arch import ArchInfo, arch_from_config
from bnb_provision.fit.safetensors import TensorInfo, read_header, read_index
from bnb_provision.fit.synth import synthesize
from bnb_provision.fit.units import format_params

__all__ = ["ModelSpec", "model_from_params", "read_model"]

MAX_CONFIG: Final = 16 * 1024 * 1024
# (hidden, layers, intermediate, heads, kv heads) of the Llama 3 family, vocabulary 128256.
_LLAMA3: Final = (
    (2048, 16, 8192, 32, 8),  # 3.2 1B
    (3072, 28, 8192, 24, 8),  # 3.2 3B
    (4096, 32, 14336, 32, 8),  # 3.1 8B
    (8192, 80, 28672, 64, 8),  # 3.1 70B
    (16384, 126, 53248, 128, 8),  # 3.1 405B
)
_LLAMA3_SOURCE: Final = "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json"


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    arch: ArchInfo
    tensors: tuple[TensorInfo, ...]
    source: str
    tensors_from: str  # "safetensors headers", "config.json", or "--model-params"
    notes: tuple[str, ...] = ()

    @property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)

    def describe(self) -> str:
        return f"{self.source} ({self.arch.model_type}, {format_params(self.params)} parameters)"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path, max_bytes=MAX_CONFIG)
    except OSError as exc:
        raise FitInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except JsonInputError as exc:
        raise FitInputError(f"{path}: not a model config: {exc}") from None
    if not isinstance(data, dict):
        raise FitInputError(f"{path}: not a JSON object")
    return data


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a name the file system refuses (too long) is none."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _headers(folder: Path) -> tuple[tuple[TensorInfo, ...], str] | None:
    """Tensors from the shards' headers; None when the weights are not in the folder."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_index(index).values()))
        present = [folder / s for s in shards if _is_file(folder / s)]
        if len(present) < len(shards):
            return None
    else:
        present = sorted(folder.glob("*.safetensors"))
        if not present:
            return None
    tensors = tuple(t for shard in present for t in read_header(shard))
    return tensors, f"safetensors headers ({len(present)} file{'s' * (len(present) > 1)})"


def _loaded(tensors: tuple[TensorInfo, ...]) -> tuple[TensorInfo, ...]:
    """Drop the multi-token-prediction head some checkpoints carry (transformers skips it)."""
    return tuple(t for t in tensors if ".mtp." not in t.name and not t.name.startswith("mtp."))


def read_model(path: str | Path) -> ModelSpec:
    """Read a model folder, a ``config.json`` or a ``.safetensors`` file."""
    p = Path(path)
    if not p.exists():
        raise FitInputError(f"{p}: no such file or folder (give a model folder or config.json)")
    if p.is_file() and p.suffix == ".safetensors":
        config = p.parent / "config.json"
        if not config.is_file():
            raise FitInputError(f"{p}: needs the model's config.json beside it")
        tensors = read_header(p)
        arch = arch_from_config(_read_config(config), str(config))
        return ModelSpec(
            arch=arch, tensors=tensors, source=str(p), tensors_from="safetensors header"
        )
    folder, config = (p, p / "config.json") if p.is_dir() else (p.parent, p)
    if not config.is_file():
        raise FitInputError(
            f"{folder}: no config.json (give the model's folder or its config.json)"
        )
    arch = arch_from_config(_read_config(config), str(config))
    found = _headers(folder)
    if found is not None:
        tensors, how = found
        return ModelSpec(arch=arch, tensors=_loaded(tensors), source=str(p), tensors_from=how)
    notes: tuple[str, ...] = ()
    if arch.vision:
        notes = ("vision tower sized from vision_config as a plain ViT (no weights to read)",)
    return ModelSpec(
        arch=arch, tensors=synthesize(arch), source=str(p), tensors_from="config.json", notes=notes
    )


def model_from_params(params: float) -> ModelSpec:
    """A dense decoder of ``params`` parameters, shaped like the nearest Llama 3 size."""
    vocab = 128256

    def size(h: int, layers: int, inter: int, kv: int, heads: int) -> float:
        per_layer = 2 * h * h + 2 * h * (h // heads) * kv + 3 * h * inter
        return layers * per_layer + 2 * vocab * h

    h, layers, inter, heads, kv = min(
        _LLAMA3, key=lambda c: abs(math.log(size(c[0], c[1], c[2], c[4], c[3]) / params))
    )
    per_layer = size(h, 1, inter, kv, heads) - 2 * vocab * h
    layers = max(1, round((params - 2 * vocab * h) / per_layer))
    cfg = {
        "model_type": "llama",
        "hidden_size": h,
        "num_hidden_layers": layers,
        "intermediate_size": inter,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": vocab,
        "tie_word_embeddings": False,
    }
    arch = arch_from_config(cfg, "--model-params")
    return ModelSpec(
        arch=arch,
        tensors=synthesize(arch),
        source=f"--model-params {format_params(params)}",
        tensors_from="--model-params",
        notes=(
            (
                f"shape assumed: Llama 3 proportions (hidden {h}, {layers} layers, MLP {inter}, "
                f"vocabulary {vocab}, untied head; {_LLAMA3_SOURCE}); give the model's folder "
                "or config.json for its real shape"
            ),
        ),
    )
