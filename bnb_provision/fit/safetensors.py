"""Tensor names, shapes and dtypes from safetensors files, read without loading a weight.

A safetensors file starts with an 8-byte little-endian header length, then that many bytes
of JSON: ``{name: {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [a, b]}}``.
Only the header is read (at most ``MAX_HEADER`` bytes); every entry is checked against the
file's size so a truncated or foreign file is reported, not trusted.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core.jsonio import JsonInputError, decode_json, read_json
from bnb_provision.errors import FitInputError

__all__ = ["DTYPE_BYTES", "TensorInfo", "read_header", "read_index"]

MAX_HEADER: Final = 100 * 1024 * 1024  # the format's own limit
MAX_INDEX: Final = 64 * 1024 * 1024
_MAX_DIM: Final = 2**40  # no tensor dimension comes near (as for a config's, fit/arch.py)
DTYPE_BYTES: Final = {
    "BOOL": 1.0,
    "U8": 1.0,
    "I8": 1.0,
    "F8_E5M2": 1.0,
    "F8_E4M3": 1.0,
    "F8_E8M0": 1.0,
    "F4": 0.5,
    "I16": 2.0,
    "U16": 2.0,
    "F16": 2.0,
    "BF16": 2.0,
    "I32": 4.0,
    "U32": 4.0,
    "F32": 4.0,
    "I64": 8.0,
    "U64": 8.0,
    "F64": 8.0,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class TensorInfo:
    """One tensor of a checkpoint: its name, shape and dtype (safetensors spelling)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> float:
        return self.numel * DTYPE_BYTES[self.dtype]


def _entry(path: Path, name: str, meta: Any, data_len: int) -> TensorInfo:
    where = f"{path}: tensor {name!r}"
    if not isinstance(meta, dict):
        raise FitInputError(f"{where}: header entry is not an object")
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise FitInputError(f"{where}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= _MAX_DIM for d in shape
    ):
        raise FitInputError(f"{where}: shape {shape!r} is not a list of sizes")
    info = TensorInfo(name=name, shape=tuple(shape), dtype=dtype)
    half_bytes = int(DTYPE_BYTES[dtype] * 2)  # exact in integers: F4 is half a byte
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2  # noqa: PLR2004
        or not all(isinstance(o, int) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
        or offsets[1] - offsets[0] != (info.numel * half_bytes + 1) // 2
    ):
        raise FitInputError(
            f"{where}: data_offsets {offsets!r} do not match its shape and dtype or run past "
            "the end of the file (truncated or not a safetensors file?)"
        )
    return info


def read_header(path: Path) -> tuple[TensorInfo, ...]:
    """The tensors listed in one ``.safetensors`` file's header."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:  # noqa: PLR2004
                raise FitInputError(f"{path}: too short to be a safetensors file")
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_HEADER, size - 8):
                raise FitInputError(
                    f"{path}: header length {length} is larger than the file or the format's "
                    "100 MB limit (not a safetensors file?)"
                )
            raw = fh.read(length)
    except OSError as exc:
        raise FitInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        header = decode_json(raw)
    except JsonInputError as exc:
        raise FitInputError(f"{path}: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FitInputError(f"{path}: header is not a JSON object")
    data_len = size - 8 - length
    return tuple(
        _entry(path, name, meta, data_len)
        for name, meta in header.items()
        if name != "__metadata__"
    )


def read_index(path: Path) -> dict[str, str]:
    """``model.safetensors.index.json``: tensor name -> shard file name."""
    try:
        data = read_json(path, max_bytes=MAX_INDEX)
    except OSError as exc:
        raise FitInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except JsonInputError as exc:
        raise FitInputError(f"{path}: not JSON ({exc})") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "/" not in v and v not in ("", ".", "..")
        for k, v in weight_map.items()
    ):
        raise FitInputError(f"{path}: 'weight_map' must map tensor names to shard file names")
    return dict(weight_map)
