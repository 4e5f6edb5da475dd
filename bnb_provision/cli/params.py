"""The value types of the command line: each checks its flag's value where it is parsed, so
a bad value is a usage error naming the flag (``Invalid value for '--torch': ...``, exit 2)
instead of a failure deep inside a command.
"""

from __future__ import annotations

import math
import re
import string
from typing import TYPE_CHECKING, Any, Final

import click
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import normalize_cuda_option

__all__ = [
    "CUDA_PIN",
    "INDEX_TEMPLATE",
    "MODEL_SIZE",
    "VERSION_PIN",
    "ModelSize",
    "UserFile",
    "UserPath",
    "VersionPin",
]

if TYPE_CHECKING:  # generic from click 8.2 on; subscripting fails at run time before that
    _Text = click.ParamType[str]
    _Number = click.ParamType[float]
else:
    _Text = _Number = click.ParamType

_SPECIFIER_CHARS: Final = "<>=!~,"
_SIZE_RE: Final = re.compile(r"(?P<number>[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)(?P<unit>[kmbt]?)")
_UNITS: Final = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


class UserPath(click.Path):
    """A path as the user typed it. A NUL character is refused here: click would hand the
    name to ``os.stat``, which raises ``ValueError`` instead of saying the file is absent."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("a path cannot hold a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class UserFile(click.File):
    """A file to read, as the user typed its name; a NUL is refused as for :class:`UserPath`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("a path cannot hold a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class VersionPin(_Text):
    """A version prefix (``2.8``, ``2.8.0``) or a specifier (``>=2.8,<2.10``); ``words``
    are accepted as they are (``system`` for ``init --torch``)."""

    name = "version"

    def __init__(self, *words: str) -> None:
        self.words = words

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text in self.words:
            return text
        example = "a version such as 2.8 or 2.8.0, or a specifier such as '>=2.8,<2.10'"
        if any(op in text for op in _SPECIFIER_CHARS):
            try:
                SpecifierSet(text)
            except InvalidSpecifier:
                self.fail(f"{text!r} is not a version specifier; give {example}", param, ctx)
            return text
        try:
            version = Version(text)
        except InvalidVersion:
            self.fail(f"{text!r} is not a version; give {example}", param, ctx)
        if version.local is not None:
            self.fail(
                f"{text!r}: the build (+{version.local}) is not part of a pin; give the "
                "version, and the CUDA build with --cuda X.Y or --cuda cpu",
                param,
                ctx,
            )
        return text


class _CudaPin(_Text):
    """``--cuda``: a build (``12.6``, ``cu126``, ``rocm7.2``, ``xpu``, ``mps``, ``cpu``);
    whether the DB knows it is the plan's to say, listing what exists."""

    name = "cuda"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            normalize_cuda_option(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


class _IndexTemplate(_Text):
    """``--torch-index-url``: a URL where ``{variant}`` (cu128, cpu, ...) may stand; no other
    field, conversion or format spec (``str.format`` would raise, or pad without bound)."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text)]
        except ValueError as exc:  # a lone { or }
            self.fail(f"{text!r}: {exc}; a literal brace is written twice", param, ctx)
        plain = all(f == "variant" and not spec and conv is None for f, spec, conv in fields if f)
        if not (text and plain) or any(f == "" for f, _, _ in fields):
            self.fail(
                f"{text!r}: expected an index URL where only {{variant}} is replaced, e.g. "
                "https://mirror.example/whl/{variant}",
                param,
                ctx,
            )
        return text


class ModelSize(_Number):
    """A parameter count: ``7e9``, ``7B``, ``70b``, ``1.5T``, ``350M``; more than zero."""

    name = "size"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip().lower().replace("_", "")
        m = _SIZE_RE.fullmatch(text)
        size = float(m["number"]) * _UNITS[m["unit"]] if m else math.nan
        if not (math.isfinite(size) and size >= 1):
            self.fail(
                f"{value!r}: expected a parameter count such as 7e9, 7B or 350M (more than zero)",
                param,
                ctx,
            )
        return size


VERSION_PIN: Final = VersionPin()
INDEX_TEMPLATE: Final = _IndexTemplate()
CUDA_PIN: Final = _CudaPin()
MODEL_SIZE: Final = ModelSize()
