"""AMD GPUs: torch's ROCm build and the bitsandbytes ROCm library that holds the GPU's gfx.

A combination qualifies when

* the torch release publishes the ROCm variant on the PyTorch index (``torch.toml``
  ``[[index]] rocm``; Linux x86_64 only) and has wheels for the Python;
* a bitsandbytes release has a wheel for the platform that accepts that torch and Python,
  and ships the ROCm library its loader picks for torch's HIP version (the ROCm variant's
  ``major.minor``): the exact ``libbitsandbytes_rocm{major}{minor}``, or under the
  ``same-major`` rule (0.50+) the highest below, else the lowest above, same major;
* that library holds code for every AMD GPU's gfx target (read from the binary:
  ``derived/bitsandbytes.toml``);
* the Hugging Face stack fits.

Newest torch first, then its newest ROCm variant, then the newest bitsandbytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bnb_provision.core.cuda import is_rocm, rocm_version
from bnb_provision.core.text import is_digits
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import BnbLibraryRow, BnbRelease
from bnb_provision.detect.accelerators import Accelerator
from bnb_provision.detect.hipbundle import gfx_sort_key
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import Constraints, contains
from bnb_provision.plan.hf import HfStack
from bnb_provision.plan.model import BnbChoice, Plan, Target, TorchChoice
from bnb_provision.plan.outcome import backend_plan, no_backend_plan
from bnb_provision.plan.search import Search

__all__ = ["RocmLibrary", "choose_rocm_library", "plan_rocm"]

_PLATFORM: Final = "linux-x86_64"
_WINDOWS_WHEELS: Final = "https://huggingface.co/docs/bitsandbytes/main/en/installation#rocm"


@dataclass(frozen=True, kw_only=True, slots=True)
class RocmLibrary:
    """What bitsandbytes' loader does under a ROCm torch: the library tag it loads."""

    tag: str | None  # "72", "714"; None when nothing loads
    fallback: bool
    reason: str


def _split(tag: str) -> tuple[int, int]:
    """``72`` -> (7, 2), ``714`` -> (7, 14): one digit of major, as bitsandbytes reads it."""
    return int(tag[:1]), int(tag[1:])


def choose_rocm_library(rule: str, hip: tuple[int, int], shipped: tuple[str, ...]) -> RocmLibrary:
    """Apply a loader rule (``exact`` / ``same-major``) to HIP ``hip`` and the ROCm
    library tags a wheel ships."""
    by_version = {_split(t): t for t in shipped if is_digits(t) and len(t) > 1}
    if hip in by_version:
        return RocmLibrary(tag=by_version[hip], fallback=False, reason="exact match")
    same = sorted(v for v in by_version if v[0] == hip[0])
    lower = [v for v in same if v < hip]
    higher = [v for v in same if v > hip]
    pick = (lower[-1] if lower else higher[0] if higher else None) if rule != "exact" else None
    if pick is None:
        why = "no fallback in this release" if rule == "exact" else "none of the same major"
        return RocmLibrary(
            tag=None, fallback=False, reason=f"no ROCm {hip[0]}.{hip[1]} build ({why})"
        )
    return RocmLibrary(
        tag=by_version[pick],
        fallback=True,
        reason=f"no ROCm {hip[0]}.{hip[1]} build; falls back to {pick[0]}.{pick[1]} (same major)",
    )


def _gfx_list(lib: BnbLibraryRow) -> str:
    return " ".join(sorted(lib.gfx, key=gfx_sort_key)) or "none recorded"


