"""The checks a candidate passes on one target, each failure kept as a :class:`Rejection`.

* a torch build: wheels for the Python (and, on macOS, for the OS release), a driver new
  enough for its CUDA (minor-version compatibility floor), kernels for every GPU
  (:func:`bnb_provision.core.cuda.covers`: PTX counts only where the driver can JIT it);
* a bitsandbytes release (:mod:`bnb_provision.plan.bnbsearch`): a wheel for the platform
  that accepts this Python and torch, no known-bad row, and the library its loader picks
  (:mod:`bnb_provision.plan.loader`) with kernels for every GPU;
* then the companions asked for (:mod:`bnb_provision.plan.companions`) and the Hugging
  Face stack (:mod:`bnb_provision.plan.hf`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from packaging.version import Version

from bnb_provision.core.cuda import (
    CPU,
    ComputeCapability,
    Coverage,
    CudaVersion,
    cuda_of_variant,
    ptx_blocked,
    variant_of_cuda,
)
from bnb_provision.db.rows import BnbRelease, TorchBuild, TorchRelease
from bnb_provision.plan import bnbsearch
from bnb_provision.plan.bnbsearch import ptx_note
from bnb_provision.plan.companions import choose_companions
from bnb_provision.plan.constraints import pin_matches
from bnb_provision.plan.hf import HfStack
from bnb_provision.plan.model import BnbChoice, TorchChoice
from bnb_provision.plan.state import SearchState
from bnb_provision.vocab import Platform

__all__ = ["Candidate", "Search"]

_INDEX_PLATFORMS: Final[tuple[Platform, ...]] = ("linux-x86_64", "windows-x86_64", "linux-aarch64")
"""The platforms download.pytorch.org publishes CUDA builds for."""

Candidate = tuple[TorchChoice, BnbChoice, tuple[tuple[str, str], ...]]
"""A torch build, the bitsandbytes that goes with it, and the other packages (companions,
then the Hugging Face stack)."""

Variant = tuple[str, str, str | None]
"""A torch build to try: (variant, channel, the unverified fact it rests on, if any)."""


@dataclass
class Search(SearchState):
    """One resolver run: the torch builds, then bitsandbytes, companions and the Hugging
    Face stack for each."""

    # -- torch -------------------------------------------------------------

    def torch_releases(self) -> list[TorchRelease]:
        """Newest patch of each minor that installs here, newest first (or the pinned ones)."""
        by_minor: dict[tuple[int, int], TorchRelease] = {}
        for r in self.db.torch_releases:
            if not pin_matches(self.cons.torch, r.version):
                continue
            if self.target.os == "macos" and not self.macos_ok(
                f"torch {r.version}", r.macos_floor(self.target.python)
            ):
                continue
            key = (r.version.major, r.version.minor)
            if key not in by_minor or r.version > by_minor[key].version:
                by_minor[key] = r
        return sorted(by_minor.values(), key=lambda r: r.version, reverse=True)

    def torch_variants(self, rel: TorchRelease) -> list[Variant]:
        """(variant, channel, unverified fact) to try for this release, best first."""
        t = self.target
        pypi = rel.pypi_variant(t.platform)
        if not t.gpus or self.cons.cuda == CPU:
            if pypi == CPU:
                return [(CPU, "pypi", None)]
            return [] if pypi is None and t.os == "macos" else [(CPU, "index", None)]
        if t.os == "macos":
            return []
        out: list[Variant] = []
        if pypi and cuda_of_variant(pypi):
            out.append((pypi, "pypi", None))
        if t.platform in _INDEX_PLATFORMS:
            out += self._index_variants(rel)
        if self.cons.cuda:
            want = variant_of_cuda(self.cons.cuda)
            out = [x for x in out if x[0] == want]
        return out

    def _index_variants(self, rel: TorchRelease) -> list[Variant]:
        """The release's variants on the PyTorch index (after PyPI's build of a variant,
        the index's: its own kernel list, PTX included on Linux); the ones only announced
        there are tried only when torch is pinned (an explicit request), with the fact
        they rest on."""
        idx = self.db.torch_index(rel.version)
        if idx is None:
            return []
        out: list[Variant] = [
            (v, "index", None) for v in sorted(idx.variants, key=_variant_key, reverse=True)
        ]
        for v in sorted(idx.proposed, key=_variant_key, reverse=True):
            fact = (
                f"torch {rel.version}+{v} on {self.db.index_url(v)} is announced "
                f"({idx.source}) but its listing there is not verified (checked {idx.checked})"
            )
            if self.cons.torch:
                out.append((v, "index", fact))
            else:
                self.reject(
                    f"torch {rel.version}+{v}",
                    "announced for the PyTorch index but not verified there "
                    "(pin --torch to ask for it anyway)",
                )
        return out

    def check_torch(
        self, rel: TorchRelease, variant: str, channel: str, unverified: str | None = None
    ) -> TorchChoice | None:
        """The torch build ``variant`` of ``rel`` from ``channel``, if it runs here."""
        t = self.target
        what = f"torch {rel.version}+{variant}" + (" (PyPI)" if channel == "pypi" else "")
        index_url = None if channel == "pypi" else self.db.index_url(variant)
        if variant == CPU:
            return TorchChoice(
                version=rel.version,
                variant=CPU,
                channel=channel,
                index_url=index_url,
                mps=t.os == "macos" and t.arch == "aarch64",
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
            self.reject(what, f"driver {t.driver_text} is too old: {why}" if floor else why)
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
            unverified=unverified,
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
            how = build.covers(cc, self.driver_cuda)
            if how is None:
                self.reject(what, self._no_torch_kernel(build, name, cc))
                return None
            coverage.append((str(ComputeCapability(*cc)), how))
        return tuple(coverage)

    def _no_torch_kernel(self, build: TorchBuild, name: str, cc: tuple[int, int]) -> str:
        gpu = ComputeCapability(*cc)
        archs = " ".join(f"sm_{a}" for a in build.sass) + "".join(
            f" compute_{a}" for a in build.ptx
        )
        if ptx_blocked(
            cc, sass=build.sass, ptx=build.ptx, toolkit=build.toolkit, driver_cuda=self.driver_cuda
        ):
            note = ptx_note(build.toolkit, self.target.driver, self.driver_cuda)
            return f"no kernels for {name} ({gpu.sm}) that run under this driver: {note}"
        extra = ""
        if gpu.arch in build.unverified_sass:
            extra = f" ({gpu.sm} is claimed by a build script but not verified)"
        return f"no kernels for {name} ({gpu.sm}); it has {archs}{extra}"

    # -- bitsandbytes --------------------------------------------------------

    @functools.cached_property
    def bnb_releases(self) -> tuple[BnbRelease, ...]:
        """bitsandbytes releases with a wheel here that accept this Python, newest first."""
        return bnbsearch.bnb_releases(self)

    def check_bnb(self, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
        """Check a release from :attr:`bnb_releases` against one torch build."""
        return bnbsearch.check_bnb(self, rel, torch)

    # -- the whole combination -------------------------------------------------

    def complete(self, torch: TorchChoice, rel: BnbRelease) -> Candidate | None:
        """bitsandbytes ``rel`` with this torch, the companions asked for and the Hugging
        Face stack, if all fit."""
        bnb = self.check_bnb(rel, torch)
        if bnb is None:
            return None
        companions = choose_companions(self, torch)
        if companions is None:
            return None
        hf = HfStack(
            db=self.db, python=self.target.python, profile=self.cons.profile, reject=self.reject
        )
        stack = hf.choose(torch.version, bnb.version)
        return None if stack is None else (torch, bnb, (*companions, *stack))


def _variant_key(variant: str) -> CudaVersion:
    return CudaVersion.from_variant(variant) or CudaVersion(0, 0)
