"""Loading the compat DB: read the ``compat_db/`` documents plan needs, validate, return a
:class:`CompatDB`.

The parsed files are cached as plain JSON in the user's cache (keyed by the code's
identity and every DB file's path, size and mtime); validation runs on every load, so a
cached value passes the same checks as the TOML it came from.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

from bnb_provision.core import cache
from bnb_provision.core.data import data_dir
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.model import CompatDB
from bnb_provision.db.parse import DB_FILES, parse_db
from bnb_provision.errors import CompatDBError

__all__ = ["load_db", "read_db_files"]

_CACHE_KIND = "compat-db"


def read_db_files(root: Path) -> dict[str, dict[str, Any]]:
    """The documents of :data:`DB_FILES` under ``root``, parsed, keyed by their path
    (``derived/torch.toml``); a missing one is left for :func:`parse_db` to name."""
    files: dict[str, dict[str, Any]] = {}
    for rel in DB_FILES:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CompatDBError(f"{rel}: cannot be read ({exc})") from exc
        try:
            files[rel] = toml_loads(text)
        except ValueError as exc:
            raise CompatDBError(f"{rel}: cannot be read as TOML ({exc})") from exc
    return files


def _db_signature(root: Path) -> str:
    """Every DB file's path, size and mtime: a changed DB gets another cache entry."""
    parts = [str(root.resolve())]
    for rel in DB_FILES:
        try:
            st = (root / rel).stat()
        except FileNotFoundError:
            parts.append(f"{rel}\0missing")
            continue
        parts.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\0".join(parts)


def _read_files_cached(folder: Path) -> dict[str, dict[str, Any]]:
    """The DB files as plain data, from the cache when this code and these files made it.

    The cache holds only what TOML parsing gave (JSON); every load validates it again.
    """
    try:
        key = cache.key_for(_CACHE_KIND, _db_signature(folder)) if cache.enabled() else None
    except OSError:
        key = None
    data = cache.read_json(_CACHE_KIND, key) if key else None
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        return data
    files = read_db_files(folder)
    if key:
        with contextlib.suppress(TypeError, ValueError):  # a value JSON cannot hold
            cache.write_json(_CACHE_KIND, key, files, keep=4)
    return files


@functools.cache
def load_db(root: Path | None = None) -> CompatDB:
    """Load and validate the compat DB (the shipped one unless ``root`` is given).

    The parsed files are cached as plain data (``BNB_PROVISION_NO_CACHE=1`` turns that
    off); validation runs on every load, so a cached value passes the same checks.
    """
    folder = root or data_dir("compat_db")
    return parse_db(_read_files_cached(folder))
