"""A fresh folder for each hypothesis example.

Hypothesis runs every example of a test inside one call of it, so a function-scoped
``tmp_path`` is shared by all of them; the fuzz tests take a module-scoped folder and
make a new empty one under it per example.
"""

from __future__ import annotations

import itertools
from pathlib import Path

_counter = itertools.count()


def fresh_folder(root: Path, prefix: str = "case") -> Path:
    """A new empty folder under ``root`` (``<prefix><n>``)."""
    folder = root / f"{prefix}{next(_counter)}"
    folder.mkdir()
    return folder
