"""Typed getters for data read from JSON/TOML, with errors that give the path.

``Fields(d, "bitsandbytes.releases[12]")`` wraps one table; ``f.text("version")``
returns a ``str`` or raises ``FieldError("bitsandbytes.releases[12].version:
expected a string, got int")``. ``f.done()`` rejects unknown keys and suggests
the near miss (``did you mean 'source'?``).
"""

from __future__ import annotations

import difflib
from typing import Any, TypeVar, overload

__all__ = ["FieldError", "Fields"]

T = TypeVar("T")
_MISSING: Any = object()


class FieldError(ValueError):
    """A bad field; ``str()`` starts with its path."""


def _type_name(value: object) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)


class Fields:
    """A view over one table that records which keys were read."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise FieldError(f"{path}: expected a table, got {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.path = path
        self._seen: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, types: tuple[type, ...], what: str, default: Any) -> Any:
        self._seen.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise FieldError(f"{self.sub(key)}: required field is missing")
            return default
        value = self.data[key]
        if value is None and default is None:
            return None
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise FieldError(f"{self.sub(key)}: expected {what}, got {_type_name(value)}")
        return value

    @overload
    def text(self, key: str) -> str: ...
    @overload
    def text(self, key: str, default: str) -> str: ...
    @overload
    def text(self, key: str, default: None) -> str | None: ...
    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, (str,), "a string", default)

    @overload
    def integer(self, key: str) -> int: ...
    @overload
    def integer(self, key: str, default: int) -> int: ...
    @overload
    def integer(self, key: str, default: None) -> int | None: ...
    def integer(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, (int,), "an integer", default)

    @overload
    def flag(self, key: str) -> bool: ...
    @overload
    def flag(self, key: str, default: bool) -> bool: ...
    @overload
    def flag(self, key: str, default: None) -> bool | None: ...
    def flag(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, (bool,), "true or false", default)

    @overload
    def number(self, key: str) -> float: ...
    @overload
    def number(self, key: str, default: float) -> float: ...
    @overload
    def number(self, key: str, default: None) -> float | None: ...
    def number(self, key: str, default: Any = _MISSING) -> Any:
        """An integer or a float (TOML's ``1`` and ``1.0``), returned as a float."""
        value = self._get(key, (int, float), "a number", default)
        if not isinstance(value, (int, float)):
            return value
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise FieldError(f"{self.sub(key)}: the number is too large") from None

    @overload
    def table(self, key: str) -> Fields: ...
    @overload
    def table(self, key: str, default: dict[str, Any]) -> Fields: ...
    @overload
    def table(self, key: str, default: None) -> Fields | None: ...
    def table(self, key: str, default: Any = _MISSING) -> Fields | None:
        value = self._get(key, (dict,), "a table", default)
        return None if value is None else Fields(value, self.sub(key))

    def array(self, key: str, default: Any = _MISSING) -> list[Any]:
        value = self._get(key, (list,), "an array", default)
        return [] if value is None else value

    def str_list(self, key: str, default: Any = _MISSING) -> list[str]:
        items = self.array(key, default)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise FieldError(f"{self.sub(key)}[{i}]: expected a string, got {_type_name(item)}")
        return items

    def int_list(self, key: str, default: Any = _MISSING) -> list[int]:
        items = self.array(key, default)
        for i, item in enumerate(items):
            if not isinstance(item, int) or isinstance(item, bool):
                raise FieldError(
                    f"{self.sub(key)}[{i}]: expected an integer, got {_type_name(item)}"
                )
        return items

    def tables(self, key: str, default: Any = _MISSING) -> list[Fields]:
        items = self.array(key, default)
        return [Fields(item, f"{self.sub(key)}[{i}]") for i, item in enumerate(items)]

    def done(self) -> None:
        """Reject keys that were never read (typos)."""
        for key in self.data:
            if key not in self._seen:
                near = difflib.get_close_matches(key, sorted(self._seen), n=1, cutoff=0.7)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise FieldError(f"{self.sub(key)}: unknown field{hint}")

    def check(self, ok: bool, key: str, message: str) -> None:
        if not ok:
            raise FieldError(f"{self.sub(key)}: {message}")
