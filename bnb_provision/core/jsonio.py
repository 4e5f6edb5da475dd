"""JSON from files users hand over, read with bounds: size, nesting depth and encoding.

A file from another machine or another shell is UTF-8 with or without a BOM, or UTF-16
(what Windows PowerShell's ``>`` writes); the standard parser recurses once per level and
reads a number of any length, so depth is measured first, in one pass, and a failure of
any kind is a :class:`JsonInputError` saying which kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final, Literal

__all__ = ["JsonInputError", "decode_json", "max_depth", "read_json"]

DEFAULT_MAX_DEPTH: Final = 64

Kind = Literal["size", "encoding", "depth", "syntax", "value"]


class JsonInputError(ValueError):
    """Bytes that are not JSON this reader takes; ``kind`` says why, ``str()`` how."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind: Kind = kind


def decode_json(raw: bytes, *, max_depth_allowed: int = DEFAULT_MAX_DEPTH) -> object:
    """JSON from bytes in UTF-8 (with or without a BOM) or UTF-16 (a BOM says which),
    nested at most ``max_depth_allowed`` deep."""
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise JsonInputError(
            "encoding", f"not UTF-8 or UTF-16 text (byte {exc.start}: {exc.reason})"
        ) from exc
    depth = max_depth(text)
    if depth > max_depth_allowed:
        raise JsonInputError("depth", f"nested {depth} levels deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            "syntax", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        raise JsonInputError("value", str(exc)) from exc


def read_json(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    max_depth_allowed: int = DEFAULT_MAX_DEPTH,
) -> object:
    """Read and decode a JSON file of at most ``max_bytes`` (more is not read).
    Raises OSError when it cannot be read, :class:`JsonInputError` when it is not JSON."""
    with Path(path).open("rb") as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise JsonInputError("size", f"larger than {max_bytes:,} bytes")
    return decode_json(raw, max_depth_allowed=max_depth_allowed)


def max_depth(text: str) -> int:
    """How deeply ``[`` and ``{`` nest in JSON text (strings skipped), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
