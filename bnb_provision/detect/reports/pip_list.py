"""``pip list`` (columns, with or without its ``Package Version`` header, editable
installs with a location column), ``pip freeze`` / ``pip list --format=freeze``
(``name==version``), and ``pip show`` (``Name:`` / ``Version:``).

Only rows that look like a package and a version count; a section is pip's when most of
its lines are such rows (see :func:`pip_share`).
"""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.detect.reports.facts import Facts, normalize_package, version_token

__all__ = ["is_pip_show", "parse_pip", "pip_row", "pip_share"]

_NAME: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_LIST_RE: Final = re.compile(rf"({_NAME})[ \t]+([0-9][^\s]{{0,79}})(?:[ \t]+(\S[^\t]{{0,300}}))?")
_FREEZE_RE: Final = re.compile(rf"({_NAME})(?:\[[^\]]{{0,200}}\])? ?===? ?([0-9][^\s,;]{{0,79}})")
_HEADER_RE: Final = re.compile(r"Package +Version(?: +(?:Editable project location|Location))?")
# words that start prose lines such as "CUDA 11.8" or "Ubuntu 20.04": never a package here
_NOT_PACKAGES: Final = frozenset(
    {
        "python",
        "cuda",
        "cudnn",
        "ubuntu",
        "debian",
        "centos",
        "windows",
        "linux",
        "macos",
        "os",
        "gpu",
        "driver",
        "nvidia",
        "nvcc",
        "gcc",
        "rocm",
        "version",
        "release",
        "step",
    }
)


def _is_location(text: str) -> bool:
    """An editable install's folder: ``/data/roy/diffusers``, ``~/src/x``, ``C:\\src``."""
    return text.startswith(("/", "~", ".")) or text[1:3] in {":\\", ":/"}


def pip_row(line: str) -> tuple[str, str] | None:
    """(normalized name, version) when ``line`` is a pip list or freeze row."""
    s = line.strip()
    m = _FREEZE_RE.match(s)
    if m is None:
        m = _LIST_RE.fullmatch(s)
        if m is not None and m.group(3) and not _is_location(m.group(3)):
            return None  # a third column that is not a location: prose, or conda's build
    if m is None:
        return None
    name = normalize_package(m.group(1))
    version = version_token(m.group(2))
    if version is None or "." not in version or name in _NOT_PACKAGES:
        return None  # "RTX 3090", "Windows 11", "CUDA 11.8": prose, not rows
    return name, version


def pip_share(lines: list[str]) -> tuple[int, int]:
    """(rows, non-empty lines that are neither rows nor the header) in ``lines``."""
    rows = other = 0
    for line in lines:
        s = line.strip()
        if not s or _HEADER_RE.fullmatch(s) or set(s) <= {"-", " "}:
            continue
        if pip_row(s) is not None:
            rows += 1
        else:
            other += 1
    return rows, other


def is_pip_show(lines: list[str]) -> bool:
    """``pip show NAME``: a ``Name:`` line with ``Version:`` below it."""
    return bool(_pip_show(lines))


def _pip_show(lines: list[str]) -> dict[str, str]:
    packages: dict[str, str] = {}
    for i, line in enumerate(lines[:-1]):
        name = line.strip().removeprefix("Name:")
        below = lines[i + 1].strip()
        if name != line.strip() and below.startswith("Version:"):
            version = version_token(below.removeprefix("Version:"))
            if name.strip() and version:
                packages[normalize_package(name)] = version
    return packages


def parse_pip(text: str) -> Facts:
    """The packages in pip list / freeze / show output, as printed."""
    lines = text.splitlines()
    packages = _pip_show(lines)
    for line in lines:
        row = pip_row(line)
        if row is not None:
            packages.setdefault(*row)
    return Facts(
        tool="pip",
        torch=packages.get("torch"),
        bitsandbytes=packages.get("bitsandbytes"),
        packages=tuple(sorted(packages.items())),
    )
