"""The resolver: (machine, DB, constraints) -> plan. A pure function.

A combination qualifies only if

* the driver can run its CUDA build (minor-version compatibility floor);
* the torch build has kernels for every GPU (SASS of the same major with a
  minor no newer than the GPU's, or PTX no newer than it);
* bitsandbytes has a wheel for the platform, accepts that torch and Python,
  and ships the library its loader would pick for that CUDA version, with
  kernels for every GPU;
* the Hugging Face stack fits (Python, torch, the curated floors).

Among qualifying plans, verified combinations come first, then the newest.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from typing import Final

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import BnbLibraryRow, BnbRelease, KnownBad, TorchRelease, Verified
from bnb_provision.detect.machine import Machine
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.loader import choose_library

__all__ = [
    "PROFILES",
    "BnbChoice",
    "Constraints",
    "Plan",
    "Rejection",
    "Target",
    "TorchChoice",
    "make_plan",
    "target_from_machine",
]

PROFILES: Final = ("inference", "qlora")
_SHOWN: Final = 6  # items listed per grouped rejection


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
    coverage: tuple[tuple[str, str], ...] = ()  # (gpu cc, sass|ptx)

    @property
    def cuda(self) -> str | None:
        m = re.fullmatch(r"cu(\d+)(\d)", self.variant)
        return f"{m.group(1)}.{m.group(2)}" if m else None


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbChoice:
    version: Version
    library: str | None  # the native library its loader picks
    rule: str
    fallback: bool = False
    coverage: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejection:
    what: str
    why: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    target: Target
    python: str
    profile: str
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


# ---------------------------------------------------------------------------


def _contains(spec: SpecifierSet, version: Version | str) -> bool:
    return spec.contains(version, prereleases=True)


def _cc_text(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def _sm(cc: tuple[int, int]) -> str:
    return f"sm_{cc[0]}{cc[1]}"


def _prefix_match(version: Version, prefix: str) -> bool:
    if any(op in prefix for op in "<>=!~,"):
        return SpecifierSet(prefix).contains(version, prereleases=True)
    want = prefix.split(".")
    have = str(version.public).split(".")
    return have[: len(want)] == want


def target_from_machine(machine: Machine, db: CompatDB, python: str | None = None) -> Target:
    """Reduce a machine snapshot to what the resolver needs; look up unknown CCs."""
    gpus = []
    jetson = False
    for g in machine.gpus:
        model = db.gpu_cc(g.name)
        cc = g.compute_capability or (model.cc if model else None)
        if cc is None:
            raise NoPlanError(
                f"GPU {g.index} ({g.name}): its compute capability is unknown (the driver did "
                "not report it and the DB does not know the name). Pass it as --gpu X.Y, "
                "e.g. --gpu 8.6."
            )
        jetson = jetson or bool(model and model.jetson)
        gpus.append((g.name, cc))
    if machine.env is not None and python is None:
        python = machine.env.python.minor
    driver = None
    if machine.nvidia is not None:
        driver = Version(machine.nvidia.driver)
    return Target(
        os=machine.os.system,
        arch=machine.os.arch,
        python=python or machine.python.minor,
        driver=driver,
        driver_label=machine.nvidia.driver if machine.nvidia else None,
        gpus=tuple(gpus),
        jetson=jetson,
        wsl=machine.os.wsl,
        msvc_runtime=machine.os.msvc_runtime,
    )


@dataclass
class _Search:
    db: CompatDB
    target: Target
    cons: Constraints
    rejected: list[Rejection] = field(default_factory=list)
    _bnb: list[BnbRelease] | None = None

    @functools.cached_property
    def known_bad(self) -> tuple[KnownBad, ...]:
        """The known-bad rows that concern this platform and these GPUs."""
        plat, ccs = self.target.platform, {_cc_text(cc) for cc in self.target.ccs}
        return tuple(
            b
            for b in self.db.known_bad
            if (not b.platforms or plat in b.platforms) and (not b.cc or ccs & set(b.cc))
        )

    def reject(self, what: str, why: str) -> None:
        self.rejected.append(Rejection(what=what, why=why))

    # -- torch -------------------------------------------------------------

    def torch_releases(self) -> list[TorchRelease]:
        """Newest patch of each minor, newest first (or the pinned ones)."""
        by_minor: dict[tuple[int, int], TorchRelease] = {}
        for r in self.db.torch_releases:
            if self.cons.torch and not _prefix_match(r.version, self.cons.torch):
                continue
            key = (r.version.major, r.version.minor)
            if key not in by_minor or r.version > by_minor[key].version:
                by_minor[key] = r
        return sorted(by_minor.values(), key=lambda r: r.version, reverse=True)

    def python_ok(self, what: str, spec: SpecifierSet, listed: tuple[str, ...] = ()) -> bool:
        py = self.target.python
        if listed and py not in listed:
            self.reject(what, f"no wheels for Python {py} (has {', '.join(listed)})")
            return False
        if len(spec) and not _contains(spec, py + ".0"):
            self.reject(what, f"requires Python {spec}, not {py}")
            return False
        return True

    def torch_variants(self, rel: TorchRelease) -> list[tuple[str, str]]:
        """(variant, channel) pairs to try for this release, best first."""
        t = self.target
        plat = t.platform
        pypi = rel.pypi_variant(plat)
        out: list[tuple[str, str]] = []
        want_cpu = not t.gpus or self.cons.cuda == "cpu"
        if want_cpu:
            if pypi == "cpu":
                out.append(("cpu", "pypi"))
            elif pypi is not None or t.os != "macos":
                out.append(("cpu", "index"))
            return out
        if t.os == "macos":
            return out
        if pypi and pypi.startswith("cu"):
            out.append((pypi, "pypi"))
        idx = self.db.torch_index(rel.version)
        if idx is not None and plat in ("linux-x86_64", "windows-x86_64", "linux-aarch64"):
            for v in sorted(idx.variants, key=_variant_key, reverse=True):
                if (v, "pypi") not in out:
                    out.append((v, "index"))
            for v in idx.proposed:
                self.reject(
                    f"torch {rel.version}+{v}",
                    "announced for the PyTorch index but not verified there",
                )
        if self.cons.cuda:
            want = "cu" + self.cons.cuda.replace(".", "")
            out = [(v, c) for v, c in out if v == want]
        return out

    def check_torch(self, rel: TorchRelease, variant: str, channel: str) -> TorchChoice | None:
        t = self.target
        what = f"torch {rel.version}+{variant}" + (" (PyPI)" if channel == "pypi" else "")
        index_url = None if channel == "pypi" else self.db.index_url(variant)
        if variant == "cpu":
            return TorchChoice(
                version=rel.version, variant="cpu", channel=channel, index_url=index_url
            )
        cuda = variant[2:-1] + "." + variant[-1]
        if t.driver is None:
            self.reject(what, "no NVIDIA driver")
            return None
        floor, why = self.db.min_driver(cuda, t.os)
        if floor is None or t.driver < floor:
            self.reject(what, f"driver {t.driver} is too old: {why}" if floor else why)
            return None
        build = self.db.torch_build(variant, rel.version, t.platform, channel)
        if build is None:
            self.reject(what, f"its kernel list for {t.platform} is not in the DB (unknown)")
            return None
        coverage = []
        for name, cc in t.gpus:
            how = build.covers(cc)
            if how is None:
                archs = " ".join(f"sm_{a}" for a in build.sass) + "".join(
                    f" compute_{a}" for a in build.ptx
                )
                extra = ""
                if cc[0] * 10 + cc[1] in build.unverified_sass:
                    extra = f" ({_sm(cc)} is claimed by a build script but not verified)"
                self.reject(what, f"no kernels for {name} ({_sm(cc)}); it has {archs}{extra}")
                return None
            coverage.append((_cc_text(cc), how))
        return TorchChoice(
            version=rel.version,
            variant=variant,
            channel=channel,
            index_url=index_url,
            coverage=tuple(coverage),
        )

    # -- bitsandbytes --------------------------------------------------------

    def bnb_releases(self) -> list[BnbRelease]:
        """bitsandbytes releases with a wheel here that accept this Python, newest first."""
        if self._bnb is None:
            plat = self.target.platform
            out = []
            for r in sorted(self.db.bnb_releases, key=lambda r: r.version, reverse=True):
                if self.cons.bnb and not _prefix_match(r.version, self.cons.bnb):
                    continue
                what = f"bitsandbytes {r.version}"
                plats = set(r.platforms)
                if plat not in plats and not (plat == "linux-x86_64" and "any" in plats):
                    self.reject(what, f"no wheel for {plat}")
                    continue
                if not self.python_ok(what, r.requires_python):
                    continue
                out.append(r)
            self._bnb = out
        return self._bnb

    def check_bnb(self, rel: BnbRelease, torch: TorchChoice) -> BnbChoice | None:
        """Check a release from :meth:`bnb_releases` against one torch build."""
        t = self.target
        what = f"bitsandbytes {rel.version}"
        plat = t.platform
        if len(rel.torch) and not _contains(rel.torch, torch.version):
            self.reject(what, f"requires torch {rel.torch}")
            return None
        for bad in self.known_bad:
            if (not bad.torch_variants or torch.variant in bad.torch_variants) and _contains(
                bad.bnb, rel.version
            ):
                self.reject(what, f"known bad: {bad.effect}")
                return None
        libs = self.db.bnb_libs(rel.version, plat)
        rule_row = self.db.loader_rule_row(rel.version)
        if torch.variant == "cpu":
            cpu = [lib for lib in libs if lib.backend in ("cpu", "mps")]
            if not cpu:
                self.reject(what, f"its {plat} wheel has no CPU library")
                return None
            return BnbChoice(version=rel.version, library=cpu[0].file, rule=rule_row.rule)
        assert torch.cuda is not None
        low_cc = min(t.ccs) if t.ccs else (9, 9)
        nocublaslt = bool(rule_row.nocublaslt_below and low_cc < rule_row.nocublaslt_below)
        backend = "cuda-nocublaslt" if nocublaslt else "cuda"
        shipped = tuple(lib.version for lib in libs if lib.backend == backend and lib.version)
        suffix = ".dll" if plat.startswith("windows") else ".so"
        choice = choose_library(
            rule=rule_row.rule,
            torch_cuda=torch.cuda,
            shipped=shipped,
            suffix=suffix,
            nocublaslt=nocublaslt,
        )
        if choice.chosen is None:
            self.reject(
                what, f"its loader finds no library for torch's CUDA {torch.cuda}: {choice.reason}"
            )
            return None
        lib = next(lib for lib in libs if lib.file == choice.chosen)
        coverage = self.bnb_coverage(what, lib, torch)
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
        self, what: str, lib: BnbLibraryRow, torch: TorchChoice
    ) -> tuple[tuple[str, str], ...] | None:
        out = []
        for name, cc in self.target.gpus:
            how = lib.covers(cc)
            if how is None:
                archs = " ".join(f"sm_{a}" for a in lib.sass) or "no SASS"
                ptx = lib.ptx + lib.rel_ptx
                if ptx:
                    archs += " + PTX " + " ".join(f"compute_{a}" for a in ptx)
                self.reject(what, f"{lib.file} has no kernel for {name} ({_sm(cc)}): {archs}")
                return None
            out.append((_cc_text(cc), how))
        del torch
        return tuple(out)

    def complete(
        self, torch: TorchChoice, rel: BnbRelease
    ) -> tuple[BnbChoice, tuple[tuple[str, str], ...]] | None:
        """bitsandbytes ``rel`` with this torch, and the Hugging Face stack, if both fit."""
        bnb = self.check_bnb(rel, torch)
        if bnb is None:
            return None
        stack = self.hf_stack(torch.version, bnb.version)
        return None if stack is None else (bnb, stack)

    # -- Hugging Face ------------------------------------------------------

    def hf_stack(self, torch: Version, bnb: Version) -> tuple[tuple[str, str], ...] | None:
        """Newest transformers/accelerate (+ peft, trl for qlora) that fit."""
        py = self.target.python + ".0"
        names = ["transformers", "accelerate"]
        if self.cons.profile == "qlora":
            names += ["peft", "trl"]
        pinned: dict[str, Version] = {"torch": torch, "bitsandbytes": bnb}
        floors = self.floors("bitsandbytes", bnb)
        for n, s in floors:
            if n in pinned and not _contains(s, pinned[n]):
                self.reject(f"bitsandbytes {bnb}", f"needs {n}{s}")
                return None
        chosen: list[tuple[str, str]] = []
        for name in names:
            pick = None
            for rel in sorted(
                self.db.package_releases(name), key=lambda r: r.version, reverse=True
            ):
                if len(rel.requires_python) and not _contains(rel.requires_python, py):
                    continue
                reqs = list(rel.requires) + list(self.floors(name, rel.version))
                if not all(_fits(n, s, pinned) for n, s in reqs):
                    continue
                if not all(_contains(s, rel.version) for n, s in floors if n == name):
                    continue
                pick = rel.version
                break
            if pick is None:
                self.reject(
                    f"{name} for torch {torch} + bitsandbytes {bnb}",
                    f"no {name} release fits Python {self.target.python}, this torch "
                    "and the floors in the DB",
                )
                return None
            pinned[name] = pick
            floors = floors + self.floors(name, pick)
            chosen.append((name, str(pick)))
        return tuple(chosen)

    def floors(self, package: str, version: Version) -> tuple[tuple[str, SpecifierSet], ...]:
        out: list[tuple[str, SpecifierSet]] = []
        for c in self.db.hf_constraints:
            if (
                c.package == package
                and self.cons.profile in c.profiles
                and _contains(c.versions, version)
            ):
                out += c.requires
        return tuple(out)


def _fits(name: str, spec: SpecifierSet, pinned: dict[str, Version]) -> bool:
    if name not in pinned:
        return True
    v = pinned[name]
    return _contains(spec, Version(v.public))


def _variant_key(variant: str) -> tuple[int, int]:
    m = re.fullmatch(r"cu(\d+)(\d)", variant)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _preflight(s: _Search) -> None:
    t, c = s.target, s.cons
    if c.profile not in PROFILES:
        raise NoPlanError(f"--profile {c.profile}: expected one of {', '.join(PROFILES)}")
    if t.os == "macos" and (t.gpus or (c.cuda and c.cuda != "cpu")):
        raise NoPlanError(
            "CUDA is not available on macOS: NVIDIA GPUs and CUDA builds of torch and "
            "bitsandbytes do not exist there.\nWay out: plan without --cuda (torch's MPS/CPU "
            "build with bitsandbytes >= 0.49, which ships a macOS arm64 wheel), or plan for a "
            "Linux machine with --os linux --gpu ... --driver ..."
        )
    if t.jetson and c.cuda != "cpu":
        raise NoPlanError(
            "This is an NVIDIA Jetson (L4T): PyPI's aarch64 torch and bitsandbytes wheels are "
            "SBSA builds that fail there ('named symbol not found').\nWay out: JetPack's own "
            "torch wheels and a bitsandbytes built from source for the Jetson's arch "
            "(https://huggingface.co/docs/bitsandbytes/main/en/installation), or --cuda cpu."
        )
    if t.gpus and t.driver is None:
        raise NoPlanError(
            "GPUs are listed but no NVIDIA driver version is known: pass "
            "--driver VERSION (nvidia-smi prints it)."
        )


def _search(db: CompatDB, target: Target, cons: Constraints) -> tuple[Plan | None, _Search]:
    s = _Search(db=db, target=target, cons=cons)
    _preflight(s)
    if cons.python and target.python != cons.python:
        target = replace(target, python=cons.python)
        s.target = target
        s._bnb = None  # noqa: SLF001 - the candidates depend on the Python version
    candidates: list[tuple[TorchChoice, BnbChoice, tuple[tuple[str, str], ...]]] = []
    for rel in s.torch_releases():
        if not s.python_ok(f"torch {rel.version}", rel.requires_python, rel.pythons):
            continue
        variants = s.torch_variants(rel)
        if not variants:
            s.reject(f"torch {rel.version}", "no build for this platform under the constraints")
        for variant, channel in variants:
            torch = s.check_torch(rel, variant, channel)
            if torch is None:
                continue
            for brel in s.bnb_releases():
                found = s.complete(torch, brel)
                if found is not None:
                    candidates.append((torch, *found))
                    break
        if candidates:
            break
    # a verified combination wins when it qualifies on this machine
    verified_hit = None
    for v in db.verified:
        if v.platform != target.platform or not target.gpus:
            continue
        if any(cc != v.cc for cc in target.ccs):
            continue
        if cons.torch and not _prefix_match(v.torch, cons.torch):
            continue
        if cons.bnb and not _prefix_match(v.bnb, cons.bnb):
            continue
        vrel = next((r for r in db.torch_releases if r.version == v.torch), None)
        if vrel is None or not s.python_ok(
            f"torch {vrel.version}", vrel.requires_python, vrel.pythons
        ):
            continue
        channel = "pypi" if vrel.pypi_variant(target.platform) == v.variant else "index"
        if cons.cuda and v.variant != "cu" + cons.cuda.replace(".", ""):
            continue
        torch = s.check_torch(vrel, v.variant, channel)
        vbnb = next((b for b in s.bnb_releases() if b.version == v.bnb), None)
        if torch is None or vbnb is None:
            continue
        found = s.complete(torch, vbnb)
        if found is not None:
            verified_hit = (torch, *found, v)
            break
    if verified_hit is None and not candidates:
        return None, s
    if verified_hit is not None:
        torch, bnb, stack, ver = verified_hit
    else:
        torch, bnb, stack = candidates[0]
        ver = None
    plan = _explain(s, torch, bnb, stack, ver)
    return plan, s


def _explain(
    s: _Search,
    torch: TorchChoice,
    bnb: BnbChoice,
    stack: tuple[tuple[str, str], ...],
    ver: Verified | None,
) -> Plan:
    t, db = s.target, s.db
    reasons: list[str] = []
    warnings: list[str] = []
    if t.gpus:
        gpus = ", ".join(f"{n} ({_sm(cc)})" for n, cc in t.gpus)
        reasons.append(f"GPUs: {gpus}; driver {t.driver_text}")
    if torch.variant == "cpu":
        reasons.append(
            f"torch {torch.version} CPU build"
            + (" from PyPI" if torch.channel == "pypi" else f" from {torch.index_url}")
            + ("" if t.gpus else ": no NVIDIA GPU on this machine")
        )
    else:
        assert torch.cuda is not None
        _floor, why = db.min_driver(torch.cuda, t.os)
        src = "PyPI (its default build here)" if torch.channel == "pypi" else torch.index_url
        reasons.append(
            f"torch {torch.version}+{torch.variant} from {src}: {why}, and driver "
            f"{t.driver_text} has it; its kernels cover every GPU ("
            + ", ".join(f"{cc} by {how.upper()}" for cc, how in torch.coverage)
            + ")"
        )
    lib = bnb.library or "-"
    reasons.append(
        f"bitsandbytes {bnb.version}: wheel for {t.platform}, accepts torch {torch.version} and "
        f"Python {t.python}; its loader ({bnb.rule} rule) picks {lib}"
        + (" as a same-major fallback" if bnb.fallback else "")
        + (
            ""
            if not bnb.coverage
            else ", whose kernels cover every GPU ("
            + ", ".join(f"{cc} by {how.upper()}" for cc, how in bnb.coverage)
            + ")"
        )
    )
    reasons.append(
        "Hugging Face: "
        + ", ".join(f"{n} {v}" for n, v in stack)
        + f" (newest that fit Python {t.python}, torch and the DB's floors)"
    )
    if ver is not None:
        reasons.insert(
            0,
            f"VERIFIED on {ver.gpu} with driver {ver.driver}: {ver.evidence} "
            f"({ver.source}, {ver.checked})",
        )
    for cc, how in (*torch.coverage, *bnb.coverage):
        if how == "ptx":
            warnings.append(
                f"compute capability {cc} runs only through PTX JIT in this build: "
                "slower first start (kernels are compiled and cached)"
            )
    low = min(t.ccs) if t.ccs else None
    if low is not None:
        if low < db.min_cc("bf16"):
            warnings.append(
                f"{_sm(low)} has no bfloat16: use bnb_4bit_compute_dtype=torch.float16 "
                "(bf16 compute fails with 'expected scalar type Half' or runs slowly)"
            )
        int8 = db.min_cc("llm_int8")
        if low < int8:
            warnings.append(
                f"LLM.int8() (load_in_8bit) needs compute capability "
                f"{_cc_text(int8)}; {_sm(low)} can use 4-bit (NF4/FP4) only"
            )
    if t.os == "windows" and t.msvc_runtime is False:
        warnings.append(
            "vcruntime140.dll is missing: install the Microsoft Visual C++ "
            "Redistributable (x64) or torch and bitsandbytes fail with "
            "'DLL load failed'"
        )
    if t.os == "windows" and torch.variant != "cpu":
        warnings.append(
            "PyPI's torch for Windows is CPU-only: install torch from "
            f"{torch.index_url} (the lock files do this)"
        )
    if t.wsl:
        warnings.append(
            "WSL2: use the Windows NVIDIA driver; do not install a Linux driver inside WSL"
        )
    idx = db.torch_index(torch.version)
    if torch.channel == "index" and idx is None:
        warnings.append("the variant list of this torch release on the index is unknown")
    packages = (("torch", str(torch.version)), ("bitsandbytes", str(bnb.version)), *stack)
    return Plan(
        target=t,
        python=t.python,
        profile=s.cons.profile,
        torch=torch,
        bitsandbytes=bnb,
        packages=packages,
        verified=ver,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        rejected=tuple(_dedupe(s.rejected)),
        constraints=s.cons,
        db_version=db.version,
        snippet=_snippet(t, torch, db.min_cc("bf16")),
    )


def group_rejections(items: list[Rejection] | tuple[Rejection, ...]) -> list[str]:
    """One line per distinct reason: ``torch 2.14.1+cu126, 2.13.0+cu126: driver ... too old``."""
    order: list[str] = []
    groups: dict[str, list[str]] = {}
    for r in items:
        if r.why not in groups:
            order.append(r.why)
            groups[r.why] = []
        if r.what not in groups[r.why]:
            groups[r.why].append(r.what)
    out = []
    for why in order:
        whats = groups[why]
        extra = len(whats) - _SHOWN
        shown = ", ".join(whats[:_SHOWN]) + (f" and {extra} more" if extra > 0 else "")
        out.append(f"{shown}: {why}")
    return out


def _dedupe(items: list[Rejection]) -> list[Rejection]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in items:
        if (r.what, r.why) not in seen:
            seen.add((r.what, r.why))
            out.append(r)
    return out


def _snippet(t: Target, torch: TorchChoice, bf16_cc: tuple[int, int]) -> str:
    low = min(t.ccs) if t.ccs else None
    dtype = "torch.bfloat16" if low is not None and low >= bf16_cc else "torch.float16"
    device = '"auto"' if torch.variant != "cpu" else '"cpu"'
    return (
        "import torch\n"
        "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\n\n"
        "bnb_config = BitsAndBytesConfig(\n"
        "    load_in_4bit=True,\n"
        '    bnb_4bit_quant_type="nf4",\n'
        "    bnb_4bit_use_double_quant=True,\n"
        f"    bnb_4bit_compute_dtype={dtype},\n"
        ")\n"
        "model = AutoModelForCausalLM.from_pretrained(\n"
        f"    MODEL_ID, quantization_config=bnb_config, device_map={device}\n"
        ")\n"
    )


def make_plan(target: Target, db: CompatDB, constraints: Constraints | None = None) -> Plan:
    """Choose the combination for ``target``, or raise :class:`NoPlanError` with the way out."""
    cons = constraints or Constraints()
    plan, search = _search(db, target, cons)
    if plan is not None:
        return plan
    raise NoPlanError(_no_plan_message(db, target, cons, search))


def _no_plan_message(db: CompatDB, target: Target, cons: Constraints, s: _Search) -> str:
    lines = [
        f"no known combination runs on this machine ({target.platform}, Python "
        f"{cons.python or target.python}"
        + (", " + ", ".join(f"{n} {_sm(cc)}" for n, cc in target.gpus) if target.gpus else "")
        + (f", driver {target.driver_text}" if target.driver else "")
        + ")"
    ]
    if cons.describe():
        lines[0] += " under " + " ".join(cons.describe())
    lines.append("Blocking facts:")
    lines += [f"  - {line}" for line in group_rejections(s.rejected)[:15]]
    lines.append("Way out:")
    outs = []
    # 1) a newer driver
    if target.driver is not None and target.gpus:
        floors = sorted(f.windows if target.os == "windows" else f.linux for f in db.families)
        for drv in floors:
            if drv > target.driver:
                plan, _ = _try(db, replace(target, driver=drv, driver_label=None), cons)
                if plan is not None:
                    outs.append(
                        f"install NVIDIA driver >= {drv}: then torch {plan.torch.version}+"
                        f"{plan.torch.variant} with bitsandbytes "
                        f"{plan.bitsandbytes.version} fits"
                    )
                    break
    # 2) relax the pins
    if cons.describe():
        free = Constraints(profile=cons.profile, python=cons.python)
        plan, _ = _try(db, target, free)
        if plan is not None:
            outs.append(
                f"drop {' '.join(c for c in cons.describe() if not c.startswith('--python'))}"
                f": torch {plan.torch.version}+{plan.torch.variant} with bitsandbytes "
                f"{plan.bitsandbytes.version} fits"
            )
    if cons.python:
        plan, _ = _try(db, target, replace(cons, python=None))
        if plan is not None:
            outs.append(
                f"use Python {plan.python}: torch {plan.torch.version}+{plan.torch.variant} fits"
            )
    # 3) the CPU backend
    if target.gpus and cons.cuda != "cpu":
        plan, _ = _try(db, target, replace(cons, cuda="cpu"))
        if plan is not None:
            outs.append(
                f"--cuda cpu: torch {plan.torch.version} CPU build with bitsandbytes "
                f"{plan.bitsandbytes.version}'s CPU backend (slow, but it runs)"
            )
    if not outs:
        outs.append("none found in the DB; see the blocking facts above")
    lines += [f"  - {o}" for o in outs]
    return "\n".join(lines)


def _try(db: CompatDB, target: Target, cons: Constraints) -> tuple[Plan | None, _Search]:
    try:
        return _search(db, target, cons)
    except NoPlanError:
        return None, _Search(db=db, target=target, cons=cons)
