"""The bitsandbytes side of a search: the releases with a wheel here, and for one torch
build the native library each release's loader would pick and whether its kernels run on
every GPU under this driver.

On Windows, releases before the official wheels (0.43.0) come only from the third-party
index the DB records, only when asked (``--allow-legacy-windows-index``) and only for a
pin below 0.43.0; their libraries' kernels are not in the DB, which the plan says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import Version

from bnb_provision.core.cuda import CPU, ComputeCapability, Coverage, CudaVersion, ptx_blocked
from bnb_provision.db.rows import BnbLibraryRow, BnbRelease
from bnb_provision.plan.constraints import contains, pin_matches
from bnb_provision.plan.loader import choose_library
from bnb_provision.plan.model import BnbChoice, TorchChoice

if TYPE_CHECKING:
    from bnb_provision.plan.state import SearchState as Search

__all__ = ["bnb_releases", "check_bnb", "is_legacy", "ptx_note"]


def ptx_note(toolkit: CudaVersion | None, driver: Version | None, cuda: CudaVersion | None) -> str:
    """Why PTX that would fit the GPU does not run: the driver is older than its toolkit."""
    supports = f"supports CUDA {cuda} at most" if cuda else "is older than every CUDA toolkit"
    return (
        f"its PTX was emitted by CUDA {toolkit}, and driver {driver} {supports} "
        "(NVIDIA's toolkit/driver table), so the driver cannot JIT-compile it"
    )


def is_legacy(s: Search, rel: BnbRelease) -> bool:
    """Whether ``rel`` comes from the third-party Windows index in this search."""
    if not (s.cons.legacy_windows_index and s.cons.bnb):
        return False
    db = s.db
    return (
        s.target.platform == "windows-x86_64"
        and rel.version < db.bnb_os_floor("windows")
        and str(rel.version) in db.bnb_windows_legacy.versions
    )


def bnb_releases(s: Search) -> tuple[BnbRelease, ...]:
    """bitsandbytes releases with a wheel here that accept this Python, newest first."""
    plat = s.target.platform
    out = []
    for r in sorted(s.db.bnb_releases, key=lambda r: r.version, reverse=True):
        if not pin_matches(s.cons.bnb, r.version):
            continue
        what = f"bitsandbytes {r.version}"
        plats = set(r.platforms)
        if is_legacy(s, r):
            out.append(r)
            continue
        if plat not in plats and not (plat == "linux-x86_64" and "any" in plats):
            s.reject(what, _no_wheel(s, r))
            continue
        if plat.startswith("macos") and not s.macos_ok(what, r.macos):
            continue
        if not s.python_ok(what, r.requires_python):
            continue
        out.append(r)
    return tuple(out)


def _no_wheel(s: Search, rel: BnbRelease) -> str:
    """Why ``rel`` has no wheel here; on Windows, where an older pin could come from."""
    plat, db = s.target.platform, s.db
    why = f"no wheel for {plat}"
    if plat != "windows-x86_64" or rel.version >= db.bnb_os_floor("windows"):
        return why
    why += f" (official Windows wheels start at {db.bnb_os_floor('windows')})"
    legacy = db.bnb_windows_legacy
    if str(rel.version) in legacy.versions and s.cons.bnb:
        why += (
            f"; the unmaintained third-party index {legacy.url} has it: "
            "--allow-legacy-windows-index takes it from there"
        )
    return why


def check_bnb(s: Search, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
    """Check a release from :func:`bnb_releases` against one torch build."""
    what = f"bitsandbytes {rel.version}"
    plat = s.target.platform
    if len(rel.torch) and not contains(rel.torch, torch.version):
        s.reject(what, f"requires torch {rel.torch}")
        return None
    for bad in s.known_bad:
        if (not bad.torch_variants or torch.variant in bad.torch_variants) and contains(
            bad.bnb, rel.version
        ):
            s.reject(what, f"known bad: {bad.effect}")
            return None
    if is_legacy(s, rel):
        return _legacy_library(s, rel, torch)
    libs = s.db.bnb_libs(rel.version, plat)
    rule = s.db.loader_rule_row(rel.version).rule
    if torch.variant == CPU:
        cpu = [lib for lib in libs if lib.backend in ("cpu", "mps")]
        if not cpu:
            s.reject(what, f"its {plat} wheel has no CPU library")
            return None
        return BnbChoice(version=rel.version, library=cpu[0].file, rule=rule)
    return _cuda_library(s, rel, torch, libs)


def _cuda_library(
    s: Search, rel: BnbRelease, torch: TorchChoice, libs: tuple[BnbLibraryRow, ...]
) -> BnbChoice | None:
    """The CUDA library bitsandbytes' loader picks under this torch, if it runs here."""
    what = f"bitsandbytes {rel.version}"
    plat = s.target.platform
    rule_row = s.db.loader_rule_row(rel.version)
    assert torch.cuda is not None
    low_cc = min(s.target.ccs) if s.target.ccs else (9, 9)
    nocublaslt = bool(rule_row.nocublaslt_below and low_cc < rule_row.nocublaslt_below)
    backend = "cuda-nocublaslt" if nocublaslt else "cuda"
    shipped = tuple(lib.version for lib in libs if lib.backend == backend and lib.version)
    choice = choose_library(
        rule=rule_row.rule,
        torch_cuda=torch.cuda,
        shipped=shipped,
        suffix=".dll" if plat.startswith("windows") else ".so",
        nocublaslt=nocublaslt,
    )
    if choice.chosen is None:
        s.reject(
            what, f"its loader finds no library for torch's CUDA {torch.cuda}: {choice.reason}"
        )
        return None
    lib = next(lib for lib in libs if lib.file == choice.chosen)
    coverage = _coverage(s, what, lib)
    if coverage is None:
        return None
    return BnbChoice(
        version=rel.version,
        library=lib.file,
        rule=rule_row.rule,
        fallback=choice.fallback,
        coverage=coverage,
    )


