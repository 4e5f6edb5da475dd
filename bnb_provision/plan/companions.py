"""torchvision and torchaudio for a chosen torch (``--with torchvision,torchaudio``).

A companion release is built for the torch its own wheel METADATA requires
(``Requires-Dist: torch==2.12.1``, or ``torch>=2.14.0`` for the releases built on torch's
stable ABI), as ``compat_db/derived/{torchvision,torchaudio}.toml`` records it. The plan
pins the newest release whose requirement holds the chosen torch, so that installing the
companion later cannot replace torch; a release whose metadata names no torch is never
picked (nothing says which torch it was built for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bnb_provision.db.builds import CompanionRelease
from bnb_provision.plan.constraints import contains
from bnb_provision.plan.model import TorchChoice

if TYPE_CHECKING:
    from bnb_provision.plan.state import SearchState as Search

__all__ = ["built_for", "choose_companions"]


def built_for(s: Search, package: str, torch: TorchChoice) -> CompanionRelease | None:
    """The newest ``package`` release built for ``torch`` that installs on the target."""
    t = s.target
    py = t.python + ".0"
    for rel in sorted(s.db.companion_releases(package), key=lambda r: r.version, reverse=True):
        if rel.torch is None or not contains(rel.torch, torch.version.public):
            continue
        if len(rel.requires_python) and not contains(rel.requires_python, py):
            continue
        if t.os == "macos" and t.os_version is not None:
            floor = rel.macos_floor(t.python)
            if floor is None or t.os_version < floor:
                continue
        return rel
    return None


def choose_companions(s: Search, torch: TorchChoice) -> tuple[tuple[str, str], ...] | None:
    """(name, version) of each companion asked for, built for ``torch``; None (rejected)
    when one has no such release."""
    out = []
    for package in s.cons.companions:
        rel = built_for(s, package, torch)
        if rel is None:
            s.reject(f"torch {torch.version}", _none_built_for(s, package))
            return None
        out.append((package, str(rel.version)))
    return tuple(out)


def _none_built_for(s: Search, package: str) -> str:
    releases = sorted(s.db.companion_releases(package), key=lambda r: r.version)
    newest = next((r for r in reversed(releases) if r.torch is not None), None)
    why = f"no {package} release is built for it here (--with {package})"
    if newest is not None:
        why += f"; the newest, {package} {newest.version}, requires torch{newest.torch}"
    return why
