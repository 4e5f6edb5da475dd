"""``lock --check``: are the committed locks still what the DB and the snapshots give?

The same command line is planned and resolved again (uv keeps the committed versions, as a
re-lock does), the fresh set is written into a scratch folder, and every file is compared
with the committed one: a file that differs (with a unified diff), one the fresh set has
and the folder lacks, and a lock file in the folder the fresh set no longer has. The
committed folder is never written. ``uv lock --check`` and ``pip-compile`` in CI do the
same for a single project.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from bnb_provision.core.files import write_all
from bnb_provision.lock.names import MANIFEST_FILE
from bnb_provision.lock.spec import LockOptions, Log

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.lock.lockset import LockRequest

__all__ = ["CHECK_SCHEMA", "CheckReport", "FileDiff", "check_lock_set", "compare_folders"]

CHECK_SCHEMA: Final = "bnb-provision.lock-check/1"
MAX_DIFF_LINES: Final = 80
# what a lock run writes: a file of this shape the fresh set lacks is stale
_LOCK_OUTPUT: Final = re.compile(
    rf"^(pylock\.[^.]+\.toml|[^.]+\.requirements\.txt|Dockerfile\.[^.]+|uv-project\.[^.]+\.toml"
    rf"|{re.escape(MANIFEST_FILE)})$"
)
Status = Literal["changed", "missing", "stale"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FileDiff:
    """One file where the committed set and the fresh one differ."""

    name: str
    status: Status  # changed; missing (the fresh set has it); stale (only committed)
    diff: str = ""  # a unified diff, for a changed file

    def to_dict(self) -> dict[str, str]:
        return {"file": self.name, "status": self.status, "diff": self.diff}


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckReport:
    """The committed folder against a fresh lock run of the same command."""

    folder: Path
    files: tuple[str, ...]  # the fresh set's file names
    differences: tuple[FileDiff, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        """The ``bnb-provision.lock-check/1`` JSON document."""
        return {
            "schema": CHECK_SCHEMA,
            "folder": str(self.folder),
            "ok": self.ok,
            "files": list(self.files),
            "differences": [d.to_dict() for d in self.differences],
        }


def _diff(name: str, old: str, new: str) -> str:
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"committed/{name}",
            f"fresh/{name}",
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        more = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"... ({more} more lines)\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def compare_folders(committed: Path, fresh: Path) -> tuple[FileDiff, ...]:
    """Every difference between the lock files of ``committed`` and ``fresh`` (the fresh
    set's files, and the lock-shaped files only ``committed`` has), in name order."""
    new_names = sorted(p.name for p in fresh.iterdir() if p.is_file())
    out = []
    for name in new_names:
        new = (fresh / name).read_text(encoding="utf-8")
        old = None if (committed / name).is_symlink() else _text(committed / name)
        if old is None:
            out.append(FileDiff(name=name, status="missing"))
        elif old != new:
            out.append(FileDiff(name=name, status="changed", diff=_diff(name, old, new)))
    if committed.is_dir():
        out += [
            FileDiff(name=p.name, status="stale")
            for p in sorted(committed.iterdir())
            if _LOCK_OUTPUT.match(p.name) and p.name not in new_names
        ]
    return tuple(sorted(out, key=lambda d: d.name))


def check_lock_set(
    request: LockRequest,
    opts: LockOptions,
    log: Log = lambda _m: None,
    db: CompatDB | None = None,
) -> CheckReport:
    """Plan and resolve ``request`` again, write the fresh set into a scratch folder and
    compare it with ``opts.output``. uv reads the committed pylocks as its preferences
    (never ``--upgrade``), so only a changed DB, snapshot or flag changes a version."""
    from bnb_provision.db.load import load_db
    from bnb_provision.lock.group import plan_specs
    from bnb_provision.lock.lockset import render_set
    from bnb_provision.plan.inputs import load_machines

    db = db or load_db()
    opts = dataclasses.replace(opts, upgrade=False)
    machines = load_machines(request.machine_files, request.flags, db)
    specs, unplanned = plan_specs(machines, db, request.constraints, opts)
    log(f"{len(machines)} machine(s) -> {len(specs)} lock group(s), resolved again")
    _, _, files = render_set(specs, unplanned, opts)
    with tempfile.TemporaryDirectory(prefix="bnb-provision-check-") as tmp:
        scratch = Path(tmp)
        write_all({scratch / path.name: text for path, text in files.items()})
        differences = compare_folders(opts.output, scratch)
    return CheckReport(
        folder=opts.output,
        files=tuple(sorted(p.name for p in files)),
        differences=differences,
    )