def _coverage(s: Search, what: str, lib: BnbLibraryRow) -> tuple[tuple[str, Coverage], ...] | None:
    """How the library's kernels run on each GPU, or None (rejected) when one has none."""
    out = []
    for name, cc in s.target.gpus:
        how = lib.covers(cc, s.driver_cuda)
        gpu = ComputeCapability(*cc)
        if how is None:
            ptx = (*lib.ptx, *lib.rel_ptx)
            if ptx_blocked(
                cc, sass=lib.sass, ptx=ptx, toolkit=lib.toolkit, driver_cuda=s.driver_cuda
            ):
                note = ptx_note(lib.toolkit, s.target.driver, s.driver_cuda)
                s.reject(what, f"{lib.file} runs on {name} ({gpu.sm}) only through PTX: {note}")
                return None
            archs = " ".join(f"sm_{a}" for a in lib.sass) or "no SASS"
            if ptx:
                archs += " + PTX " + " ".join(f"compute_{a}" for a in ptx)
            s.reject(what, f"{lib.file} has no kernel for {name} ({gpu.sm}): {archs}")
            return None
        out.append((str(gpu), how))
    return tuple(out)


def _legacy_library(s: Search, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
    """A release from the third-party Windows index: the library its (exact) loader wants
    for torch's CUDA, if that index's wheel carries it. Its kernels are not in the DB."""
    what = f"bitsandbytes {rel.version} (third-party Windows index)"
    legacy = s.db.bnb_windows_legacy
    rule = s.db.loader_rule_row(rel.version).rule
    if torch.cuda is None:
        s.reject(what, "its wheels are CUDA builds; this plan's torch has no CUDA")
        return None
    low = min(s.target.ccs) if s.target.ccs else None
    if str(rel.version) in legacy.min_cc_70 and low is not None and low < (7, 0):
        s.reject(
            what, f"this release has no kernels below compute capability 7.0 ({legacy.source})"
        )
        return None
    tag = CudaVersion.parse(torch.cuda).tag
    tags = legacy.cuda_tags(Version(str(rel.version)))
    if tag not in tags:
        have = ", ".join(str(CudaVersion.from_tag(x)) for x in tags)
        s.reject(what, f"its libraries are for CUDA {have}; torch's CUDA {torch.cuda} is not one")
        return None
    below = s.db.loader_rule_row(rel.version).nocublaslt_below
    extra = "_nocublaslt" if below and low is not None and low < below else ""
    return BnbChoice(
        version=rel.version,
        library=f"libbitsandbytes_cuda{tag}{extra}.dll",
        rule=rule,
        index_url=legacy.url,
    )
