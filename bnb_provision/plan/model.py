"""A plan and its parts: the machine as the resolver sees it, the torch and bitsandbytes
it chose, why, what it turned down, and the plan's JSON (schema ``bnb-provision.plan/2``)."""

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
    "Rung",
    "Target",
    "TorchChoice",
    "plan_to_dict",
]

PLAN_SCHEMA: Final = "bnb-provision.plan/2"
"""/2: ``verified`` is the verified row this exact combination matches (no longer the row
that chose it: the newest safe torch wins); ``evidence`` lists verified rows of the same
platform and GPUs; ``driver_floor`` and ``ladder`` (a plan made without a driver version);
``torch.build`` (``mps`` on macOS), ``torch.unverified``, ``bitsandbytes.index_url``,
``companions``; ``machine.os_version``."""


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
    os_version: Version | None = None  # the macOS release (13.6): it decides the wheels

    @property
    def platform(self) -> str:
        if self.os == "macos":
            return "macos-arm64" if self.arch == "aarch64" else "macos-x86_64"
        return f"{self.os}-{self.arch}"

    @property
    def driver_text(self) -> str:
        """The driver as it was written (``580.159.04``), or ``none``."""
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
    mps: bool = False  # macOS: the build runs on the Apple GPU through Metal (MPS)
    unverified: str | None = None  # a listing the DB records as announced, not verified

    @property
    def cuda(self) -> str | None:
        return cuda_of_variant(self.variant)

    @property
    def build(self) -> str:
        """What the build is: ``cu132``, ``cpu``, or ``mps`` (macOS, where it has no tag)."""
        return "mps" if self.mps else self.variant

    @property
    def label(self) -> str:
        """``2.15.0+cu132``; ``2.15.0 (MPS)`` on macOS, whose wheels carry no variant."""
        return f"{self.version} (MPS)" if self.mps else f"{self.version}+{self.variant}"


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbChoice:
    version: Version
    library: str | None  # the native library its loader picks
    rule: str
    fallback: bool = False
    coverage: tuple[tuple[str, Coverage], ...] = ()
    index_url: str | None = None  # a third-party index (legacy Windows wheels); None: PyPI


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejection:
    """A candidate the resolver turned down: ``torch 2.9.0+cu130``, and why."""

    what: str
    why: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Rung:
    """One step of a driver ladder: from driver ``driver`` on, this combination."""

    driver: Version
    torch: TorchChoice
    bitsandbytes: BnbChoice


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
    driver_floor: Version | None = None  # the oldest driver this plan runs on
    ladder: tuple[Rung, ...] = ()  # no driver given: what older driver floors get instead
    evidence: tuple[Verified, ...] = ()  # verified rows of this platform and these GPUs
    companions: tuple[tuple[str, str], ...] = ()  # (torchvision, 0.29.2): also in packages

    def package(self, name: str) -> str | None:
        return next((v for n, v in self.packages if n == name), None)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON data, schema ``bnb-provision.plan/2``."""
    v = plan.verified
    return {
        "schema": PLAN_SCHEMA,
        "tool": {"name": "bnb-provision", "version": __version__},
        "db_version": plan.db_version,
        "machine": _target_dict(plan.target),
        "python": plan.python,
        "profile": plan.profile,
        "driver_floor": str(plan.driver_floor) if plan.driver_floor else None,
        "ladder": [
            {
                "driver": str(r.driver),
                "torch": _torch_dict(r.torch),
                "bitsandbytes": _bnb_dict(r.bitsandbytes),
            }
            for r in plan.ladder
        ],
        "torch": _torch_dict(plan.torch),
        "bitsandbytes": _bnb_dict(plan.bitsandbytes),
        "packages": dict(plan.packages),
        "companions": dict(plan.companions),
        "verified": None if v is None else _verified_dict(v),
        "evidence": [_verified_dict(e) for e in plan.evidence],
        "reasons": list(plan.reasons),
        "warnings": list(plan.warnings),
        "rejected": [{"what": r.what, "why": r.why} for r in plan.rejected],
        "constraints": _constraints_dict(plan.constraints),
        "bnb_config_snippet": plan.snippet,
    }


def _torch_dict(t: TorchChoice) -> dict[str, Any]:
    return {
        "version": str(t.version),
        "variant": t.variant,
        "build": t.build,
        "cuda": t.cuda,
        "channel": t.channel,
        "index_url": t.index_url,
        "coverage": dict(t.coverage),
        "unverified": t.unverified,
    }


def _bnb_dict(b: BnbChoice) -> dict[str, Any]:
    return {
        "version": str(b.version),
        "library": b.library,
        "loader_rule": b.rule,
        "fallback": b.fallback,
        "coverage": dict(b.coverage),
        "index_url": b.index_url,
    }


def _verified_dict(v: Verified) -> dict[str, Any]:
    return {
        "torch": f"{v.torch}+{v.variant}",
        "bitsandbytes": str(v.bnb),
        "platform": v.platform,
        "compute_capability": str(ComputeCapability(*v.cc)),
        "gpu": v.gpu,
        "driver": str(v.driver),
        "evidence": v.evidence,
        "source": v.source,
        "checked": v.checked,
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
        "os_version": str(t.os_version) if t.os_version else None,
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
