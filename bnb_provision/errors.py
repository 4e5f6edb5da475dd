"""The one exception module.

Every error the library raises is a :class:`ProvisionError`. Each subclass has
its own ``exit_code`` so scripts can tell failures apart; ``cli.py`` is the only
place that turns them into ``Error: ...`` and an exit status. Messages say what
is wrong, then what to do next.

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
8     LockfileError            a lockfile or output exists / cannot be written
9     FindingsError            doctor/verify found an error-severity problem
10    FitInputError            a model, GPU or workload given to ``fit`` is invalid
11    LockDriftError           ``lock --check``: the committed locks differ
====  =======================  ============================================
"""

from __future__ import annotations

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
