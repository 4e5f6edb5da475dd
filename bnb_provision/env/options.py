"""What init and rebuild are asked (:class:`BuildOptions`) and what they did
(:class:`BuildResult`, whose :meth:`~BuildResult.to_dict` is the ``bnb-provision.env/1``
JSON)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from bnb_provision.vocab import Stack

if TYPE_CHECKING:
    from bnb_provision.env.stamp import Stamp
    from bnb_provision.env.verify import VerifyReport
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.model import Plan

__all__ = [
    "ENV_SCHEMA",
    "BuildAction",
    "BuildOptions",
    "BuildResult",
    "Log",
    "PlanSummary",
    "default_env_path",
]

ENV_SCHEMA: Final = "bnb-provision.env/1"

Log = Callable[[str], None]
"""Where init and rebuild say what they are doing (one line a call)."""

BuildAction = Literal["created", "rebuilt", "unchanged", "would-rebuild", "would-create"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOptions:
    env: Path
    constraints: Constraints
    stack: Stack = "bnb"
    lock: Path | None = None  # a requirements.txt, a pylock.toml or a manifest
    torch_system: Path | None = None  # the interpreter whose torch is adopted
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    index_url: str = "https://pypi.org/simple"
    torch_index_template: str | None = None
    verify: bool = True
    keep: int = 2  # old environments kept as backups; failed ones kept for inspection
    dry_run: bool = False
    progress: bool = False  # let uv draw its progress on this terminal
    cuda_without_gpu: bool = False  # a machine without GPU may take a CUDA lock
    # options the command line left at their default ("stack", "profile"): rebuild takes
    # them from the environment's stamp (what init was asked)
    defaults: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanSummary:
    """What an environment is built for: the part of a plan that init reports and stamps."""

    python: str
    torch: str  # public version
    variant: str
    bitsandbytes: str
    library: str | None  # the native library bitsandbytes' loader will pick
    db_version: str

    @classmethod
    def of(cls, plan: Plan) -> PlanSummary:
        return cls(
            python=plan.python,
            torch=str(plan.torch.version),
            variant=plan.torch.variant,
            bitsandbytes=str(plan.bitsandbytes.version),
            library=plan.bitsandbytes.library,
            db_version=plan.db_version,
        )

    def describe(self) -> str:
        """``torch 2.13.0+cu130, bitsandbytes 0.50.2``."""
        return f"torch {self.torch}+{self.variant}, bitsandbytes {self.bitsandbytes}"


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildResult:
    env: Path  # the usual path
    real: Path  # the environment it points to
    summary: PlanSummary | None
    plan: Plan | None  # the full plan, when it was computed
    report: VerifyReport | None
    stamp: Stamp | None
    action: BuildAction
    reasons: tuple[str, ...] = ()
    backups: tuple[Path, ...] = ()
    lock: Path | None = None  # the requirements file installed, when a lock was given

    def to_dict(self) -> dict[str, Any]:
        """The ``bnb-provision.env/1`` JSON."""
        s = self.summary
        return {
            "schema": ENV_SCHEMA,
            "env": str(self.env),
            "real": str(self.real),
            "action": self.action,
            "reasons": list(self.reasons),
            "torch": f"{s.torch}+{s.variant}" if s else None,
            "bitsandbytes": s.bitsandbytes if s else None,
            "verify": self.report.to_dict() if self.report else None,
            "stamp": self.stamp.to_dict() if self.stamp else None,
            "backups": [str(b) for b in self.backups],
            "lock": str(self.lock) if self.lock else None,
        }


def default_env_path(stack: str) -> Path:
    return Path(f".venv-{stack}")
