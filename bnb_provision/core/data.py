"""Where the shipped data lives: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir"]

_HERE = Path(__file__).resolve().parent.parent  # the package folder


def data_dir(name: str) -> Path:
    """The folder ``compat_db`` or ``templates``.

    In an installed wheel they sit inside the package (hatchling's
    force-include); in a source checkout or an editable install, at the top
    level beside it.
    """
    inside = _HERE / name
    if inside.is_dir():
        return inside
    beside = _HERE.parent / name
    if beside.is_dir():
        return beside
    raise FileNotFoundError(
        f"bnb-provision's {name}/ folder is missing (looked in {inside} and "
        f"{beside}); reinstall bnb-provision"
    )
