"""The one atomic writer: a file is either its old self or its complete new self.

Every file bnb-provision writes goes through here. Each new file is written to a
temporary file in its own folder, flushed and fsynced, then moved over the old one with
``os.replace``; an interruption leaves the old file (or no file) and a stray temporary
file at worst, never half a file. :func:`write_all` does the same for a set of files:
every file is staged before the first one is swapped, and a failure while swapping puts
back the ones already swapped, so a set is replaced all together or not at all.

With ``backup=True`` the file being replaced is kept as ``NAME.YYYYmmddTHHMMSSZ.bak``
beside it (a hard link made before the swap, so the path never goes missing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_output", "backup_name", "write_all", "write_atomic"]

Data = str | bytes


def _umask() -> int:
    """The process umask without changing it (``os.umask`` both reads and sets it, which
    is not safe while other threads create files): from /proc where Linux offers it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(old)  # pragma: no cover
    return old  # pragma: no cover


def _mode_for(path: Path, mode: int | None) -> int:
    """``mode`` when given; else an existing file keeps its own, a new one gets the usual
    0666 less the umask."""
    if mode is not None:
        return mode
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0o666 & ~_umask()
    return 0o666 & ~_umask() if stat.S_ISLNK(st.st_mode) else stat.S_IMODE(st.st_mode)


def backup_name(path: Path, now: dt.datetime | None = None) -> Path:
    """A free ``NAME.<UTC time>.bak`` beside ``path`` (``.N.bak`` when that second is taken)."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.name}.{stamp}.{n}.bak")
        n += 1
    return candidate


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; nothing to do elsewhere)."""
    if os.name != "posix":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _keep_copy(path: Path, target: Path) -> None:
    """``target`` becomes a second name of ``path`` itself, a link not followed (a copy
    where hard links fail)."""
    try:
        os.link(path, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(path, target, follow_symlinks=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Staged:
    path: Path
    tmp: Path
    backup: bool


@contextlib.contextmanager
def _staged_file(path: Path, mode: int | None) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file beside ``path`` with ``path``'s future mode, fsynced when the block
    ends; removed if the block raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    final_mode = _mode_for(path, mode)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, path) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(final_mode)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, path, tmp) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path, tmp: Path | None = None) -> OSError:
    """``exc`` naming the file the user asked for, not the hidden name it was staged under
    (a failed write or fsync names no file at all). Other names (a folder) are kept."""
    if tmp is None or exc.filename is None or os.fspath(exc.filename) == str(tmp):
        exc.filename = str(path)  # tmp None: mkstemp failed, naming its own random name
    return exc


def _stage(path: Path, data: Data, mode: int | None) -> Path:
    """Write ``data`` to a fsynced temporary file beside ``path``; returns its path."""
    with _staged_file(path, mode) as (fh, tmp):
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return tmp


def _swap(staged: list[_Staged]) -> dict[Path, Path | None]:
    """Move every staged file over its target; on a failure, put back the old files."""
    saved: list[tuple[Path, Path | None]] = []  # (target, its old contents' second name)
    backups: dict[Path, Path | None] = {}
    try:
        for s in staged:
            old = None
            if s.path.is_symlink() or s.path.is_file():
                old = backup_name(s.path) if s.backup else _hidden(s.path)
                _keep_copy(s.path, old)
            saved.append((s.path, old))
            s.tmp.replace(s.path)
            backups[s.path] = old if s.backup else None
    except BaseException:
        for target, old in reversed(saved):
            with contextlib.suppress(OSError):
                if old is not None:
                    old.replace(target)  # does nothing when both name one file (rename(2))
                    old.unlink(missing_ok=True)
                else:
                    target.unlink(missing_ok=True)
        raise
    finally:
        for s in staged:
            s.tmp.unlink(missing_ok=True)
    for (_, old), s in zip(saved, staged, strict=True):
        if old is not None and not s.backup:
            old.unlink(missing_ok=True)
    for folder in {s.path.parent for s in staged}:
        _fsync_dir(folder)
    return backups


def _hidden(path: Path) -> Path:
    """A free name beside ``path`` for its old contents while a set is swapped."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")


def write_all(
    files: Mapping[Path, Data], *, backup: bool = False, mode: int | None = None
) -> dict[Path, Path | None]:
    """Write every file of ``files`` ({path: str (UTF-8) or bytes}), all or none.

    Every file is staged (written and fsynced beside its target) before the first is
    swapped in; a failure at any point removes what was staged and puts back the files
    already swapped. Returns {path: its dated backup, or None}. Raises the OSError.
    """
    staged: list[_Staged] = []
    try:
        for path, data in files.items():
            staged.append(_Staged(path=path, tmp=_stage(path, data, mode), backup=backup))
    except BaseException:
        for s in staged:
            s.tmp.unlink(missing_ok=True)
        raise
    return _swap(staged)


def write_atomic(
    path: Path, data: Data, *, backup: bool = False, mode: int | None = None
) -> Path | None:
    """Replace ``path`` with ``data`` (str as UTF-8, or bytes) in one step.

    ``mode``: the new file's permissions; by default a replaced file keeps its own and a
    new one gets 0666 less the umask. With ``backup``, the replaced file is kept as a
    dated ``.bak`` and its path returned (None when there was no file). Raises OSError.
    """
    return write_all({path: data}, backup=backup, mode=mode)[path]


@contextlib.contextmanager
def atomic_output(
    path: Path, *, backup: bool = False, mode: int | None = None
) -> Iterator[BinaryIO]:
    """A binary file to stream into; it replaces ``path`` when the block ends without an
    error, and vanishes if the block raises (check a download's hash inside the block)."""
    with _staged_file(path, mode) as (fh, tmp):
        yield fh
    _swap([_Staged(path=path, tmp=tmp, backup=backup)])
