"""``--python`` as uv reads it, in every command: a version (``3.11``) or an interpreter (a
path, or a name on PATH).

Commands that inspect an environment (detect, doctor, verify) need an interpreter: a
version is found with ``uv python find``, else ``python3.X`` on PATH
(:func:`interpreter_for_request`). Commands that plan (plan, lock, init, rebuild) need a
version: an interpreter is asked for its own, without importing anything
(:func:`version_for_request`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError, TargetEnvError

__all__ = [
    "interpreter_for_request",
    "interpreter_version",
    "requested_version",
    "resolve_interpreter",
    "version_for_request",
]

_VERSION_RE: Final = re.compile(
    r"(?:cpython@?)?(?P<v>[0-9]{1,9}(?:\.[0-9]{1,9}){0,2})", re.IGNORECASE
)
_ASK_TIMEOUT: Final = 30.0
_ASK_VERSION: Final = "import sys; print('%d.%d' % sys.version_info[:2])"
_OLDEST: Final = "torch and bitsandbytes need Python 3 (3.9 or later)"


def requested_version(text: str) -> tuple[int, ...] | None:
    """The version ``--python`` asks for (``3.11`` -> ``(3, 11)``), or None when it names
    an interpreter. Python 2 and an empty value are refused."""
    value = text.strip()
    if not value:
        raise TargetEnvError("--python: empty; give a version such as 3.12 or an interpreter")
    m = _VERSION_RE.fullmatch(value)
    if m is None:
        return None
    version = tuple(int(p) for p in m["v"].split("."))
    if version[0] != 3:  # noqa: PLR2004
        raise TargetEnvError(
            f"--python {value}: Python {version[0]} is not supported: {_OLDEST}. "
            "Give a version such as --python 3.12, or an interpreter's path."
        )
    return version


def resolve_interpreter(python: str) -> str:
    """``python`` as an absolute path: a relative path is the user's, relative to the
    current folder; a bare name is looked up on PATH."""
    if os.sep in python or (os.altsep and os.altsep in python):
        exe = Path(python).expanduser()
        if not _exists(exe):
            raise TargetEnvError(
                f"--python {python}: no such file. Give the path of a Python interpreter."
            )
        return str(exe.absolute())
    found = process.find_program(python)
    if found is None:
        if _exists(Path(python)):  # a file in the current folder, named without ./
            return str(Path(python).absolute())
        raise TargetEnvError(
            f"--python {python}: not found on PATH. Give the path of a Python interpreter, "
            "or a version such as 3.12."
        )
    return found


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL: no such file either way
        return False


def interpreter_for_request(text: str) -> str:
    """The interpreter ``--python`` names: the path or name given, or one found for a
    version (``uv python find``, else ``python3.X`` on PATH)."""
    version = requested_version(text)
    if version is None:
        return resolve_interpreter(text)
    wanted = ".".join(map(str, version))
    from bnb_provision.core.uv import find_uv

    try:
        done = process.run(
            [find_uv(), "python", "find", "--no-python-downloads", wanted],
            timeout=_ASK_TIMEOUT,
            check=False,
        )
    except ExternalToolError:
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip().splitlines()[-1]
    on_path = process.find_program(f"python{version[0]}.{version[1]}") if len(version) > 1 else None
    if on_path is not None:
        return on_path
    raise TargetEnvError(
        f"--python {text.strip()}: no Python {wanted} found (uv python find {wanted} found "
        f"none, and python{'.'.join(map(str, version[:2]))} is not on PATH). Install one with "
        f"`uv python install {wanted}`, or give the interpreter's path."
    )


def interpreter_version(python: str) -> str:
    """``X.Y`` of an interpreter, asked of it (``-E -S``: no site, no torch imported)."""
    exe = resolve_interpreter(python)
    try:
        done = process.run([exe, "-E", "-S", "-c", _ASK_VERSION], timeout=_ASK_TIMEOUT)
    except ExternalToolError as exc:
        raise TargetEnvError(
            f"--python {python}: could not run it to read its version ({exc}). Give a "
            "Python interpreter, or a version such as 3.12."
        ) from exc
    answer = done.stdout.strip()
    if not re.fullmatch(r"[0-9]{1,9}\.[0-9]{1,9}", answer):
        raise TargetEnvError(
            f"--python {python}: it did not answer like Python (output: {answer[:100]!r})"
        )
    if not answer.startswith("3."):
        raise TargetEnvError(f"--python {python} is Python {answer}: {_OLDEST}")
    return answer


def version_for_request(text: str) -> str:
    """The ``X.Y`` to plan for: the version given, or the version of the interpreter named."""
    version = requested_version(text)
    if version is None:
        return interpreter_version(text)
    if len(version) < 2:  # noqa: PLR2004
        raise TargetEnvError(
            f"--python {text.strip()}: give the minor version too, such as 3.12 (a plan is "
            "for one Python minor version)"
        )
    return f"{version[0]}.{version[1]}"
