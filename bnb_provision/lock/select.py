"""Which class of a lock manifest a machine takes: a pure function of the manifest and the
machine's own facts, with the reasons for the choice, or the nearest class and why none fits.

A class fits a machine when every fact the class was made for holds there:

* the same OS, CPU architecture and Python ``X.Y``;
* a driver at least the class's driver floor (a class without a floor needs none);
* every GPU's architecture among the class's architectures. A CPU class does not fit a
  machine with GPUs, and a CUDA class does not fit a machine without one unless the caller
  asks for it (``cuda_without_gpu``: building an image for GPU hosts on a CPU box).

Among the classes that fit, the one made for machines exactly like this one wins (the same
set of architectures), then the one with the higher driver floor (the newer CUDA build its
machines were planned for), then the name, so the choice never depends on file order. When
none fits, the nearest is named with what it lacks: the fewest facts missed, a CUDA class
for a machine with GPUs, the architectures nearest the machine's.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from bnb_provision.core.text import is_digits
from bnb_provision.errors import NoPlanError
from bnb_provision.lock.manifest import LockClass, Manifest

__all__ = ["ClassMatch", "MachineFacts", "Selection", "match_class", "select_class"]


@dataclass(frozen=True, kw_only=True, slots=True)
class MachineFacts:
    """What a lock class is matched on: a machine reduced to the manifest's vocabulary."""

    os: str  # linux, windows, macos
    arch: str  # x86_64, aarch64, arm64
    python: str  # "3.12"
    driver: str | None  # "550.54.14"; None without an NVIDIA driver
    gpu_archs: tuple[str, ...]  # one "X.Y" per GPU, as the manifest writes them

    def describe(self) -> str:
        """``linux-x86_64, Python 3.12, driver 550.54.14, GPUs 8.0 8.6``."""
        gpus = f"GPU architectures {' '.join(sorted(set(self.gpu_archs)))}"
        return (
            f"{self.os}-{self.arch}, Python {self.python}, "
            f"{f'driver {self.driver}' if self.driver else 'no NVIDIA driver'}, "
            f"{gpus if self.gpu_archs else 'no GPU'}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ClassMatch:
    """One class against one machine: what matched, and what did not (empty: it fits)."""

    lock_class: LockClass
    matched: tuple[str, ...]
    misses: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return not self.misses


@dataclass(frozen=True, kw_only=True, slots=True)
class Selection:
    """The class a machine takes, why, and the other classes that would also have fit."""

    chosen: LockClass
    reasons: tuple[str, ...]
    also_fit: tuple[str, ...] = ()

    def explain(self) -> str:
        """One line: the class and the facts it matched on."""
        line = f"{self.chosen.name}: " + "; ".join(self.reasons)
        if self.also_fit:
            line += f" (preferred over {', '.join(self.also_fit)})"
        return line


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _driver(c: LockClass, m: MachineFacts, *, cpu_box: bool) -> tuple[str | None, str | None]:
    """(matched, missed) for the driver floor."""
    if not c.driver_floor:
        return "needs no NVIDIA driver", None
    if cpu_box:
        return None, None  # the GPU check already says what is missing
    floor = _version(c.driver_floor)
    have = _version(m.driver) if m.driver else None
    if have is None:
        return None, f"needs NVIDIA driver >= {c.driver_floor}; this machine has none"
    if floor is not None and have < floor:
        return None, f"needs NVIDIA driver >= {c.driver_floor}; this machine has {m.driver}"
    return f"driver {m.driver} >= {c.driver_floor}", None


def _gpus(
    c: LockClass, m: MachineFacts, *, cuda_without_gpu: bool
) -> tuple[str | None, str | None]:
    """(matched, missed) for the GPU architectures."""
    cuda = c.variant != "cpu"
    have = sorted(set(m.gpu_archs))
    if not have:
        if not cuda and cuda_without_gpu:
            return None, "a CPU build, and --cuda-without-gpu asks for a CUDA one"
        if not cuda:
            return "a CPU build for a machine without GPU", None
        if cuda_without_gpu:
            return "a CUDA build taken without a GPU, as asked (--cuda-without-gpu)", None
        return None, (
            f"a CUDA build ({c.variant}) and this machine has no NVIDIA GPU; pass "
            "--cuda-without-gpu to take it anyway (e.g. to build an image for its GPU hosts)"
        )
    if not cuda:
        return None, f"a CPU build, and this machine has GPUs ({' '.join(have)})"
    missing = [a for a in have if a not in c.gpu_archs]
    if missing:
        return None, (
            f"made for GPU architectures {' '.join(c.gpu_archs) or 'none'}; this machine's "
            f"{' '.join(missing)} {'is' if len(missing) == 1 else 'are'} not among them"
        )
    return f"GPU architectures {' '.join(have)} among the class's {' '.join(c.gpu_archs)}", None


def match_class(c: LockClass, m: MachineFacts, *, cuda_without_gpu: bool = False) -> ClassMatch:
    """How ``c`` fits ``m``: each fact matched or missed."""
    matched: list[str] = []
    misses: list[str] = []
    if (c.os, c.arch) == (m.os, m.arch):
        matched.append(f"{m.os}-{m.arch}")
    else:
        misses.append(f"for {c.os}-{c.arch}, not {m.os}-{m.arch}")
    if c.python == m.python:
        matched.append(f"Python {m.python}")
    else:
        misses.append(f"for Python {c.python}, not {m.python}")
    cpu_box = not m.gpu_archs and c.variant != "cpu"
    for ok, miss in (
        _driver(c, m, cpu_box=cpu_box),
        _gpus(c, m, cuda_without_gpu=cuda_without_gpu),
    ):
        if ok:
            matched.append(ok)
        if miss:
            misses.append(miss)
    return ClassMatch(lock_class=c, matched=tuple(matched), misses=tuple(misses))


def select_class(
    manifest: Manifest, m: MachineFacts, *, cuda_without_gpu: bool = False
) -> Selection:
    """The class ``m`` takes. Raises NoPlanError naming the nearest class and what it lacks
    when none fits."""
    matches = [match_class(c, m, cuda_without_gpu=cuda_without_gpu) for c in manifest.classes]
    ranked = sorted(matches, key=lambda x: _key(x, m))
    best = ranked[0]
    if best.fits:
        others = tuple(x.lock_class.name for x in ranked[1:] if x.fits)
        return Selection(chosen=best.lock_class, reasons=best.matched, also_fit=others)
    c = best.lock_class
    raise NoPlanError(
        f"{manifest.folder}: no lock class fits this machine ({m.describe()}).\n"
        f"Nearest: {c.name} (for {', '.join(c.machines) or 'its machines'}): "
        + "; ".join(best.misses)
        + ".\nWay out: add this machine's snapshot (bnb-provision detect --json > NAME.json) "
        "to the team's snapshots and run bnb-provision lock again, or give init a lock "
        "file with --lock FILE."
    )


def _arch_number(arch: str) -> int:
    major, _, minor = arch.partition(".")
    return int(major) * 10 + int(minor or 0) if is_digits(major) and is_digits(minor) else 0


def _distance(have: tuple[str, ...], listed: tuple[str, ...]) -> int:
    """How far the machine's architectures are from the class's nearest ones (8.6 is
    nearer 8.0 than 12.0): what makes one missing architecture nearer than another."""
    if not listed:
        return 0
    return sum(min(abs(_arch_number(a) - _arch_number(b)) for b in listed) for a in have)


def _key(
    match: ClassMatch, m: MachineFacts
) -> tuple[int, int, int, int, int, tuple[int, ...], str]:
    """Smaller is better: fewer misses; a CUDA class for a machine with GPUs (a CPU one
    without); fewer of its architectures missing, and those nearer the class's; the exact
    set of architectures; the highest driver floor (the newest build its machines were
    planned for); the name."""
    c = match.lock_class
    kind = 0 if (c.variant != "cpu") == bool(m.gpu_archs) else 1
    missing = len(set(m.gpu_archs) - set(c.gpu_archs))
    exact = 0 if set(c.gpu_archs) == set(m.gpu_archs) else 1
    floor = _version(c.driver_floor) if c.driver_floor else None
    newest_first = tuple(-p for p in floor.release) if floor is not None else ()
    distance = _distance(m.gpu_archs, c.gpu_archs)
    return (len(match.misses), kind, missing, distance, exact, newest_first, c.name)
