"""The store: where init and rebuild keep environments, and how one is swapped in.

Layout: the usual path (``.venv-bnb``) is a symbolic link to a real environment in
``.venv-bnb.d/<timestamp>``. A build happens in ``<timestamp>.partial``, owned by the
process named in ``<timestamp>.partial.pid``; only a finished build loses the suffix,
and the link is replaced with ``os.replace`` (atomic), so a kill at any moment leaves a
working environment at the usual path. A build that fails verify is renamed
``<timestamp>.failed`` and kept for inspection.

What killed builds leave (``.partial`` folders, their pid files, a half-made link) is
removed by the next build; old environments beyond ``--keep`` are removed after a
successful rebuild, failed ones beyond ``--keep`` after every build that fails verify.
Names the store did not make are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

__all__ = [
    "Slot",
    "mark_failed",
    "new_build",
    "point",
    "prune",
    "prune_failed",
    "remove_abandoned",
    "store_of",
]

PARTIAL: Final = ".partial"
FAILED: Final = ".failed"
OWNER: Final = ".pid"
_STAMP = r"\d{8}T\d{12}Z"  # a build's UTC start to the microsecond: sortable
_FINISHED: Final = re.compile(_STAMP)
_FAILED: Final = re.compile(_STAMP + re.escape(FAILED))
_PARTIAL: Final = re.compile(_STAMP + re.escape(PARTIAL))
_LINK: Final = re.compile(r"\.(?P<env>.+)\.link-(?P<pid>\d+)")


def store_of(env: Path) -> Path:
    """Where the environments behind the usual path ``env`` live: ``<env>.d``."""
    return env.parent / f"{env.name}.d"


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    """One build's place in the store."""

    partial: Path  # where it is built
    real: Path  # its name once finished
    owner: Path  # the pid file that says which process builds it

    def moved(self, path: Path) -> Path:
        """``path`` inside the partial folder, as it is named once the build finished."""
        return (
            self.real / path.relative_to(self.partial)
            if path.is_relative_to(self.partial)
            else path
        )


@contextlib.contextmanager
def new_build(env: Path) -> Iterator[Slot]:
    """Reserve ``<env>.d/<timestamp>.partial`` for this process and build in it.

    What killed builds left is removed first. When the block finishes, the folder gets
    its final name; when it raises, the folder is removed (and the store, when this
    build made it and nothing else is in it).
    """
    store = store_of(env)
    made = not store.is_dir()
    store.mkdir(parents=True, exist_ok=True)
    remove_abandoned(store)
    try:
        slot = _reserve(store)
    except OSError:
        if made:
            with contextlib.suppress(OSError):
                store.rmdir()
        raise
    try:
        yield slot
        slot.partial.rename(slot.real)  # a finished environment never has .partial in its name
    except BaseException:
        shutil.rmtree(slot.partial, ignore_errors=True)
        slot.owner.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):  # empty unless something else is in it
                store.rmdir()
        raise
    finally:
        slot.owner.unlink(missing_ok=True)


def _reserve(store: Path) -> Slot:
    """A new build name, claimed by creating its pid file (exclusively)."""
    while True:
        name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        partial = store / f"{name}{PARTIAL}"
        owner = partial.with_name(partial.name + OWNER)
        try:
            with owner.open("x", encoding="utf-8") as fh:
                _write_owner(fh, owner)
        except FileExistsError:  # another build started in the same microsecond
            continue
        return Slot(partial=partial, real=store / name, owner=owner)


def _write_owner(fh: TextIO, owner: Path) -> None:
    """Write this process's line; a file that cannot be written (a full disk) is removed."""
    try:
        fh.write(_owner_line(os.getpid()))
        fh.flush()
    except OSError:
        owner.unlink(missing_ok=True)
        raise


def _owner_line(pid: int) -> str:
    """``<pid> <start time> <host>``: a pid alone is not enough where pids are reused
    (each container starts from 1) or the store is shared between hosts."""
    return f"{pid} {_started(pid) or '-'} {platform.node()}\n"


def _started(pid: int) -> str | None:
    """When a process started, in clock ticks since boot (Linux); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None  # noqa: PLR2004 - field 22 of proc(5)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is not ours to signal
        return True
    return True


def _abandoned(owner: Path) -> bool:
    """Whether the build named by a pid file is gone. Unreadable files and builds on
    another host are left alone: this host cannot tell."""
    try:
        pid_text, started, host = [*owner.read_text(encoding="utf-8").split(), "-", ""][:3]
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    if pid <= 0 or (host and host != platform.node()):
        return False  # no build's pid (0 and -1 name process groups), or another host's
    try:
        if not _alive(pid):
            return True
    except OverflowError:  # larger than any pid: not written by a build
        return False
    now = _started(pid)
    return started != "-" and now is not None and now != started  # the pid was reused


def remove_abandoned(store: Path) -> None:
    """Remove what builds killed mid-way left: ``.partial`` folders whose builder is gone
    (or that have no pid file at all: every build writes it before its folder), their pid
    files, and half-made links beside the usual path. A build still running is left alone.
    """
    for owner in store.glob(f"*{PARTIAL}{OWNER}"):
        if _abandoned(owner):
            shutil.rmtree(owner.with_name(owner.name.removesuffix(OWNER)), ignore_errors=True)
            owner.unlink(missing_ok=True)
    for partial in store.iterdir():
        owner = partial.with_name(partial.name + OWNER)
        if _PARTIAL.fullmatch(partial.name) and not owner.exists() and not partial.is_symlink():
            shutil.rmtree(partial, ignore_errors=True)
    env_name = store.name.removesuffix(".d")
    for link in store.parent.glob(f".{env_name}.link-*"):
        m = _LINK.fullmatch(link.name)
        if m and m["env"] == env_name and link.is_symlink() and not _alive(int(m["pid"])):
            link.unlink(missing_ok=True)


def point(env: Path, real: Path) -> None:
    """Make ``env`` a link to ``real`` in one atomic step."""
    tmp = env.parent / f".{env.name}.link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    target = os.path.relpath(real, env.parent)
    tmp.symlink_to(target, target_is_directory=True)
    tmp.replace(env)


def _builds(store: Path, pattern: re.Pattern[str]) -> list[Path]:
    """The store's folders whose names match, oldest first."""
    return sorted(
        p
        for p in store.iterdir()
        if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    )


def prune(env: Path, keep: int, current: Path) -> tuple[Path, ...]:
    """Keep the ``keep`` newest finished environments besides ``current`` as backups,
    and at most ``keep`` failed ones; remove the rest and what killed builds left.
    Returns the backups kept."""
    store = store_of(env)
    old = [p for p in _builds(store, _FINISHED) if p.resolve() != current.resolve()]
    backups = old[-keep:] if keep > 0 else []
    for p in old:
        if p not in backups:
            shutil.rmtree(p, ignore_errors=True)
    prune_failed(store, keep)
    remove_abandoned(store)
    return tuple(backups)


def mark_failed(real: Path) -> Path:
    """Rename an environment that failed verify, so it is never taken for a backup."""
    failed = real.with_name(real.name + FAILED)
    real.rename(failed)
    return failed


def prune_failed(store: Path, keep: int) -> None:
    """Remove failed environments beyond the ``keep`` newest."""
    failed = _builds(store, _FAILED)
    for p in failed[: max(len(failed) - keep, 0)]:
        shutil.rmtree(p, ignore_errors=True)
