"""The user's cache folder: the validated DB and planned lock groups, keyed by content.

Everything here is derived data that is recomputed when missing or unreadable:
``BNB_PROVISION_NO_CACHE=1`` (or the older ``BNB_PROVISION_NO_DB_CACHE=1``) turns it off.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bnb_provision import __version__, _early

__all__ = ["cache_dir", "db_signature", "enabled", "read_json", "write_json"]


def enabled() -> bool:
    return _early.caching()


def cache_dir() -> Path:
    return Path(_early.cache_folder())


def db_signature(root: Path) -> str:
    """The tool's version and every DB file's path, size and mtime: a changed DB, or
    another install of bnb-provision, gets other cache entries."""
    h = hashlib.sha256(f"{__version__}\0{root.resolve()}".encode())
    for path in sorted(root.rglob("*.toml")):
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:24]


def read_json(kind: str, key: str) -> Any:
    """The cached value, or None when caching is off or the entry is missing or unreadable."""
    if not enabled():
        return None
    data = _early.read_private(str(cache_dir() / kind / f"{key}.json"))
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def write_json(kind: str, key: str, value: object, *, keep: int = 64) -> None:
    """Store ``value`` atomically; keeps the newest ``keep`` entries of ``kind``.

    A cache that cannot be written is no error: the value is recomputed next time.
    """
    if not enabled():
        return
    folder = cache_dir() / kind
    try:
        _early.write_private(str(folder / f"{key}.json"), json.dumps(value).encode())
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[keep:]:
            stale.unlink(missing_ok=True)
    except OSError:
        return
