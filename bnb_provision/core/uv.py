"""The uv binary (from the ``uv`` package), behind one wrapper."""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError

__all__ = [
    "PYTHON_PLATFORMS",
    "find_uv",
    "python_platform",
    "run_uv",
    "source_args",
    "sync_step",
    "venv_python",
    "venv_step",
]

# bnb-provision platform -> uv's --python-platform target triple
PYTHON_PLATFORMS: Final = {
    "linux-x86_64": "x86_64-manylinux_{glibc}",
    "linux-aarch64": "aarch64-manylinux_{glibc}",
    "windows-x86_64": "x86_64-pc-windows-msvc",
    "windows-aarch64": "aarch64-pc-windows-msvc",
    "macos-arm64": "aarch64-apple-darwin",
    "macos-x86_64": "x86_64-apple-darwin",
}
UV_TIMEOUT: Final = 1800.0
_NETWORK_ERRORS: Final = re.compile(
    r"(Failed to fetch: `(?P<url>[^`]+)`|error sending request for url \((?P<url2>[^)]+)\)|"
    r"dns error|Connection refused|Could not connect|tcp connect error|failed to lookup address)",
    re.IGNORECASE,
)


@functools.cache
def find_uv() -> str:
    """The uv binary: the one the ``uv`` package ships, else ``$UV`` or ``uv`` on PATH.

    Cached, and resolved before any worker thread starts: the ``uv`` package's
    lookup reads ``sysconfig``, which is not safe to initialize from threads.
    """
    try:
        import uv as uv_package

        path = uv_package.find_uv_bin()
        if path and Path(path).exists():
            return str(path)
    except (ImportError, FileNotFoundError, TypeError):  # pragma: no cover
        pass
    found = shutil.which(os.environ.get("UV") or "uv")
    if found is None:  # pragma: no cover - uv is a dependency
        raise ExternalToolError("uv was not found: pip install uv (bnb-provision depends on it)")
    return found


def python_platform(platform: str, glibc: tuple[int, int] | None = None) -> str:
    """uv's target triple for a platform; Linux uses the machine's glibc (at least 2.28)."""
    template = PYTHON_PLATFORMS[platform]
    minor = max(glibc[1], 28) if glibc and glibc[0] == 2 else 28  # noqa: PLR2004
    return template.format(glibc=f"2_{min(minor, 40)}")


def network_failure(stderr: str) -> str | None:
    """The URL uv could not reach, when its error is a network failure."""
    m = _NETWORK_ERRORS.search(stderr)
    if m is None:
        return None
    return m.group("url") or m.group("url2") or "an index"


def run_uv(
    args: list[str],
    *,
    cwd: str | Path | None = None,
    timeout: float = UV_TIMEOUT,
    env: dict[str, str] | None = None,
) -> process.Completed:
    """Run ``uv ARGS``; a failure raises ExternalToolError carrying uv's own message."""
    return process.run([find_uv(), *args], cwd=cwd, timeout=timeout, env=env, check=True)


def venv_python(env: str | os.PathLike[str]) -> Path:
    """Where ``uv venv`` puts the interpreter (known before the environment exists)."""
    return Path(env, "Scripts", "python.exe") if os.name == "nt" else Path(env, "bin", "python")


def venv_step(interpreter: str, env: str | os.PathLike[str]) -> list[str]:
    """``uv venv`` for a build folder that is renamed when complete: relocatable, so that
    its scripts' shebangs and activation scripts do not name the ``.partial`` path."""
    return [find_uv(), "venv", "--relocatable", "--quiet", "--no-python-downloads",
            "--python", interpreter, str(env)]  # fmt: skip


def sync_step(
    env: str | os.PathLike[str],
    requirements: str | os.PathLike[str],
    *,
    sources: Sequence[str],
    quiet: bool,
) -> list[str]:
    """``uv pip sync`` of a hash-pinned requirements lock into the environment ``env``."""
    args = [find_uv(), "pip", "sync", "--python", str(venv_python(env)), "--require-hashes",
            "--no-python-downloads"]  # fmt: skip
    if quiet:
        args.append("--quiet")
    return [*args, *sources, str(requirements)]


def source_args(*, offline: bool, find_links: Sequence[str | os.PathLike[str]]) -> list[str]:
    """uv's flags for where packages come from: only ``find_links`` when offline."""
    args = ["--offline", "--no-index"] if offline else []
    for d in find_links:
        args += ["--find-links", str(d)]
    return args
