"""Intel GPUs (torch's ``xpu`` build) and Apple silicon (torch's macOS build, MPS).

Intel: the GPU's Xe architecture must be one PyTorch validates (``torch.toml [xpu]``;
Data Center GPU Max on Linux only); torch from ``download.pytorch.org/whl/xpu`` in the
releases that index serves and bitsandbytes' XPU build accepts; a bitsandbytes release
whose wheel ships an XPU library. Its loader takes ``libbitsandbytes_xpu{YYYY}`` for the
oneAPI year torch reports, else ``libbitsandbytes_xpu``, else runs its Triton kernels.

Apple silicon: torch's macOS arm64 wheel from PyPI (its MPS backend) and a bitsandbytes
release with a macOS arm64 wheel (its CPU library with the MPS ops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from bnb_provision.core.cuda import MPS, XPU
from bnb_provision.db.builds import XpuFacts
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import BnbRelease, TorchRelease
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import Constraints, contains
from bnb_provision.plan.hf import HfStack
from bnb_provision.plan.model import BnbChoice, Plan, Target, TorchChoice
from bnb_provision.plan.outcome import backend_plan, no_backend_plan
from bnb_provision.plan.search import Search

__all__ = ["plan_mps", "plan_xpu"]

_MAC: Final = "macos-arm64"
Check = Callable[[BnbRelease, TorchChoice], BnbChoice | None]


def _first(
    s: Search,
    releases: list[TorchRelease],
    make: Callable[[TorchRelease], TorchChoice],
    check: Check,
) -> tuple[TorchChoice, BnbChoice, tuple[tuple[str, str], ...]] | None:
    """The newest torch of ``releases`` with the newest bitsandbytes ``check`` accepts and a
    Hugging Face stack."""
    for rel in releases:
        if not s.python_ok(f"torch {rel.version}", rel.requires_python, rel.pythons):
            continue
        torch = make(rel)
        for brel in s.bnb_releases:
            what = f"bitsandbytes {brel.version}"
            if len(brel.torch) and not contains(brel.torch, torch.version):
                s.reject(what, f"requires torch {brel.torch}")
                continue
            bnb = check(brel, torch)
            if bnb is None:
                continue
            hf = HfStack(db=s.db, python=s.target.python, profile=s.cons.profile, reject=s.reject)
            stack = hf.choose(torch.version, bnb.version)
            if stack is not None:
                return torch, bnb, stack
    return None


# -- Intel -------------------------------------------------------------------------------


def _xpu_preflight(target: Target, facts: XpuFacts) -> None:
    if target.platform not in facts.platforms:
        raise NoPlanError(
            f"torch's xpu builds are for {', '.join(facts.platforms)}, not {target.platform} "
            f"({facts.source}). Way out: --cuda cpu."
        )
    for gpu in target.accelerators:
        if gpu.vendor != "intel" or gpu.target is None:
            continue
        if gpu.target not in facts.validated:
            raise NoPlanError(
                f"{gpu.name} ({gpu.target}) is not among the Intel GPUs PyTorch's xpu build is "
                f"validated on ({', '.join(facts.validated)}: {facts.source}). "
                "Way out: --cuda cpu."
            )
        if gpu.target in facts.linux_only and target.os != "linux":
            raise NoPlanError(
                f"{gpu.name}: PyTorch validates it on Linux only ({facts.source}). "
                "Way out: plan for Linux (--os linux), or --cuda cpu."
            )


def plan_xpu(target: Target, db: CompatDB, cons: Constraints) -> Plan:
    """The Intel GPU plan for ``target``, or NoPlanError naming what blocks it."""
    facts = db.xpu
    if facts is None:
        raise NoPlanError("the DB records no torch xpu builds")
    _xpu_preflight(target, facts)
    s = Search(db=db, target=target, cons=cons)
    releases = [
        r
        for r in s.torch_releases()
        if contains(facts.torch, r.version) and contains(facts.bnb_torch, r.version)
    ]
    skipped = [r for r in s.torch_releases() if r not in releases]
    for r in skipped:
        s.reject(
            f"torch {r.version}+xpu",
            f"not a torch {facts.torch} that bitsandbytes' XPU build takes ({facts.bnb_torch})",
        )

    def make(rel: TorchRelease) -> TorchChoice:
        return TorchChoice(
            version=rel.version, variant=XPU, channel="index", index_url=db.index_url(XPU)
        )

    def check(brel: BnbRelease, _torch: TorchChoice) -> BnbChoice | None:
        libs = [lib for lib in db.bnb_libs(brel.version, target.platform) if lib.backend == "xpu"]
        if not libs:
            s.reject(
                f"bitsandbytes {brel.version}", f"its {target.platform} wheel has no XPU library"
            )
            return None
        rule = db.loader_rule_row(brel.version).rule
        return BnbChoice(
            version=brel.version, library=libs[0].file if len(libs) == 1 else None, rule=rule
        )

    found = _first(s, releases, make, check)
    if found is None:
        raise NoPlanError(no_backend_plan(s, "Intel XPU", "--cuda cpu"))
    torch, bnb, stack = found
    libs = [lib.file for lib in db.bnb_libs(bnb.version, target.platform) if lib.backend == "xpu"]
    gpus = ", ".join(
        f"{a.name} ({a.target or 'architecture unknown'})" for a in target.accelerators
    )
    reasons = (
        *([f"Intel GPUs: {gpus}"] if gpus else []),
        (
            f"torch {torch.version}+xpu from {torch.index_url}: the newest torch with an xpu build "
            f"that bitsandbytes' XPU build takes ({facts.bnb_torch}; {facts.bnb_source})"
        ),
        (
            f"bitsandbytes {bnb.version}: its {target.platform} wheel ships {', '.join(libs)}; the "
            "loader takes the one for the oneAPI year torch.version.xpu starts with, and runs "
            "its Triton kernels when none matches"
        ),
    )
    warnings = [] if gpus else ["no Intel GPU was given: the plan assumes one PyTorch validates"]
    warnings += [f"install Intel's GPU driver first (xe or i915; {facts.source})"]
    return backend_plan(s, torch, bnb, stack, reasons, tuple(warnings))


# -- Apple silicon -----------------------------------------------------------------------


def plan_mps(target: Target, db: CompatDB, cons: Constraints) -> Plan:
    """The Apple silicon plan for ``target``, or NoPlanError naming what blocks it."""
    if target.platform != _MAC:
        raise NoPlanError(
            f"MPS is Apple silicon's GPU backend (macOS arm64), not one for {target.platform}. "
            "Way out: --os macos --arch arm64 for a Mac, or --cuda cpu."
        )
    s = Search(db=db, target=target, cons=cons)
    releases = [r for r in s.torch_releases() if r.pypi_variant(_MAC) is not None]
    for r in s.torch_releases():
        if r not in releases:
            s.reject(f"torch {r.version}", "no macOS arm64 wheel on PyPI")

    def make(rel: TorchRelease) -> TorchChoice:
        return TorchChoice(version=rel.version, variant=MPS, channel="pypi", index_url=None)

    def check(brel: BnbRelease, _torch: TorchChoice) -> BnbChoice | None:
        libs = [lib for lib in db.bnb_libs(brel.version, _MAC) if lib.backend in ("cpu", "mps")]
        if not libs:
            s.reject(f"bitsandbytes {brel.version}", f"its {_MAC} wheel has no native library")
            return None
        return BnbChoice(
            version=brel.version, library=libs[0].file, rule=db.loader_rule_row(brel.version).rule
        )

    found = _first(s, releases, make, check)
    if found is None:
        raise NoPlanError(no_backend_plan(s, "Apple silicon (MPS)", "--cuda cpu"))
    torch, bnb, stack = found
    chips = ", ".join(a.name for a in target.accelerators if a.vendor == "apple")
    reasons = (
        *([f"Apple silicon: {chips}"] if chips else []),
        f"torch {torch.version} from PyPI: its macOS arm64 wheel runs on the GPU through MPS",
        (
            f"bitsandbytes {bnb.version}: wheel for {_MAC} (from {db.bnb_os_floor('macos')}); "
            f"{bnb.library} with its MPS backend"
        ),
    )
    return backend_plan(s, torch, bnb, stack, reasons, ())
