"""Typed readers for the compat DB's values, on top of :class:`core.fields.Fields`.

Each returns a concrete type (a ``Version``, a ``SpecifierSet``, a compute capability)
or raises :class:`FieldError` whose message starts with the field's path
(``build[1].torch: not a version specifier: '>>2'``).
"""

from __future__ import annotations

import difflib
import functools
import re
import string
from collections.abc import Collection
from typing import Final, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import DriverVersion
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.db.rows import WheelPlatform
from bnb_provision.vocab import CATEGORIES, PLATFORMS, Category, Platform

__all__ = [
    "category",
    "cc",
    "checked",
    "choice",
    "documentary",
    "documentary_date",
    "macos_floors",
    "opt_cc",
    "opt_checked",
    "opt_version",
    "optional_choices",
    "parse_version",
    "platform",
    "platforms",
    "regex",
    "requires",
    "source",
    "source_key",
    "spec",
    "template",
    "version",
    "wheel_platform",
    "wheel_platforms",
]

_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SOURCE_RE: Final = re.compile(r"^(https?://|derived:|\S+\.md\b|docs/)")
_CC_RE: Final = re.compile(r"(\d+)\.(\d+)")
_REQUIREMENT_RE: Final = re.compile(r"([A-Za-z0-9_.-]+)\s*(.*)")
S = TypeVar("S", bound=str)


def parse_version(f: Fields, key: str, text: str) -> Version:
    """``text`` (a value found under ``key``) as a version; a FieldError naming it if not."""
    return _parse_version(f, key, text)


def _parse_version(f: Fields, key: str, text: str) -> Version:
    try:
        return _version(text)
    except InvalidVersion:
        raise FieldError(f"{f.sub(key)}: not a version: {text!r}") from None


@functools.lru_cache(maxsize=4096)
def _version(text: str) -> Version:
    """One ``Version`` per spelling: the DB repeats each release's version in every row
    of its libraries (a thousand rows of the same few dozen strings)."""
    return Version(text)


def version(f: Fields, key: str) -> Version:
    """A required version (``"12.8"``, ``"0.45.5"``)."""
    return _parse_version(f, key, f.text(key))


def driver(f: Fields, key: str) -> DriverVersion:
    """A required NVIDIA driver version, kept as written (``"450.80.02"``)."""
    text = f.text(key)
    _parse_version(f, key, text)
    return DriverVersion(text)


def opt_driver(f: Fields, key: str) -> DriverVersion | None:
    """An optional driver version: None when the key is absent."""
    return driver(f, key) if f.text(key, None) is not None else None


def opt_version(f: Fields, key: str) -> Version | None:
    """An optional version: None when the key is absent."""
    text = f.text(key, None)
    return None if text is None else _parse_version(f, key, text)


def spec(f: Fields, key: str, default: str | None = None) -> SpecifierSet:
    """A version specifier (``">=0.43,<0.45"``); required unless ``default`` is given."""
    text = f.text(key) if default is None else f.text(key, default)
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise FieldError(f"{f.sub(key)}: not a version specifier: {text!r}") from None


def macos_floors(f: Fields, key: str) -> tuple[tuple[str, Version], ...]:
    """``["3.12=11.0", "py3=14.0"]``: the oldest macOS release of the arm64 wheel for each
    Python (``py3`` for a wheel every Python takes); empty when the key is absent."""
    out = []
    for i, item in enumerate(f.str_list(key, [])):
        python, _, macos = item.partition("=")
        if not python or not macos:
            raise FieldError(f"{f.sub(key)}[{i}]: expected PYTHON=MACOS, got {item!r}")
        out.append((python, _parse_version(f, f"{key}[{i}]", macos)))
    return tuple(out)


def cc(f: Fields, key: str) -> tuple[int, int]:
    """A compute capability written ``"X.Y"``."""
    return _parse_cc(f, key, f.text(key))


def opt_cc(f: Fields, key: str) -> tuple[int, int] | None:
    """An optional compute capability: None when the key is absent."""
    text = f.text(key, None)
    return None if text is None else _parse_cc(f, key, text)


def _parse_cc(f: Fields, key: str, text: str) -> tuple[int, int]:
    m = _CC_RE.fullmatch(text)
    if m is None:
        raise FieldError(f'{f.sub(key)}: expected a compute capability "X.Y", got {text!r}')
    return int(m.group(1)), int(m.group(2))


def source(f: Fields) -> str:
    """The row's public source: a URL, a ``derived:`` note or a ``docs/`` page."""
    return source_key(f, "source")


def source_key(f: Fields, key: str) -> str:
    """A public source under ``key`` (``source``, ``memory_source``)."""
    src = f.text(key)
    f.check(
        bool(_SOURCE_RE.match(src)),
        key,
        f"expected a public URL (or derived:/docs/ reference), got {src!r}",
    )
    return src


def checked(f: Fields) -> str:
    """The date a curated row was last checked against its source."""
    d = f.text("checked")
    f.check(bool(_DATE_RE.match(d)), "checked", f"expected a date YYYY-MM-DD, got {d!r}")
    return d


