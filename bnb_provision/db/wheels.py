"""What a wheel's file name and its metadata say: the platform it is for, the Pythons it
takes, and the CUDA runtime it pins on a platform (torch's ``Requires-Dist`` markers)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from bnb_provision.db.rows import WheelPlatform
from bnb_provision.vocab import Platform

__all__ = ["MARKER_ENVS", "cuda_from_requires", "macos_floors", "platform_of_wheel", "python_tags"]

MARKER_ENVS: Final[dict[str, dict[str, str]]] = {
    "linux-x86_64": {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    },
    "linux-aarch64": {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "aarch64",
        "os_name": "posix",
    },
    "windows-x86_64": {
        "platform_system": "Windows",
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "os_name": "nt",
    },
    "windows-aarch64": {
        "platform_system": "Windows",
        "sys_platform": "win32",
        "platform_machine": "ARM64",
        "os_name": "nt",
    },
    "macos-arm64": {
        "platform_system": "Darwin",
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "os_name": "posix",
    },
    "macos-x86_64": {
        "platform_system": "Darwin",
        "sys_platform": "darwin",
        "platform_machine": "x86_64",
        "os_name": "posix",
    },
}
"""PEP 508 marker values of each platform (``vocab.PLATFORMS``), to evaluate
``Requires-Dist`` markers."""

_CUDA_RUNTIME_RE: Final = re.compile(r"nvidia-cuda-runtime(-cu\d+)?|cuda-toolkit")


_WINDOWS: Final[dict[str, Platform]] = {
    "win_amd64": "windows-x86_64",
    "win_arm64": "windows-aarch64",
}


def platform_of_wheel(filename: str) -> WheelPlatform | None:
    """``...-manylinux_2_28_x86_64.whl`` -> ``linux-x86_64``; ``any`` -> ``any``."""
    _, _, _, tags = parse_wheel_filename(filename)
    plats = {t.platform for t in tags}
    for p in sorted(plats):
        if p == "any":
            return "any"
        if "linux" in p:
            return (
                "linux-aarch64"
                if p.endswith("aarch64")
                else ("linux-x86_64" if p.endswith("x86_64") else None)
            )
        if p.startswith("win"):
            return _WINDOWS.get(p)
        if p.startswith("macosx"):
            return "macos-arm64" if p.endswith(("arm64", "universal2")) else "macos-x86_64"
    return None


def python_tags(filenames: Iterable[str]) -> list[str]:
    """The CPython versions the wheels are built for (``3.13t`` for free-threaded), in order."""
    out: set[str] = set()
    for fn in filenames:
        _, _, _, tags = parse_wheel_filename(fn)
        for t in tags:
            m = re.fullmatch(r"cp(\d)(\d+)(t?)", t.interpreter)
            if m:
                out.add(f"{m.group(1)}.{m.group(2)}{m.group(3)}")
    return sorted(out, key=lambda s: (int(s.split(".")[1].rstrip("t")), s.endswith("t")))


_MACOS_RE: Final = re.compile(r"macosx_(\d+)_(\d+)_(arm64|universal2)")


def macos_floors(filenames: Iterable[str]) -> list[str]:
    """``PYTHON=MACOS`` per Python of the macOS arm64 wheels: the oldest macOS release each
    installs on, from the platform tag (``macosx_14_0_arm64`` -> ``14.0``). ``py3`` stands
    for a wheel every Python takes; free-threaded builds are left out. Sorted by Python."""
    floors: dict[str, tuple[int, int]] = {}
    for fn in filenames:
        _, _, _, tags = parse_wheel_filename(fn)
        for t in tags:
            m = _MACOS_RE.fullmatch(t.platform)
            py = re.fullmatch(r"cp(\d)(\d+)|(py3)", t.interpreter)
            if m is None or py is None or t.abi.endswith("t"):
                continue
            key = py.group(3) or f"{py.group(1)}.{py.group(2)}"
            release = (int(m.group(1)), int(m.group(2)))
            floors[key] = min(floors.get(key, release), release)
    order = sorted(floors, key=lambda k: (k != "py3", int(k.split(".")[-1]) if "." in k else 0))
    return [f"{k}={floors[k][0]}.{floors[k][1]}" for k in order]


def _applies(req: Requirement, platform: str, python: str) -> bool:
    if req.marker is None:
        return True
    env = {
        **MARKER_ENVS.get(platform, {}),
        "python_version": python,
        "python_full_version": python + ".0",
        "extra": "",
    }
    return req.marker.evaluate(env)


def cuda_from_requires(requires: list[str], platform: str, python: str) -> str | None:
    """The CUDA runtime a wheel pins on ``platform``.

    ``nvidia-cuda-runtime-cu12==12.1.105`` -> ``12.1``.
    """
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        if not _CUDA_RUNTIME_RE.fullmatch(name) or not _applies(req, platform, python):
            continue
        if name == "cuda-toolkit" and req.extras and "cudart" not in req.extras:
            continue
        for spec in req.specifier:
            m = re.match(r"(\d+)\.(\d+)", spec.version)
            if m and spec.operator in ("==", "~=", ">="):
                return f"{m.group(1)}.{m.group(2)}"
    return None
