"""The one exception module.

Every error the library raises is a :class:`ProvisionError`. Each subclass has
its own ``exit_code`` so scripts can tell failures apart; ``cli/app.py`` is the only
place that turns them into ``Error: ...`` and an exit status (and, under ``--json``, a
``bnb-provision.error/1`` object), an ``OSError`` that escapes the library included (as
:meth:`LockfileError.cannot_write`). Messages say what is wrong, then what to do next.

Exit codes (also in README.md):

====  =======================  ============================================
code  class                    meaning
====  =======================  ============================================
0                              success
1     ProvisionError           unexpected failure inside bnb-provision
2                              command-line usage error (click's own)
3     TargetEnvError           ``--python``/``--env`` is not a usable interpreter
4     SnapshotError            a ``--machine`` snapshot file is unreadable/invalid
5     CompatDBError            the compatibility database failed validation
6     NoPlanError              no combination runs on the machine (with reasons)
7     ExternalToolError        uv / nvidia-smi / a target interpreter failed
8     LockfileError            an output exists / cannot be written (disk, rights)
9     FindingsError            doctor/verify found an error-severity problem
10    FitInputError            a model, GPU or workload given to ``fit`` is invalid
11    LockDriftError           ``lock --check``: the committed locks differ
====  =======================  ============================================
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "CompatDBError",
    "ExternalToolError",
    "FindingsError",
    "FitInputError",
    "LockDriftError",
    "LockfileError",
    "NoPlanError",
    "ProvisionError",
    "SnapshotError",
    "TargetEnvError",
]


class ProvisionError(Exception):
    """Base class for every error bnb-provision reports to the user."""

    exit_code: int = 1


class TargetEnvError(ProvisionError):
    """A target environment (``--python`` / ``--env``) cannot be inspected."""

    exit_code = 3


class SnapshotError(ProvisionError):
    """A machine snapshot (``--machine FILE``) is unreadable or invalid."""

    exit_code = 4


class CompatDBError(ProvisionError):
    """The compatibility database has a bad field; the message gives its path."""

    exit_code = 5


class NoPlanError(ProvisionError):
    """No known combination runs on the machine under the given constraints."""

    exit_code = 6


class ExternalToolError(ProvisionError):
    """An external program (uv, nvidia-smi, a target Python) failed."""

    exit_code = 7

    def __init__(
        self,
        message: str,
        *,
        command: tuple[str, ...] = (),
        returncode: int | None = None,
        output: str = "",
    ) -> None:
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.output = output

    @classmethod
    def exited(
        cls, argv: tuple[str, ...] | list[str], returncode: int, output: str
    ) -> ExternalToolError:
        """A program that exited non-zero, with the tail of its output (if captured)."""
        argv = tuple(argv)
        tail = output.strip()[-2000:]
        return cls(
            f"{' '.join(argv[:3])} exited with status {returncode}"
            + (f":\n{tail}" if tail else " (its own output is above)"),
            command=argv,
            returncode=returncode,
            output=tail,
        )


class LockfileError(ProvisionError):
    """An output file exists (without ``--force``) or cannot be written."""

    exit_code = 8

    @classmethod
    def cannot_write(
        cls, exc: OSError, path: str | os.PathLike[str] | None = None
    ) -> LockfileError:
        """A write the operating system refused (a full disk, a read-only folder, a missing
        permission): the path, the reason, and what to do about it."""
        target = path if path is not None else exc.filename
        reason = exc.strerror or str(exc)
        name = errno.errorcode.get(exc.errno or 0, "")
        advice = _WRITE_ADVICE.get(name, "check the path, then run again")
        where = f" {os.fsdecode(target)}" if target is not None else ""
        return cls(f"cannot write{where}: {reason}; {advice}")


class FindingsError(ProvisionError):
    """A check found at least one error-severity problem."""

    exit_code = 9


class FitInputError(ProvisionError):
    """A model, GPU or workload given to ``fit`` cannot be read or makes no sense."""

    exit_code = 10


class LockDriftError(ProvisionError):
    """``lock --check``: the committed locks or manifest differ from what the DB and the
    snapshots give now (the diff is printed before)."""

    exit_code = 11


_WRITE_ADVICE = {
    "ENOSPC": "the disk is full: free some space there (df -h shows how much is left), "
    "or write somewhere else",
    "EDQUOT": "the disk quota is used up: free some space, or write somewhere else",
    "EFBIG": "the file is too large for that file system: write somewhere else",
    "EROFS": "the file system is read-only: write somewhere else (--output, --env)",
    "EACCES": "permission denied: write to a folder you own (--output, --env), or "
    "change the folder's permissions",
    "EPERM": "not permitted: write to a folder you own (--output, --env), or change "
    "the folder's permissions",
    "ENAMETOOLONG": "the name is too long for the file system: choose a shorter path",
    "ENOENT": "a folder on the way does not exist: create it, or choose another path",
    "ENOTDIR": "a part of the path is a file, not a folder: choose another path",
    "EISDIR": "a folder is in the way: choose another path",
}
"""What to do about each refused write, by its ``errno`` name (the same on every OS)."""