def opt_checked(f: Fields) -> str | None:
    """The date a row was checked, where its table does not require one."""
    return checked(f) if "checked" in f.data else None


def _platform(path: str, text: str) -> Platform:
    for known in PLATFORMS:
        if known == text:
            return known
    raise FieldError(f"{path}: unknown platform {text!r} (one of {', '.join(PLATFORMS)})")


def _wheel_platform(path: str, text: str) -> WheelPlatform:
    return "any" if text == "any" else _platform(path, text)


def platform(f: Fields, key: str) -> Platform:
    """One platform (``vocab.PLATFORMS``: ``linux-x86_64``, ...)."""
    return _platform(f.sub(key), f.text(key))


def platforms(f: Fields, key: str, default: list[str] | None = None) -> tuple[Platform, ...]:
    """A list of platforms; required unless ``default`` is given."""
    items = f.str_list(key) if default is None else f.str_list(key, default)
    return tuple(_platform(f"{f.sub(key)}[{i}]", p) for i, p in enumerate(items))


def wheel_platform(f: Fields, key: str) -> WheelPlatform:
    """A wheel's platform: one of ``vocab.PLATFORMS``, or ``any`` for a pure-Python wheel."""
    return _wheel_platform(f.sub(key), f.text(key))


def wheel_platforms(f: Fields, key: str) -> tuple[WheelPlatform, ...]:
    """A release's wheel platforms (``any`` for a pure-Python wheel)."""
    items = f.str_list(key)
    return tuple(_wheel_platform(f"{f.sub(key)}[{i}]", p) for i, p in enumerate(items))


def requires(f: Fields, key: str) -> tuple[tuple[str, SpecifierSet], ...]:
    """Requirements such as ``"bitsandbytes>=0.46.1"``, as (lower-case name, specifier)."""
    out = []
    for i, text in enumerate(f.str_list(key, [])):
        m = _REQUIREMENT_RE.fullmatch(text)
        try:
            if m is None:
                raise InvalidSpecifier(text)
            out.append((m.group(1).lower(), SpecifierSet(m.group(2))))
        except InvalidSpecifier:
            raise FieldError(f"{f.sub(key)}[{i}]: not a requirement: {text!r}") from None
    return tuple(out)


def regex(f: Fields, key: str, flags: int = 0) -> re.Pattern[str]:
    """A Python regular expression."""
    try:
        return re.compile(f.text(key), flags)
    except re.error as exc:
        raise FieldError(f"{f.sub(key)}: not a regular expression ({exc})") from None


def choice(f: Fields, key: str, options: tuple[S, ...], what: str) -> S:
    """One word of a closed vocabulary; a near miss is named (``did you mean ...?``)."""
    text = f.text(key)
    for option in options:
        if option == text:
            return option
    near = difflib.get_close_matches(text, options, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]!r}?" if near else f"one of {', '.join(options)}"
    raise FieldError(f"{f.sub(key)}: unknown {what} {text!r} ({hint})")


def optional_choices(
    f: Fields, key: str, options: tuple[S, ...], what: str, default: tuple[S, ...]
) -> tuple[S, ...]:
    """A list of words of a closed vocabulary; ``default`` when the key is absent."""
    if key not in f.data:
        return default
    out = []
    for i, text in enumerate(f.str_list(key)):
        match = next((o for o in options if o == text), None)
        if match is None:
            raise FieldError(
                f"{f.sub(key)}[{i}]: unknown {what} {text!r} (one of {', '.join(options)})"
            )
        out.append(match)
    return tuple(out)


def category(f: Fields, key: str) -> Category:
    """A finding category (``vocab.CATEGORIES``)."""
    return choice(f, key, CATEGORIES, "category")


def template(f: Fields, key: str, names: Collection[str]) -> str:
    """A text with ``{placeholders}`` for :meth:`str.format`; each must be in ``names``."""
    text = f.text(key)
    _check_template(f.sub(key), text, names)
    return text


def _check_template(path: str, text: str, names: Collection[str]) -> None:
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(text)]
    except ValueError as exc:
        raise FieldError(
            f"{path}: not a format string ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    for name, spec in fields:
        if name is None:
            continue
        if name not in names:
            known = ", ".join(sorted(names))
            raise FieldError(f"{path}: unknown placeholder {{{name}}} (known here: {known})")
        if spec:
            _check_template(path, spec, names)


def documentary(f: Fields, *keys: str) -> None:
    """Keys kept in the TOML for the people who read it (``label``, ``note``, ...): checked
    to be strings where present, then carried into no row, since no code reads them."""
    for key in keys:
        f.text(key, None)


def documentary_date(f: Fields, key: str) -> None:
    """A documentary date (a derived release's upload date): ``YYYY-MM-DD`` where present."""
    d = f.text(key, None)
    f.check(d is None or bool(_DATE_RE.match(d)), key, f"expected a date YYYY-MM-DD, got {d!r}")
