"""The one subprocess wrapper: every external program runs through :func:`run`."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from bnb_provision.errors import ExternalToolError

__all__ = ["Completed", "find_program", "run"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Completed:
    """The result of a finished program."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def find_program(name: str, *extra_dirs: str) -> str | None:
    """Return the full path of ``name`` on PATH or in ``extra_dirs``, else None."""
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        found = shutil.which(name, path=d)
        if found:
            return found
    return None


def run(
    args: list[str] | tuple[str, ...],
    *,
    timeout: float | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input_text: str | None = None,
) -> Completed:
    """Run a program and capture its output as text.

    Raises :class:`ExternalToolError` when the program is missing, exceeds
    ``timeout`` seconds, or (with ``check``) exits non-zero.
    """
    argv = tuple(str(a) for a in args)
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=env,
            cwd=cwd,
            input=input_text,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ExternalToolError(f"{argv[0]} was not found", command=argv) from exc
    except PermissionError as exc:
        raise ExternalToolError(f"{argv[0]} is not executable: {exc}", command=argv) from exc
    except subprocess.TimeoutExpired as exc:
        raise ExternalToolError(
            f"{argv[0]} did not finish within {timeout:g} s", command=argv
        ) from exc
    done = Completed(args=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise ExternalToolError(
            f"{' '.join(argv[:3])} exited with status {proc.returncode}"
            + (f":\n{tail}" if tail else ""),
            command=argv,
            returncode=proc.returncode,
            output=tail,
        )
    return done
