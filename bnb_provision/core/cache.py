"""The user's cache folder: derived data, keyed so that a stale entry is never read.

Every key holds the cache format number, the tool's version and the identity of the
installed code (each module's path, size and mtime), plus whatever the caller derives
the value from. Values are plain JSON: nothing read back from disk becomes a class
without passing the same validation as the data it was derived from.

Files are written 0600 and read only when this user owns them and nobody else may
write them, as ssh treats its keys. ``BNB_PROVISION_NO_CACHE=1`` turns the cache off.
A cache that cannot be read or written is no error: the value is recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.core.files import write_atomic

__all__ = [
    "FORMAT",
    "cache_dir",
    "code_identity",
    "enabled",
    "key_for",
    "read_json",
    "read_private",
    "write_json",
    "write_private",
]

FORMAT: Final = 2  # bump when the layout of any cached value changes
MAX_ENTRY_BYTES: Final = 64 * 1024 * 1024  # a cache file larger than this is not read
_PACKAGE: Final = Path(__file__).resolve().parent.parent


def enabled() -> bool:
    """False when ``BNB_PROVISION_NO_CACHE`` (or the older ``..._NO_DB_CACHE``) is set."""
    return not (
        os.environ.get("BNB_PROVISION_NO_CACHE") or os.environ.get("BNB_PROVISION_NO_DB_CACHE")
    )


def cache_dir() -> Path:
    """bnb-provision's cache folder (``$XDG_CACHE_HOME/bnb-provision``)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "bnb-provision"


@functools.cache
def code_identity() -> str:
    """A digest of every module of the installed package (path, size, mtime): an edited
    module, as in an editable install while someone works, gives other cache keys."""
    h = hashlib.sha256(f"{FORMAT}\0{__version__}\0{_PACKAGE}".encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(_PACKAGE)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:24]


def key_for(*parts: str) -> str:
    """A cache key: the format, the tool's version, the code's identity and ``parts``."""
    h = hashlib.sha256(code_identity().encode())
    for part in parts:
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def read_private(path: Path) -> bytes | None:
    """A cache file's bytes, if this user owns it and nobody else may write it, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
            return None
        if st.st_size > MAX_ENTRY_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_ENTRY_BYTES + 1)[:MAX_ENTRY_BYTES]
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write a cache file atomically, readable and writable by this user only.

    Raises OSError; a cache that cannot be written is for the caller to shrug off.
    """
    write_atomic(path, data, mode=0o600)


def read_json(kind: str, key: str) -> Any:
    """The cached value, or None when caching is off or the entry is missing or unreadable."""
    if not enabled():
        return None
    data = read_private(cache_dir() / kind / f"{key}.json")
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def write_json(kind: str, key: str, value: object, *, keep: int = 16) -> None:
    """Store ``value`` atomically; keeps the newest ``keep`` entries of ``kind``."""
    if not enabled():
        return
    folder = cache_dir() / kind
    try:
        write_private(folder / f"{key}.json", json.dumps(value).encode())
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[keep:]:
            stale.unlink(missing_ok=True)
    except OSError:
        return
