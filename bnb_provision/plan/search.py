"""The checks a candidate passes on one target, each failure kept as a :class:`Rejection`.

* a torch build: wheels for the Python, a driver new enough for its CUDA (minor-version
  compatibility floor), kernels for every GPU (:func:`bnb_provision.core.cuda.covers`);
* a bitsandbytes release: a wheel for the platform that accepts this Python and torch,
  no known-bad row, and the library its loader picks (:mod:`bnb_provision.plan.loader`)
  with kernels for every GPU;
* then the Hugging Face stack (:mod:`bnb_provision.plan.hf`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Final

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import (
    CPU,
    ComputeCapability,
    Coverage,
    CudaVersion,
    cuda_of_variant,
    variant_of_cuda,
)
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import BnbLibraryRow, BnbRelease, KnownBad, TorchRelease
from bnb_provision.plan.constraints import Constraints, contains, pin_matches
from bnb_provision.plan.hf import HfStack
from bnb_provision.plan.loader import choose_library
from bnb_provision.plan.model import BnbChoice, Rejection, Target, TorchChoice
from bnb_provision.vocab import Platform

__all__ = ["Candidate", "Search"]

_INDEX_PLATFORMS: Final[tuple[Platform, ...]] = ("linux-x86_64", "windows-x86_64", "linux-aarch64")
"""The platforms download.pytorch.org publishes CUDA builds for."""

Candidate = tuple[TorchChoice, BnbChoice, tuple[tuple[str, str], ...]]
"""A torch build, the bitsandbytes that goes with it, and the Hugging Face stack."""


@dataclass
class Search:
    """One resolver run: the target, the DB, the pins, and every rejection so far."""

    db: CompatDB
    target: Target
    cons: Constraints
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, what: str, why: str) -> None:
        self.rejected.append(Rejection(what=what, why=why))

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

    # -- torch -------------------------------------------------------------

    def torch_releases(self) -> list[TorchRelease]:
        """Newest patch of each minor, newest first (or the pinned ones)."""
        by_minor: dict[tuple[int, int], TorchRelease] = {}
        for r in self.db.torch_releases:
            if not pin_matches(self.cons.torch, r.version):
                continue
            key = (r.version.major, r.version.minor)
            if key not in by_minor or r.version > by_minor[key].version:
                by_minor[key] = r
        return sorted(by_minor.values(), key=lambda r: r.version, reverse=True)

    def torch_variants(self, rel: TorchRelease) -> list[tuple[str, str]]:
        """(variant, channel) pairs to try for this release, best first."""
        t = self.target
        pypi = rel.pypi_variant(t.platform)
        out: list[tuple[str, str]] = []
        if not t.gpus or self.cons.cuda == CPU:
            if pypi == CPU:
                out.append((CPU, "pypi"))
            elif pypi is not None or t.os != "macos":
                out.append((CPU, "index"))
            return out
        if t.os == "macos":
            return out
        if pypi and cuda_of_variant(pypi):
            out.append((pypi, "pypi"))
        idx = self.db.torch_index(rel.version)
        if idx is not None and t.platform in _INDEX_PLATFORMS:
            for v in sorted(idx.variants, key=_variant_key, reverse=True):
                if (v, "pypi") not in out:
                    out.append((v, "index"))
            for v in idx.proposed:
                self.reject(
                    f"torch {rel.version}+{v}",
                    "announced for the PyTorch index but not verified there",
                )
        if self.cons.cuda:
            want = variant_of_cuda(self.cons.cuda)
            out = [(v, c) for v, c in out if v == want]
        return out

    def check_torch(self, rel: TorchRelease, variant: str, channel: str) -> TorchChoice | None:
        """The torch build ``variant`` of ``rel`` from ``channel``, if it runs here."""
        t = self.target
        what = f"torch {rel.version}+{variant}" + (" (PyPI)" if channel == "pypi" else "")
        index_url = None if channel == "pypi" else self.db.index_url(variant)
        if variant == CPU:
            return TorchChoice(
                version=rel.version, variant=CPU, channel=channel, index_url=index_url
            )
        cuda = cuda_of_variant(variant)
        if cuda is None:
            self.reject(what, "not a CUDA build (the DB lists it among the CUDA variants)")
            return None
        if t.driver is None:
            self.reject(what, "no NVIDIA driver")
            return None
        floor, why = self.db.min_driver(cuda, t.os)
        if floor is None or t.driver < floor:
            self.reject(what, f"driver {t.driver} is too old: {why}" if floor else why)
            return None
        coverage = self.torch_coverage(what, rel.version, variant, channel)
        if coverage is None:
            return None
        return TorchChoice(
            version=rel.version,
            variant=variant,
            channel=channel,
            index_url=index_url,
            coverage=coverage,
        )

    def torch_coverage(
        self, what: str, version: Version, variant: str, channel: str
    ) -> tuple[tuple[str, Coverage], ...] | None:
        """How the build's kernels run on each GPU, or None (rejected) when one has none."""
        t = self.target
        build = self.db.torch_build(variant, version, t.platform, channel)
        if build is None:
            self.reject(what, f"its kernel list for {t.platform} is not in the DB (unknown)")
            return None
        coverage = []
        for name, cc in t.gpus:
            how = build.covers(cc)
            gpu = ComputeCapability(*cc)
            if how is None:
                archs = " ".join(f"sm_{a}" for a in build.sass) + "".join(
                    f" compute_{a}" for a in build.ptx
                )
                extra = ""
                if gpu.arch in build.unverified_sass:
                    extra = f" ({gpu.sm} is claimed by a build script but not verified)"
                self.reject(what, f"no kernels for {name} ({gpu.sm}); it has {archs}{extra}")
                return None
            coverage.append((str(gpu), how))
        return tuple(coverage)

    # -- bitsandbytes --------------------------------------------------------

    @functools.cached_property
    def bnb_releases(self) -> tuple[BnbRelease, ...]:
        """bitsandbytes releases with a wheel here that accept this Python, newest first."""
        plat = self.target.platform
        out = []
        for r in sorted(self.db.bnb_releases, key=lambda r: r.version, reverse=True):
            if not pin_matches(self.cons.bnb, r.version):
                continue
            what = f"bitsandbytes {r.version}"
            plats = set(r.platforms)
            if plat not in plats and not (plat == "linux-x86_64" and "any" in plats):
                self.reject(what, f"no wheel for {plat}")
                continue
            if not self.python_ok(what, r.requires_python):
                continue
            out.append(r)
        return tuple(out)

    def check_bnb(self, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
        """Check a release from :attr:`bnb_releases` against one torch build."""
        what = f"bitsandbytes {rel.version}"
        plat = self.target.platform
        if len(rel.torch) and not contains(rel.torch, torch.version):
            self.reject(what, f"requires torch {rel.torch}")
            return None
        for bad in self.known_bad:
            if (not bad.torch_variants or torch.variant in bad.torch_variants) and contains(
                bad.bnb, rel.version
            ):
                self.reject(what, f"known bad: {bad.effect}")
                return None
        libs = self.db.bnb_libs(rel.version, plat)
        rule = self.db.loader_rule_row(rel.version).rule
        if torch.variant == CPU:
            cpu = [lib for lib in libs if lib.backend in ("cpu", "mps")]
            if not cpu:
                self.reject(what, f"its {plat} wheel has no CPU library")
                return None
            return BnbChoice(version=rel.version, library=cpu[0].file, rule=rule)
        return self.cuda_library(rel, torch, libs)

    def cuda_library(
        self, rel: BnbRelease, torch: TorchChoice, libs: tuple[BnbLibraryRow, ...]
    ) -> BnbChoice | None:
        """The CUDA library bitsandbytes' loader picks under this torch, if it runs here."""
        what = f"bitsandbytes {rel.version}"
        plat = self.target.platform
        rule_row = self.db.loader_rule_row(rel.version)
        assert torch.cuda is not None
        low_cc = min(self.target.ccs) if self.target.ccs else (9, 9)
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
            self.reject(
                what, f"its loader finds no library for torch's CUDA {torch.cuda}: {choice.reason}"
            )
            return None
        lib = next(lib for lib in libs if lib.file == choice.chosen)
        coverage = self.bnb_coverage(what, lib)
        if coverage is None:
            return None
        return BnbChoice(
            version=rel.version,
            library=lib.file,
            rule=rule_row.rule,
            fallback=choice.fallback,
            coverage=coverage,
        )

    def bnb_coverage(
        self, what: str, lib: BnbLibraryRow
    ) -> tuple[tuple[str, Coverage], ...] | None:
        """How the library's kernels run on each GPU, or None (rejected) when one has none."""
        out = []
        for name, cc in self.target.gpus:
            how = lib.covers(cc)
            gpu = ComputeCapability(*cc)
            if how is None:
                archs = " ".join(f"sm_{a}" for a in lib.sass) or "no SASS"
                ptx = lib.ptx + lib.rel_ptx
                if ptx:
                    archs += " + PTX " + " ".join(f"compute_{a}" for a in ptx)
                self.reject(what, f"{lib.file} has no kernel for {name} ({gpu.sm}): {archs}")
                return None
            out.append((str(gpu), how))
        return tuple(out)

    # -- the whole combination -------------------------------------------------

    def complete(self, torch: TorchChoice, rel: BnbRelease) -> Candidate | None:
        """bitsandbytes ``rel`` with this torch, and the Hugging Face stack, if both fit."""
        bnb = self.check_bnb(rel, torch)
        if bnb is None:
            return None
        hf = HfStack(
            db=self.db, python=self.target.python, profile=self.cons.profile, reject=self.reject
        )
        stack = hf.choose(torch.version, bnb.version)
        return None if stack is None else (torch, bnb, stack)


def _variant_key(variant: str) -> CudaVersion:
    return CudaVersion.from_variant(variant) or CudaVersion(0, 0)
