"""What every check of one resolver run shares: the target, the DB, the pins, the
rejections so far, and the checks of Python and macOS wheels and of the driver's CUDA.
:class:`~bnb_provision.plan.search.Search` builds on it; the bitsandbytes and companion
checks take it."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import ComputeCapability, CudaVersion
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import KnownBad
from bnb_provision.plan.constraints import Constraints, contains
from bnb_provision.plan.model import Rejection, Target

__all__ = ["SearchState"]


@dataclass
class SearchState:
    """One resolver run: the target, the DB, the pins, and every rejection so far."""

    db: CompatDB
    target: Target
    cons: Constraints
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, what: str, why: str) -> None:
        self.rejected.append(Rejection(what=what, why=why))

    @functools.cached_property
    def driver_cuda(self) -> CudaVersion | None:
        """The newest CUDA the driver runs without minor-version compatibility: the newest
        PTX it can JIT-compile."""
        t = self.target
        return None if t.driver is None else self.db.driver_cuda(t.driver, t.os)

    @functools.cached_property
    def known_bad(self) -> tuple[KnownBad, ...]:
        """The known-bad rows that concern this platform and these GPUs."""
        plat = self.target.platform
        ccs = {str(ComputeCapability(*cc)) for cc in self.target.ccs}
        return tuple(
            b
            for b in self.db.known_bad
            if (not b.platforms or plat in b.platforms) and (not b.cc or ccs & set(b.cc))
        )

    def python_ok(self, what: str, spec: SpecifierSet, listed: tuple[str, ...] = ()) -> bool:
        py = self.target.python
        if listed and py not in listed:
            self.reject(what, f"no wheels for Python {py} (has {', '.join(listed)})")
            return False
        if len(spec) and not contains(spec, py + ".0"):
            self.reject(what, f"requires Python {spec}, not {py}")
            return False
        return True

    def macos_ok(self, what: str, floor: Version | None) -> bool:
        """On a macOS release given with ``--os-version``: whether a wheel whose platform
        tag names ``floor`` installs there (None: the wheel is not for this OS at all)."""
        t = self.target
        if t.os != "macos" or t.os_version is None:
            return True
        if floor is None:
            self.reject(what, f"no macOS arm64 wheel for Python {t.python}")
            return False
        if t.os_version < floor:
            self.reject(
                what,
                f"its macOS wheel (platform tag macosx_{floor.major}_{floor.minor}) needs "
                f"macOS {floor} or newer; this machine runs macOS {t.os_version}",
            )
            return False
        return True
