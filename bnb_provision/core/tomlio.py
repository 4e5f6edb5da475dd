"""TOML at the file edges: a reader (tomllib, or tomlkit on Python 3.10) and a small
writer for the flat tables bnb-provision generates (strings, lists of strings, booleans,
integers). Documents a person edits or that need comments go through tomlkit."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["toml_loads", "toml_pairs", "toml_table", "toml_value"]


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML: tomllib where it exists (3.11+), tomlkit on Python 3.10."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    import tomlkit  # pragma: no cover - Python 3.10 only

    return tomlkit.parse(text).unwrap()  # pragma: no cover


def toml_value(value: object) -> str:
    """One TOML value. A JSON string is a valid TOML basic string once DEL, the one control
    character JSON leaves raw, is escaped too (non-ASCII stays as UTF-8: JSON's escapes
    for it would be surrogate pairs, which TOML refuses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_pairs(values: Mapping[str, object]) -> str:
    """``key = value`` lines (top level, or the body of a table)."""
    lines = []
    for key, value in values.items():
        bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
        lines.append(f"{key if bare else toml_value(key)} = {toml_value(value)}\n")
    return "".join(lines)


def toml_table(header: str, values: Mapping[str, object]) -> str:
    """A table: its header line (``[name]`` or ``[[name]]``) and its ``key = value`` lines."""
    return f"{header}\n{toml_pairs(values)}"
