"""A pylock.toml as a pip-installable requirements.txt with the same versions and hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bnb_provision.errors import LockfileError

__all__ = ["pylock_to_requirements"]


def _hashes(pkg: dict[str, Any]) -> list[str]:
    """Every sha256 of a locked package's files (wheels, then its sdist)."""
    hashes = sorted(
        {w["hashes"]["sha256"] for w in pkg.get("wheels", []) if "sha256" in w.get("hashes", {})}
    )
    sdist = pkg.get("sdist")
    if sdist and "sha256" in sdist.get("hashes", {}):
        hashes.append(sdist["hashes"]["sha256"])
    if not hashes:
        raise LockfileError(f"{pkg['name']}: the lock holds no sha256 hash for it")
    return hashes


def pylock_to_requirements(pylock: dict[str, Any], header: str, index_lines: Sequence[str]) -> str:
    """A pip-installable requirements.txt with the lock's exact versions and hashes."""
    lines = [header.rstrip(), *index_lines, ""]
    for pkg in sorted(pylock.get("packages", []), key=lambda p: p["name"]):
        parts = [f"{pkg['name']}=={pkg['version']}"]
        parts += [f"--hash=sha256:{h}" for h in _hashes(pkg)]
        lines.append(" \\\n    ".join(parts))
    return "\n".join(lines) + "\n"
