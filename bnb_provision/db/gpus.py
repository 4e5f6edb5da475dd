"""GPU names as users write them: the catalogue (``gpus.toml``) looked up by name.

A name is compared in a normal form: lower case, without spaces, hyphens, underscores,
dots and parentheses, and without the words vendors and drivers add around a model
(``NVIDIA``, ``GeForce``, ``Tesla``, ``AMD``, ``Radeon``, ``Intel``, ``Apple``, ``GPU``,
``Graphics``). So ``4090``, ``rtx4090``, ``RTX-4090`` and ``NVIDIA GeForce RTX 4090``
all find the row whose alias is ``RTX 4090``. A name that also states a memory size
(``A100 80GB``, ``NVIDIA H100 80GB HBM3``) is tried again without it, and the size picks
the row's memory. Nothing found: :meth:`GpuCatalog.suggest` names the nearest models.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from bnb_provision.db.rows import GpuVendor

__all__ = [
    "GpuCatalog",
    "GpuEntry",
    "GpuMatch",
    "normalize_gpu_name",
]

_MARKS: Final = re.compile(r"\((?:r|tm)\)|[®™]")
_WORDS: Final = re.compile(r"\b(?:nvidia|geforce|tesla|amd|radeon|intel|apple|gpu|graphics)\b")
_SEPARATORS: Final = re.compile(r"[\s_\-.()]+")
_MEMORY: Final = re.compile(r"(\d{1,4})\s*gi?b\b(?:\s*(?:hbm\d*e?|gddr\d+x?))?", re.IGNORECASE)
_MIB_PER_GIB: Final = 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuEntry:
    """A GPU model of the catalogue: its names, what the planner needs, its memory sizes.

    Exactly one of ``cc`` (NVIDIA), ``gfx`` (AMD) and ``arch`` (Intel's Xe architecture,
    Apple's Metal GPU family) is set. ``memory_mib`` is empty when not recorded.
    """

    vendor: GpuVendor
    name: str
    aliases: tuple[str, ...]
    cc: tuple[int, int] | None
    gfx: str | None
    arch: str | None
    memory_mib: tuple[int, ...]
    source: str
    checked: str

    @property
    def target(self) -> str:
        """``8.9``, ``gfx1100``, ``Xe-HPG`` or ``Apple9``: what the planner matches on."""
        if self.cc is not None:
            return f"{self.cc[0]}.{self.cc[1]}"
        return self.gfx or self.arch or ""


def normalize_gpu_name(name: str) -> str:
    """``NVIDIA GeForce RTX 4090`` -> ``rtx4090``: the form names are compared in."""
    text = _WORDS.sub(" ", _MARKS.sub("", name.lower()))
    return _SEPARATORS.sub("", text)


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuMatch:
    """A catalogue row a name found, and the memory the name picks (None: not said, or
    the row has more than one size and the name does not choose)."""

    entry: GpuEntry
    memory_mib: int | None


class GpuCatalog:
    """The catalogue's rows indexed by every normalized name and alias."""

    def __init__(self, entries: Iterable[GpuEntry]) -> None:
        self.entries = tuple(entries)
        self.index: dict[str, GpuEntry] = {}
        for entry in self.entries:
            for name in (entry.name, *entry.aliases):
                self.index.setdefault(normalize_gpu_name(name), entry)

    def collisions(self) -> list[tuple[str, GpuEntry, GpuEntry]]:
        """Names that two rows both claim (``(name, first, second)``); the loader refuses them."""
        seen: dict[str, GpuEntry] = {}
        out = []
        for entry in self.entries:
            for name in dict.fromkeys(normalize_gpu_name(n) for n in (entry.name, *entry.aliases)):
                first = seen.setdefault(name, entry)
                if first is not entry:
                    out.append((name, first, entry))
        return out

    def find(self, name: str) -> GpuMatch | None:
        """The row ``name`` names, or None."""
        key = normalize_gpu_name(name)
        entry = self.index.get(key)
        size = _MEMORY.search(name)
        if entry is None and size is not None:
            entry = self.index.get(normalize_gpu_name(_MEMORY.sub(" ", name)))
        if entry is None:
            return None
        return GpuMatch(entry=entry, memory_mib=_memory(entry, size))

    def by_target(self, target: str) -> tuple[GpuEntry, ...]:
        """The rows of a gfx target or compute capability (``gfx1100``, ``8.9``)."""
        return tuple(e for e in self.entries if e.target == target)

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The canonical names nearest to ``name`` (for "did you mean ...?")."""
        key = normalize_gpu_name(_MEMORY.sub(" ", name)) or name.lower()
        inside = sorted(
            (k for k in self.index if len(k) >= 3 and (k in key or key in k)),  # noqa: PLR2004
            key=lambda k: (abs(len(k) - len(key)), k),
        )
        near = difflib.get_close_matches(key, list(self.index), n=n * 3, cutoff=0.6)
        names = dict.fromkeys(self.index[k].name for k in (*inside[:n], *near))
        return list(names)[:n]


def _memory(entry: GpuEntry, size: re.Match[str] | None) -> int | None:
    if size is not None:
        said = int(size.group(1)) * _MIB_PER_GIB
        if said in entry.memory_mib:
            return said
    return entry.memory_mib[0] if len(entry.memory_mib) == 1 else None
