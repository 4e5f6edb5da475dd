"""The Hugging Face stack for one torch and one bitsandbytes: the newest transformers and
accelerate (and peft and trl for qlora) that fit Python, the versions already pinned and
the DB's curated floors (``compat_db/huggingface.toml``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.db.model import CompatDB
from bnb_provision.plan.constraints import contains
from bnb_provision.vocab import HF_PACKAGES, HfPackage, Profile

__all__ = ["HfStack"]

PACKAGES: Final[dict[Profile, tuple[HfPackage, ...]]] = {
    "inference": ("transformers", "accelerate"),
    "qlora": HF_PACKAGES,
}
"""What each profile installs, in the order they are chosen."""

Floors = tuple[tuple[str, SpecifierSet], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class HfStack:
    """The stack chooser for one Python and profile; ``reject(what, why)`` records why a
    combination has no stack."""

    db: CompatDB
    python: str  # "3.12"
    profile: Profile
    reject: Callable[[str, str], None]

    def choose(self, torch: Version, bnb: Version) -> tuple[tuple[str, str], ...] | None:
        """Newest transformers/accelerate (+ peft, trl for qlora) that fit, or None."""
        pinned: dict[str, Version] = {"torch": torch, "bitsandbytes": bnb}
        floors = self.floors("bitsandbytes", bnb)
        for n, s in floors:
            if n in pinned and not contains(s, pinned[n]):
                self.reject(f"bitsandbytes {bnb}", f"needs {n}{s}")
                return None
        chosen: list[tuple[str, str]] = []
        for name in PACKAGES[self.profile]:
            pick = self.newest(name, pinned, floors)
            if pick is None:
                self.reject(
                    f"{name} for torch {torch} + bitsandbytes {bnb}",
                    f"no {name} release fits Python {self.python}, this torch "
                    "and the floors in the DB",
                )
                return None
            pinned[name] = pick
            floors = floors + self.floors(name, pick)
            chosen.append((name, str(pick)))
        return tuple(chosen)

    def newest(self, name: str, pinned: dict[str, Version], floors: Floors) -> Version | None:
        """The newest release of ``name`` that fits Python, ``pinned`` and ``floors``."""
        py = self.python + ".0"
        for rel in sorted(self.db.package_releases(name), key=lambda r: r.version, reverse=True):
            if len(rel.requires_python) and not contains(rel.requires_python, py):
                continue
            reqs = list(rel.requires) + list(self.floors(name, rel.version))
            if not all(_fits(n, s, pinned) for n, s in reqs):
                continue
            if not all(contains(s, rel.version) for n, s in floors if n == name):
                continue
            return rel.version
        return None

    def floors(self, package: str, version: Version) -> Floors:
        """What the DB's curated rules say ``package`` at ``version`` needs."""
        out: list[tuple[str, SpecifierSet]] = []
        for c in self.db.hf_constraints:
            if (
                c.package == package
                and self.profile in c.profiles
                and contains(c.versions, version)
            ):
                out += c.requires
        return tuple(out)


def _fits(name: str, spec: SpecifierSet, pinned: dict[str, Version]) -> bool:
    if name not in pinned:
        return True
    return contains(spec, Version(pinned[name].public))
