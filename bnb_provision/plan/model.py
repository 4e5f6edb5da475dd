"""A plan and its parts: the machine as the resolver sees it, the torch and bitsandbytes
it chose, why, what it turned down, and the plan's JSON (schema ``bnb-provision.plan/1``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from packaging.version import Version

from bnb_provision import __version__
from bnb_provision.core.cuda import ComputeCapability, Coverage, cuda_of_variant
from bnb_provision.db.rows import Verified
from bnb_provision.detect.accelerators import Accelerator
from bnb_provision.plan.constraints import Constraints
from bnb_provision.vocab import Profile

__all__ = [
    "PLAN_SCHEMA",
    "BnbChoice",
    "Plan",
    "Rejection",
    "Target",
    "TorchChoice",
    "plan_to_dict",
]

PLAN_SCHEMA: Final = "bnb-provision.plan/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """What the resolver needs to know of a machine."""

    os: str  # linux | windows | macos
    arch: str  # x86_64 | aarch64
    python: str  # "3.12"
    driver: Version | None
    gpus: tuple[tuple[str, tuple[int, int]], ...]  # (name, cc)
    jetson: bool = False
    wsl: bool = False
    driver_label: str | None = None  # as the driver reports it: 580.159.04
    msvc_runtime: bool | None = None
    accelerators: tuple[Accelerator, ...] = ()  # AMD, Intel, Apple GPUs

    @property
    def platform(self) -> str:
        if self.os == "macos":
            return "macos-arm64" if self.arch == "aarch64" else "macos-x86_64"
        return f"{self.os}-{self.arch}"

    @property
    def driver_text(self) -> str:
        return self.driver_label or (str(self.driver) if self.driver else "none")

    @property
    def ccs(self) -> tuple[tuple[int, int], ...]:
        return tuple(sorted({cc for _, cc in self.gpus}))


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchChoice:
    version: Version
    variant: str  # cu126 | cpu | ...
    channel: str  # pypi | index
    index_url: str | None
    coverage: tuple[tuple[str, Coverage], ...] = ()  # (gpu cc, how its kernels run)

    @property
    def cuda(self) -> str | None:
        return cuda_of_variant(self.variant)


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbChoice:
    version: Version
    library: str | None  # the native library its loader picks
    rule: str
    fallback: bool = False
    coverage: tuple[tuple[str, Coverage], ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejection:
    """A candidate the resolver turned down: ``torch 2.9.0+cu130``, and why."""

    what: str
    why: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    target: Target
    python: str
    profile: Profile
    torch: TorchChoice
    bitsandbytes: BnbChoice
    packages: tuple[tuple[str, str], ...]
    verified: Verified | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    constraints: Constraints
    db_version: str
    snippet: str = ""

    def package(self, name: str) -> str | None:
        return next((v for n, v in self.packages if n == name), None)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON data, schema ``bnb-provision.plan/1``."""
    v = plan.verified
    return {
        "schema": PLAN_SCHEMA,
        "tool": {"name": "bnb-provision", "version": __version__},
        "db_version": plan.db_version,
        "machine": _target_dict(plan.target),
        "python": plan.python,
        "profile": plan.profile,
        "torch": {
            "version": str(plan.torch.version),
            "variant": plan.torch.variant,
            "cuda": plan.torch.cuda,
            "channel": plan.torch.channel,
            "index_url": plan.torch.index_url,
            "coverage": dict(plan.torch.coverage),
        },
        "bitsandbytes": {
            "version": str(plan.bitsandbytes.version),
            "library": plan.bitsandbytes.library,
            "loader_rule": plan.bitsandbytes.rule,
            "fallback": plan.bitsandbytes.fallback,
            "coverage": dict(plan.bitsandbytes.coverage),
        },
        "packages": dict(plan.packages),
        "verified": None
        if v is None
        else {
            "gpu": v.gpu,
            "driver": str(v.driver),
            "evidence": v.evidence,
            "source": v.source,
            "checked": v.checked,
        },
        "reasons": list(plan.reasons),
        "warnings": list(plan.warnings),
        "rejected": [{"what": r.what, "why": r.why} for r in plan.rejected],
        "constraints": _constraints_dict(plan.constraints),
        "bnb_config_snippet": plan.snippet,
    }


def _target_dict(t: Target) -> dict[str, Any]:
    data = _nvidia_target_dict(t)
    if t.accelerators:  # an optional key: plans for NVIDIA machines keep their JSON
        data["accelerators"] = [
            {"vendor": a.vendor, "name": a.name, "target": a.target} for a in t.accelerators
        ]
    return data


def _nvidia_target_dict(t: Target) -> dict[str, Any]:
    return {
        "platform": t.platform,
        "os": t.os,
        "arch": t.arch,
        "driver": t.driver_label or (str(t.driver) if t.driver else None),
        "gpus": [
            {"name": n, "compute_capability": str(ComputeCapability(*cc))} for n, cc in t.gpus
        ],
        "wsl": t.wsl,
    }


def _constraints_dict(c: Constraints) -> dict[str, Any]:
    return {
        "torch": c.torch,
        "bnb": c.bnb,
        "cuda": c.cuda,
        "python": c.python,
        "profile": c.profile,
    }
