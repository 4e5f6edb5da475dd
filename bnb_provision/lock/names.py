"""The names of a lock set's files: the manifest's, and each group's (PEP 751).

Light on purpose: ``init`` maps a lock it is given to its files before anything heavy
is loaded.
"""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.errors import LockfileError

__all__ = ["MANIFEST_FILE", "MANIFEST_SCHEMA", "pylock_file", "requirements_file"]

MANIFEST_FILE: Final = "bnb-provision-locks.toml"
MANIFEST_SCHEMA: Final = "bnb-provision.locks/1"
_PEP751_NAME: Final = re.compile(r"^[^./\\\s]+$")


def pylock_file(group: str) -> str:
    """PEP 751: ``pylock.<name>.toml``, ``<name>`` without dots (uv refuses others)."""
    if not _PEP751_NAME.match(group):
        raise LockfileError(f"{group!r}: not a PEP 751 lock name (no dots, no separators)")
    return f"pylock.{group}.toml"


def requirements_file(group: str) -> str:
    return f"{group}.requirements.txt"
