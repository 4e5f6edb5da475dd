"""What an environment was asked for, kept in its stamp, and rebuild asking the same again.

``init --torch 2.13`` records the pin, ``init --lock locks/`` the lock folder and the file
the manifest picked; a plain ``rebuild`` then rebuilds to the same pin, or from the same
lock (re-picked by the manifest, which may now choose another class), and says when that
lock changed since the environment was built. What the rebuild command line gives itself
replaces what the stamp recorded: a lock replaces the recorded pins or lock, a pin
replaces the recorded pin of that name.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from bnb_provision.env.options import BuildOptions
from bnb_provision.env.stamp import Request
from bnb_provision.errors import LockfileError

if TYPE_CHECKING:
    from bnb_provision.env.stamp import Stamp

__all__ = ["honour_request", "lock_changes", "request_of"]

_PINS = ("torch", "bnb", "cuda", "python")


def request_of(opts: BuildOptions, req: Path | None) -> Request:
    """The request a new environment's stamp records."""
    lock = req if opts.lock is not None else None
    return Request(
        stack=opts.stack,
        constraints=opts.constraints,
        lock=str(opts.lock.absolute()) if opts.lock is not None else None,
        lock_file=str(lock.absolute()) if lock is not None else None,
        torch_system=str(opts.torch_system) if opts.torch_system is not None else None,
        cuda_without_gpu=opts.cuda_without_gpu,
    )


def _asks_itself(opts: BuildOptions) -> bool:
    """Whether the rebuild command line names a lock, a pin or a system torch itself."""
    pinned = any(getattr(opts.constraints, name) is not None for name in _PINS)
    return opts.lock is not None or opts.torch_system is not None or pinned


def honour_request(opts: BuildOptions, stamp: Stamp | None) -> tuple[BuildOptions, list[str]]:
    """``opts`` with the stamp's request where the command line left a choice open, and
    what was taken from it. Raises LockfileError when the recorded lock is gone."""
    r = stamp.request if stamp is not None else None
    if r is None:
        return opts, []
    changes: dict[str, object] = {}
    if "stack" in opts.defaults:
        changes["stack"] = r.stack
    constraints = opts.constraints
    if "profile" in opts.defaults:
        constraints = dataclasses.replace(constraints, profile=r.constraints.profile)
    if not _asks_itself(opts):
        if r.lock is not None:
            if not _exists(Path(r.lock)):
                raise LockfileError(
                    f"{r.lock}: the lock this environment was built from is gone; give "
                    "rebuild the lock to use with --lock PATH (or pins such as --torch)"
                )
            changes["lock"] = Path(r.lock)
        else:
            pins = {name: getattr(r.constraints, name) for name in _PINS}
            constraints = dataclasses.replace(constraints, **pins)
            if r.torch_system is not None:
                changes["torch_system"] = Path(r.torch_system)
        changes["cuda_without_gpu"] = r.cuda_without_gpu or opts.cuda_without_gpu
    elif opts.lock is None and r.lock is None:
        kept = {n: getattr(r.constraints, n) for n in _PINS if getattr(opts.constraints, n) is None}
        constraints = dataclasses.replace(constraints, **kept)
    changes["constraints"] = constraints
    new = dataclasses.replace(opts, **changes)  # type: ignore[arg-type]
    taken = Request(
        stack=new.stack,
        constraints=new.constraints,
        lock=str(new.lock) if new.lock is not None else None,
        torch_system=str(new.torch_system) if new.torch_system is not None else None,
    ).describe()
    return new, [f"as init was asked: {taken}"] if new != opts else []


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the file system refuses (too long) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_changes(stamp: Stamp | None, req: Path | None) -> list[str]:
    """Why the lock now differs from the one the environment was built from: the manifest
    picks another file, or the file's content changed. Empty when it is the same."""
    r = stamp.request if stamp is not None else None
    if r is None or r.lock_file is None or req is None:
        return []
    if Path(r.lock_file) != req.absolute():
        old = Path(r.lock_file).name
        return [f"the lock picked is now {req.name} (the environment was built from {old})"]
    if stamp is not None and stamp.lock_sha256 and req.is_file():
        now = _sha256(req)
        if now != stamp.lock_sha256:
            shas = f"sha256 {stamp.lock_sha256[:12]}... -> {now[:12]}..."
            return [f"the lock changed since this environment was built: {req.name} ({shas})"]
    return []
