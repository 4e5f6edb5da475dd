"""What a lock says about itself, and which requirements file a given lock means.

Light on purpose (no resolver, no TOML writer): ``init --lock`` reads the lock's
Python version and pins here and starts uv before anything heavy is loaded.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.errors import LockfileError
from bnb_provision.lock.names import MANIFEST_FILE, MANIFEST_SCHEMA, requirements_file

__all__ = ["MANIFEST_FILE", "MANIFEST_SCHEMA", "LockPins", "read_lock_pins", "requirements_for"]

_PIN: Final = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockPins:
    """What a requirements lock pins: the Python it was resolved for, torch, bitsandbytes."""

    python: str | None  # "3.11", from the header bnb-provision writes; None for other locks
    torch: str | None  # "2.13.0+cpu"
    bitsandbytes: str | None

    @property
    def torch_variant(self) -> str:
        return self.torch.partition("+")[2] if self.torch else ""


def requirements_for(lock: Path) -> Path:
    """The requirements file of a lock given as ``X.requirements.txt`` or ``pylock.X.toml``.

    Where a manifest beside it lists the lock, its files must be the ones the manifest
    recorded (``lock.manifest.check_lock_file``): a lock set left inconsistent is refused
    with a LockfileError, never installed.
    """
    from bnb_provision.lock.manifest import check_lock_file

    if lock.name.endswith(".requirements.txt") or lock.suffix == ".txt":
        check_lock_file(lock)
        return lock
    if lock.name.startswith("pylock.") and lock.suffix == ".toml":
        sibling = lock.with_name(
            requirements_file(lock.name.removeprefix("pylock.").removesuffix(".toml"))
        )
        if sibling.exists():
            check_lock_file(sibling)
            return sibling
    raise LockfileError(
        f"{lock}: expected a <group>.requirements.txt, its pylock.<group>.toml, "
        f"or a folder with {MANIFEST_FILE}"
    )


def read_lock_pins(requirements: Path) -> LockPins:
    """Parse a requirements lock's header and its torch and bitsandbytes pins."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"{requirements}: cannot read it ({exc})") from exc
    python = None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        # the header line lock writes (templates/lock-header.txt.tmpl)
        found = plan_line_python(stripped)
        if found:
            python = found
            continue
        p = _PIN.match(stripped)
        if p:
            name = re.sub(r"[-_.]+", "-", p.group("name")).lower()
            if name in ("torch", "bitsandbytes"):
                pins[name] = p.group("version")
    return LockPins(python=python, torch=pins.get("torch"), bitsandbytes=pins.get("bitsandbytes"))


def plan_line_python(line: str) -> str | None:
    """The Python version (``3.11``) a lock header's ``# Plan: ...`` line names, else None."""
    if not line.startswith("# Plan: "):
        return None
    words = line.replace(",", " ").split()
    found = None
    for word, value in itertools.pairwise(words):
        major, dot, minor = value.partition(".")
        if word == "Python" and dot and major.isdigit() and minor.isdigit():
            found = value
    return found