class _RocmSearch:
    def __init__(self, db: CompatDB, target: Target, cons: Constraints) -> None:
        self.s = Search(db=db, target=target, cons=cons)
        self.db, self.target, self.cons = db, target, cons
        self.gpus: tuple[Accelerator, ...] = tuple(
            a for a in target.accelerators if a.vendor == "amd"
        )

    def variants(self, version: object) -> list[str]:
        index = self.db.torch_index(version)  # type: ignore[arg-type]
        found = list(index.rocm) if index is not None else []
        if self.cons.cuda is not None and is_rocm(self.cons.cuda):
            found = [v for v in found if v == self.cons.cuda]
        return sorted(found, key=rocm_version, reverse=True)

    def library(self, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
        what = f"bitsandbytes {rel.version}"
        if len(rel.torch) and not contains(rel.torch, torch.version):
            self.s.reject(what, f"requires torch {rel.torch}")
            return None
        libs = {lib.version: lib for lib in self.db.bnb_libs(rel.version, _PLATFORM)}
        shipped = tuple(v for v, lib in libs.items() if lib.backend == "rocm" and v)
        if not shipped:
            self.s.reject(what, f"its {_PLATFORM} wheel has no ROCm library")
            return None
        rule = self.db.loader_rule_row(rel.version).rule
        hip = rocm_version(torch.variant)
        pick = choose_rocm_library(rule, hip, shipped)
        if pick.tag is None:
            self.s.reject(
                what,
                f"its loader finds no library for torch's HIP {hip[0]}.{hip[1]}: "
                f"{pick.reason} (it ships {', '.join(sorted(shipped, key=_split))})",
            )
            return None
        lib = libs[pick.tag]
        for gpu in self.gpus:
            if not lib.gfx or gpu.target is None or not lib.has_gfx(gpu.target):
                self.s.reject(
                    what,
                    f"{lib.file} has no code for {gpu.name} ({gpu.target or 'gfx unknown'}): "
                    f"it holds {_gfx_list(lib)}",
                )
                return None
        return BnbChoice(version=rel.version, library=lib.file, rule=rule, fallback=pick.fallback)

    def run(self) -> Plan | None:
        for rel in self.s.torch_releases():
            if not self.s.python_ok(f"torch {rel.version}", rel.requires_python, rel.pythons):
                continue
            variants = self.variants(rel.version)
            if not variants:
                self.s.reject(f"torch {rel.version}", "no ROCm build of it in the DB")
            for variant in variants:
                torch = TorchChoice(
                    version=rel.version,
                    variant=variant,
                    channel="index",
                    index_url=self.db.index_url(variant),
                )
                for brel in self.s.bnb_releases:
                    bnb = self.library(brel, torch)
                    if bnb is None:
                        continue
                    hf = HfStack(
                        db=self.db,
                        python=self.target.python,
                        profile=self.cons.profile,
                        reject=self.s.reject,
                    )
                    stack = hf.choose(torch.version, bnb.version)
                    if stack is not None:
                        return self.plan(torch, bnb, stack)
        return None

    def plan(self, torch: TorchChoice, bnb: BnbChoice, stack: tuple[tuple[str, str], ...]) -> Plan:
        lib = bnb.library or "-"
        gpus = ", ".join(f"{g.name} ({g.target})" for g in self.gpus)
        hip = ".".join(map(str, rocm_version(torch.variant)))
        reasons = (
            *([f"AMD GPUs: {gpus}"] if gpus else []),
            (
                f"torch {torch.version}+{torch.variant} from {torch.index_url}: the newest torch "
                f"with a ROCm build for Python {self.target.python} (HIP {hip})"
            ),
            f"bitsandbytes {bnb.version}: its loader ({bnb.rule} rule) picks {lib} for HIP "
            f"{hip}"
            + (" as a same-major fallback" if bnb.fallback else "")
            + (", whose offload bundles hold code for every GPU's gfx target" if gpus else ""),
        )
        warnings = [
            (
                f"torch {torch.version}+{torch.variant} is built for gfx targets of its own, "
                "not recorded in the DB: check that torch.cuda.get_arch_list() names your GPU's"
            )
        ]
        if not self.gpus:
            warnings.append(
                "no AMD GPU was given: bitsandbytes' library holds code only for its gfx "
                "targets; pass --gpu (a name such as 'RX 7900 XTX', or gfx1100) to check yours"
            )
        return backend_plan(self.s, torch, bnb, stack, reasons, tuple(warnings))


def plan_rocm(target: Target, db: CompatDB, cons: Constraints) -> Plan:
    """The ROCm plan for ``target``, or NoPlanError naming what blocks it."""
    if target.os != "linux" or target.arch != "x86_64":
        raise NoPlanError(
            f"torch's ROCm builds on the PyTorch index are for Linux x86_64, not "
            f"{target.platform}. On Windows, AMD publishes ROCm torch wheels of its own and "
            f"bitsandbytes >= 0.50 ships Windows ROCm libraries ({_WINDOWS_WHEELS}); "
            "bnb-provision does not plan them. Way out: plan for Linux (--os linux), or --cuda cpu."
        )
    search = _RocmSearch(db, target, cons)
    unknown = [g for g in search.gpus if g.target is None]
    if unknown:
        raise NoPlanError(
            f"{unknown[0].name}: its gfx target is unknown. Pass it with --gpu (gfx1100, or "
            "a model name such as 'RX 7900 XTX'); rocminfo prints it as 'Name: gfx...'."
        )
    plan = search.run()
    if plan is None:
        raise NoPlanError(
            no_backend_plan(
                search.s,
                "ROCm",
                "build bitsandbytes from source for your gfx target (cmake -DCOMPUTE_BACKEND=hip "
                f"-DBNB_ROCM_ARCH=gfxNNNN: {_WINDOWS_WHEELS}), or --cuda cpu",
            )
        )
    return plan
