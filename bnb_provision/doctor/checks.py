"""doctor and explain: name the cause and the fix of a broken stack.

:func:`diagnose` looks at a machine snapshot with its ``env`` part (what
``detect --python`` reads), in the order failures happen in practice:

1. bitsandbytes' native library against torch's CUDA runtime;
2. Windows installs;
3. compute capability against the kernels really present;
4. memory for a quantized load (when a model size is given);
5. other quantization libraries in the same environment;

then a driver too old for torch's build, CPU-only torch on a GPU machine,
macOS, the Hugging Face floors, bf16 on GPUs without it, and drift from the
environment's stamp. :func:`explain_text` maps error text to the same findings.
Both are pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.db.model import CompatDB
from bnb_provision.detect.fatbin import describe_archs
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.target import GPTQ_AWQ
from bnb_provision.doctor.findings import Finding
from bnb_provision.doctor.memory import GPU_SHARE, ModelShape, estimate_peak_bytes, mib
from bnb_provision.env.stamp import Stamp, machine_drift
from bnb_provision.plan.analysis import bnb_load_report
from bnb_provision.plan.loader import cuda_tag

__all__ = ["DoctorOptions", "diagnose", "explain_text"]

REBUILD: Final = "bnb-provision rebuild"
_SEVERITY_ORDER: Final = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, kw_only=True, slots=True)
class DoctorOptions:
    model: ModelShape | None = None
    quant: str = "nf4"
    stamp: Stamp | None = None


def _v(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def diagnose(
    machine: Machine, db: CompatDB, options: DoctorOptions | None = None
) -> tuple[Finding, ...]:
    """All findings for ``machine`` (and its target environment), most likely first."""
    opts = options or DoctorOptions()
    checks: list[Callable[[Machine, CompatDB, DoctorOptions], list[Finding]]] = [
        _check_runtime,
        _check_windows,
        _check_arch,
        _check_memory,
        _check_quant_libs,
        _check_driver,
        _check_cpu_only,
        _check_macos,
        _check_hf,
        _check_dtype,
        _check_drift,
    ]
    found = [
        (_SEVERITY_ORDER[f.severity], order, f)
        for order, check in enumerate(checks)
        for f in check(machine, db, opts)
    ]
    found.sort(key=lambda t: (t[0], t[1]))
    return tuple(f for _, _, f in found)


# -- 1. bitsandbytes' library vs torch's CUDA -------------------------------------


def _cudart_majors(paths: tuple[str, ...], ld_library_path: str | None) -> set[int]:
    majors = set()
    for p in paths:
        m = re.search(r"(?:libcudart\.so\.|cudart64_)(\d+)", p)
        if m:
            majors.add(int(m.group(1)[:2]) if len(m.group(1)) > 2 else int(m.group(1)))  # noqa: PLR2004
    if ld_library_path:
        for part in ld_library_path.split(":"):
            m = re.search(r"cuda-?(\d+)(?:\.\d+)?", part)
            if m:
                majors.add(int(m.group(1)))
    return majors


def _check_runtime(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    if env is None or env.bitsandbytes is None or env.torch is None or env.torch.cuda is None:
        return []
    report = bnb_load_report(m, db)
    if report is None or report.choice is None:
        return []
    c = report.choice
    bnb, torch = env.bitsandbytes, env.torch
    out: list[Finding] = []
    assert torch.cuda is not None
    torch_major = int(torch.cuda.split(".")[0])
    if c.override is not None:
        forced = c.override
        forced_major = int(forced[:-1]) if forced.isdigit() else None
        evidence = [
            f"BNB_CUDA_VERSION={forced} is set",
            f"torch {torch.version} uses CUDA {torch.cuda}",
            c.reason,
        ]
        if c.chosen is None:
            out.append(
                Finding(
                    id="bnb-cuda-version-forces-missing-library",
                    category="cuda_runtime_mismatch",
                    severity="error",
                    title=f"BNB_CUDA_VERSION={forced} forces a library this "
                    f"bitsandbytes {bnb.version} does not ship",
                    evidence=tuple(evidence),
                    fix="unset BNB_CUDA_VERSION",
                    source=db.loader_rule_row(bnb.version).source,
                )
            )
        elif forced_major is not None and forced_major != torch_major:
            have = _cudart_majors(env.cudart, env.variable("LD_LIBRARY_PATH"))
            evidence.append(
                "CUDA runtimes in the environment: "
                + (", ".join(f"{x}.x" for x in sorted(have)) or "none found")
            )
            if forced_major not in have:
                evidence.append(
                    f"{c.chosen} needs libcudart.so.{forced_major}, which is not "
                    "there: import logs 'cannot open shared object file' and the "
                    "first GPU call fails"
                )
            out.append(
                Finding(
                    id="bnb-cuda-version-mismatch",
                    category="cuda_runtime_mismatch",
                    severity="error",
                    title=f"BNB_CUDA_VERSION={forced} loads a CUDA {forced_major}.x library "
                    f"under torch's CUDA {torch.cuda}",
                    evidence=tuple(evidence),
                    fix="unset BNB_CUDA_VERSION (bitsandbytes then loads "
                    f"libbitsandbytes_cuda{cuda_tag(torch.cuda)} or its same-major fallback)",
                    source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/760",
                )
            )
        return out
    if c.chosen is None:
        rule = db.loader_rule_row(bnb.version)
        shipped = sorted(lib.version or "" for lib in bnb.libraries if lib.backend == "cuda")
        stale = ""
        stamps = dict(env.installed_at)
        if stamps.get("bitsandbytes", 0) and stamps.get("torch", 0) > stamps["bitsandbytes"]:
            stale = (
                "bitsandbytes was installed before the current torch: torch was upgraded after it"
            )
        evidence = [
            f"torch {torch.version} uses CUDA {torch.cuda}",
            f"bitsandbytes {bnb.version} ships CUDA libraries: " + (", ".join(shipped) or "none"),
            f"loader ({rule.rule} rule): {c.reason}; {rule.missing}",
        ]
        if stale:
            evidence.append(stale)
        out.append(
            Finding(
                id="no-bnb-library-for-torch-cuda",
                category="cuda_runtime_mismatch",
                severity="error",
                title=f"bitsandbytes {bnb.version} has no library for torch's CUDA {torch.cuda}",
                evidence=tuple(evidence),
                fix=REBUILD + " (or bnb-provision plan to see the versions)",
                source=rule.source,
            )
        )
    elif c.fallback:
        out.append(
            Finding(
                id="bnb-library-fallback",
                category="cuda_runtime_mismatch",
                severity="info",
                title=f"bitsandbytes loads {c.chosen} for torch's CUDA {torch.cuda}",
                evidence=(c.reason,),
                source=db.loader_rule_row(bnb.version).source,
            )
        )
    return out


# -- 2. Windows -----------------------------------------------------------------------


def _check_windows(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    if m.os.system != "windows":
        return []
    out: list[Finding] = []
    if m.os.msvc_runtime is False:
        out.append(
            Finding(
                id="msvc-runtime-missing",
                category="windows_install",
                severity="error",
                title="the Microsoft Visual C++ runtime (vcruntime140.dll) is missing",
                evidence=("System32\\vcruntime140.dll not found",),
                fix="install the Visual C++ Redistributable (x64): https://aka.ms/vs/17/release/vc_redist.x64.exe",
                source="https://github.com/pytorch/pytorch/issues/32916",
            )
        )
    env = m.env
    if env is None:
        return out
    bnb_v = _v(env.version_of("bitsandbytes"))
    floor = db.bnb_os_floor("windows")  # the first official Windows wheels
    if env.version_of("bitsandbytes-windows"):
        out.append(
            Finding(
                id="bnb-windows-fork",
                category="windows_install",
                severity="error",
                title="a third-party 'bitsandbytes-windows' build is installed",
                evidence=(f"bitsandbytes-windows {env.version_of('bitsandbytes-windows')}",),
                fix="pip uninstall bitsandbytes-windows; then install official wheels "
                f"(bitsandbytes >= {floor}): " + REBUILD,
                source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/1058",
            )
        )
    if bnb_v is not None and bnb_v < floor:
        legacy = str(bnb_v) in db.bnb_windows_legacy_versions
        out.append(
            Finding(
                id="bnb-before-official-windows",
                category="windows_install",
                severity="error",
                title=f"bitsandbytes {bnb_v} predates official Windows support ({floor})",
                evidence=(
                    f"bitsandbytes {bnb_v}"
                    + (
                        " (a build from the unmaintained third-party "
                        f"index {db.bnb_windows_legacy_index})"
                        if legacy
                        else ""
                    ),
                ),
                fix=f"install bitsandbytes >= {floor} with a CUDA torch from download.pytorch.org: "
                + REBUILD
                + "; or use WSL2",
                source="https://github.com/jllllll/bitsandbytes-windows-webui",
            )
        )
    if (
        env.bitsandbytes
        and env.bitsandbytes.libraries
        and not any(lib.file.endswith(".dll") for lib in env.bitsandbytes.libraries)
    ):
        out.append(
            Finding(
                id="bnb-linux-libraries-on-windows",
                category="windows_install",
                severity="error",
                title="the installed bitsandbytes holds Linux libraries only",
                evidence=tuple(lib.file for lib in env.bitsandbytes.libraries[:4]),
                fix=f"install official Windows wheels (bitsandbytes >= {floor}): " + REBUILD,
            )
        )
    return out


# -- 3. compute capability -------------------------------------------------------------


def _check_arch(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    out: list[Finding] = []
    if env is None or not m.gpus:
        return out
    report = bnb_load_report(m, db) if env.bitsandbytes else None
    if report is not None and report.choice is not None and report.choice.chosen:
        lib = next(
            (
                x
                for x in env.bitsandbytes.libraries  # type: ignore[union-attr]
                if x.file == report.choice.chosen
            ),
            None,
        )
        for idx, how in report.coverage:
            gpu = m.gpus[idx] if idx < len(m.gpus) else None
            if gpu is None or lib is None or lib.kernels is None:
                continue
            archs = describe_archs(lib.kernels.sass, lib.kernels.ptx + lib.kernels.rel_ptx)
            if how is None:
                out.append(
                    Finding(
                        id="bnb-arch-not-compiled",
                        category="arch_not_compiled",
                        severity="error",
                        title=f"{lib.file} has no kernels for GPU {gpu.index} "
                        f"({gpu.name}, {gpu.sm})",
                        evidence=(
                            f"{lib.file} (read from the binary): {archs}",
                            f"GPU {gpu.index}: {gpu.name}, compute capability {gpu.cc_text}",
                        ),
                        fix=REBUILD
                        + f" (bnb-provision plan --gpu {gpu.cc_text} shows which builds cover it)",
                        source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/223",
                    )
                )
            elif how == "ptx":
                out.append(
                    Finding(
                        id="bnb-arch-ptx-only",
                        category="arch_not_compiled",
                        severity="warning",
                        title=f"{lib.file} reaches GPU {gpu.index} ({gpu.sm}) only through PTX JIT",
                        evidence=(
                            f"{lib.file}: {archs}",
                            (
                                "the first run compiles kernels (slow start, cached afterwards); "
                                "needs a driver at least as new as the toolkit that built the PTX"
                            ),
                        ),
                        fix=REBUILD + " (a build with native SASS for this GPU)",
                    )
                )
    torch = env.torch
    if torch is not None and torch.cuda is not None:
        tv = _v(torch.version)
        if tv is not None:
            plat = f"{m.os.system}-{m.os.arch}"
            base = Version(tv.public)
            build = db.torch_build(torch.variant, base, plat, "pypi") or db.torch_build(
                torch.variant, base, plat, "index"
            )
            for gpu in m.gpus:
                cc = gpu.compute_capability
                if build is None or cc is None:
                    continue
                if build.covers(cc) is None:
                    out.append(
                        Finding(
                            id="torch-arch-not-compiled",
                            category="arch_not_compiled",
                            severity="error",
                            title=f"torch {torch.version} has no kernels for GPU {gpu.index} "
                            f"({gpu.name}, {gpu.sm})",
                            evidence=(
                                f"torch {torch.variant} arch list (compat DB): "
                                + describe_archs(build.sass, build.ptx),
                                f"source: {build.source}",
                            ),
                            fix=REBUILD + f" (bnb-provision plan --gpu {gpu.cc_text})",
                            source=build.source,
                        )
                    )
    return out


# -- 4. memory -------------------------------------------------------------------------


def _check_memory(m: Machine, _db: CompatDB, o: DoctorOptions) -> list[Finding]:
    if o.model is None:
        return []
    peak, weights = estimate_peak_bytes(o.model, o.quant)
    evidence = [
        f"model: {o.model.params / 1e9:.2f}B parameters ({o.model.source}), {o.quant}",
        f"estimated weights {mib(weights)} MiB, load-time peak {mib(peak)} MiB"
        + (
            " (lower bound: no config.json, largest tensor unknown)"
            if o.model.largest_tensor is None
            else ""
        ),
    ]
    if not m.gpus:
        return [
            Finding(
                id="no-gpu-for-quant-load",
                category="oom_on_quant_load",
                severity="warning",
                title="no NVIDIA GPU: a bitsandbytes load runs on the CPU backend",
                evidence=tuple(evidence),
            )
        ]
    offers = []
    for g in m.gpus:
        free = g.memory_free_mib if g.memory_free_mib is not None else g.memory_total_mib
        if free is None:
            continue
        offers.append((g, free * GPU_SHARE))
        evidence.append(
            f"GPU {g.index} {g.name}: {free} MiB "
            + ("free" if g.memory_free_mib is not None else "total (free unknown)")
            + f", {int(free * GPU_SHARE)} MiB usable (transformers keeps 10% back)"
        )
    if not offers:
        return []
    peak_mib = peak / 1024 / 1024
    best = max(offers, key=lambda t: t[1])
    total = sum(x for _, x in offers)
    config_fix = (
        "max_memory={"
        + ", ".join(f"{g.index}: '{int(x // 1024)}GiB'" for g, x in offers)
        + ", 'cpu': '64GiB'} with device_map='auto'"
    )
    if peak_mib <= best[1]:
        return [
            Finding(
                id="quant-load-fits",
                category="oom_on_quant_load",
                severity="info",
                title=f"the {o.quant} load fits on GPU {best[0].index}",
                evidence=tuple(evidence),
            )
        ]
    if peak_mib <= total:
        return [
            Finding(
                id="quant-load-needs-split",
                category="oom_on_quant_load",
                severity="warning",
                title=f"the {o.quant} load fits only split across {len(offers)} GPUs",
                evidence=tuple(evidence),
                fix=f"load with device_map='auto' and {config_fix}",
                source="https://huggingface.co/docs/transformers/main/en/quantization/bitsandbytes",
            )
        ]
    return [
        Finding(
            id="quant-load-oom",
            category="oom_on_quant_load",
            severity="error",
            title=f"the {o.quant} load needs ~{mib(peak)} MiB; the GPUs offer {int(total)} MiB",
            evidence=tuple(evidence),
            fix="use a pre-quantized checkpoint (no 16-bit materialization), a smaller model, or "
            "CPU offload: BitsAndBytesConfig(..., llm_int8_enable_fp32_cpu_offload=True) with "
            + config_fix,
            source="https://huggingface.co/docs/transformers/main/en/quantization/bitsandbytes",
        )
    ]


# -- 5. other quantization stacks ----------------------------------------------------


def _check_quant_libs(m: Machine, _db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    if env is None:
        return []
    others = [(n, v) for n, v in env.quant_libs if n in GPTQ_AWQ]
    if not others or env.bitsandbytes is None:
        return []
    return [
        Finding(
            id="conflicting-quant-libs",
            category="conflicting_quant_libs",
            severity="warning",
            title="GPTQ/AWQ libraries share this environment with bitsandbytes",
            evidence=(
                *(f"{n} {v}" for n, v in others),
                (
                    "these pin their own torch builds and compiled kernels: installing or "
                    "upgrading one replaces the torch bitsandbytes was chosen for"
                ),
            ),
            fix="keep one environment per stack: bitsandbytes in .venv-bnb, GPTQ/AWQ in their own "
            "(pip uninstall " + " ".join(n for n, _ in others) + " here)",
            source="https://github.com/AutoGPTQ/AutoGPTQ/issues/291",
        )
    ]


# -- the rest --------------------------------------------------------------------------


def _check_driver(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    if env is None or env.torch is None or env.torch.cuda is None or m.nvidia is None:
        return []
    driver = _v(m.nvidia.driver)
    floor, why = db.min_driver(env.torch.cuda, m.os.system)
    if driver is None or floor is None or driver >= floor:
        return []
    return [
        Finding(
            id="driver-too-old",
            category="driver_too_old",
            severity="error",
            title=f"driver {m.nvidia.driver} cannot run torch's CUDA {env.torch.cuda} build",
            evidence=(f"torch {env.torch.version}", why),
            fix=f"install NVIDIA driver >= {floor}, or {REBUILD} (picks a build this driver runs)",
            source=next(
                (f.source for f in db.families if str(f.major) == env.torch.cuda.split(".")[0]),
                None,
            ),
        )
    ]


def _check_cpu_only(m: Machine, _db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    if env is None or env.torch is None or not m.gpus or env.torch.cuda or env.torch.hip:
        return []
    where = (
        "PyPI's torch for Windows is always a CPU build"
        if m.os.system == "windows"
        else "a CPU-only torch build is installed"
    )
    return [
        Finding(
            id="cpu-only-torch",
            category="cpu_only_build",
            severity="error",
            title=f"torch {env.torch.version} is a CPU build on a machine with "
            f"{len(m.gpus)} NVIDIA GPU(s)",
            evidence=(where, f"GPU 0: {m.gpus[0].name}"),
            fix=REBUILD + " (installs torch from the PyTorch CUDA index for this driver)",
            source="https://github.com/pytorch/pytorch/issues/28111",
        )
    ]


def _check_macos(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    if m.os.system != "macos":
        return []
    floor = db.bnb_os_floor("macos")  # the first macOS wheel
    out = [
        Finding(
            id="macos-no-cuda",
            category="other",
            severity="info",
            title="macOS has no CUDA: bitsandbytes runs its CPU/MPS backend",
            evidence=(f"bitsandbytes ships a macOS arm64 wheel from {floor}",),
        )
    ]
    bnb = _v(m.env.version_of("bitsandbytes")) if m.env else None
    if bnb is not None and bnb < floor:
        out.append(
            Finding(
                id="macos-old-bnb",
                category="other",
                severity="error",
                title=f"bitsandbytes {bnb} has no macOS build",
                evidence=(f"bitsandbytes {bnb}",),
                fix=f"install bitsandbytes >= {floor}: " + REBUILD,
            )
        )
    return out


def _check_hf(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    env = m.env
    if env is None:
        return []
    installed = {n: _v(v) for n, v in env.packages}
    out: list[Finding] = []
    for c in db.hf_constraints:
        have = installed.get(c.package)
        if have is None or not c.versions.contains(have, prereleases=True):
            continue
        for name, spec in c.requires:
            other = installed.get(name)
            if other is None or spec.contains(other, prereleases=True):
                continue
            out.append(
                Finding(
                    id=f"hf-floor-{c.package}-{name}",
                    category="hf_stack",
                    severity="error"
                    if "qlora" not in c.profiles or "inference" in c.profiles
                    else "warning",
                    title=f"{c.package} {have} needs {name}{spec}; {other} is installed",
                    evidence=(c.note,),
                    fix=f"pip install '{name}{spec}' (or {REBUILD})",
                    source=c.source,
                )
            )
    tr = installed.get("transformers")
    if tr is not None and installed.get("accelerate") is None and env.bitsandbytes is not None:
        need = next(
            (
                s
                for c in db.hf_constraints
                if c.package == "transformers" and c.versions.contains(tr)
                for n, s in c.requires
                if n == "accelerate"
            ),
            SpecifierSet(),
        )
        out.append(
            Finding(
                id="hf-accelerate-missing",
                category="hf_stack",
                severity="error",
                title="accelerate is missing: transformers loads bitsandbytes models through it",
                evidence=(f"transformers {tr}",),
                fix=f"pip install 'accelerate{need}'",
            )
        )
    return out


def _check_dtype(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    bf16 = db.min_cc("bf16")
    low = [g for g in m.gpus if g.compute_capability and g.compute_capability < bf16]
    if not low:
        return []
    g = low[0]
    return [
        Finding(
            id="no-bf16",
            category="dtype",
            severity="info",
            title=f"GPU {g.index} ({g.name}, {g.sm}) has no bfloat16",
            evidence=("bf16 compute fails with 'expected scalar type Half' or runs emulated",),
            fix="use bnb_4bit_compute_dtype=torch.float16 and fp16 (not bf16) training",
        )
    ]


def _check_drift(m: Machine, _db: CompatDB, o: DoctorOptions) -> list[Finding]:
    s = o.stamp
    if s is None:
        return []
    changes = machine_drift(s, m)
    env = m.env
    if env is not None:
        if env.torch is not None and s.torch and s.torch != env.torch.version:
            changes.append(f"torch {s.torch} -> {env.torch.version}")
        bnb = env.version_of("bitsandbytes")
        if s.bitsandbytes and bnb and s.bitsandbytes != bnb:
            changes.append(f"bitsandbytes {s.bitsandbytes} -> {bnb}")
    if not changes:
        return []
    return [
        Finding(
            id="stamp-drift",
            category="drift",
            severity="warning",
            title="the machine or environment changed since it was built and verified",
            evidence=(f"stamp written {s.created}", *changes),
            fix=REBUILD + " (re-plans, rebuilds beside the old one, verifies, then swaps)",
        )
    ]


# -- explain --------------------------------------------------------------------------


def _facts_suffix(db: CompatDB, category: str, groups: dict[str, str]) -> list[str]:
    out = []
    sm = groups.get("sm")
    if category == "arch_not_compiled" and sm and sm.isdigit():
        cc = (int(sm[:-1]), int(sm[-1]))
        variants = sorted(
            {f"{b.variant} (torch {b.torch})" for b in db.torch_builds if b.covers(cc) == "sass"}
        )
        if variants:
            out.append(f"torch builds with sm_{sm} kernels: " + "; ".join(variants))
        libs = [r for r in db.bnb_libraries if r.backend == "cuda" and r.covers(cc) == "sass"]
        if libs:
            first = min(libs, key=lambda r: r.bnb)
            out.append(f"first bitsandbytes with sm_{sm} SASS: {first.bnb} ({first.file})")
    return out


def explain_text(text: str, db: CompatDB) -> tuple[Finding, ...]:
    """Match an error message or a whole traceback against the DB's error patterns."""
    found: list[Finding] = []
    seen: set[str] = set()
    for p in db.errors:
        match = p.pattern.search(text)
        if match is None or p.id in seen:
            continue
        seen.add(p.id)
        groups = {k: v for k, v in match.groupdict().items() if v}
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : line_end if line_end >= 0 else len(text)].strip()
        fmt = {
            "sm": "?",
            "cuda": "?",
            "lib": "the library",
            "cudamajor": "N",
            "minver": "",
            "minver2": "",
            "alloc": "",
            **groups,
        }
        evidence = [line[:300], p.explanation.format(**fmt)]
        evidence += _facts_suffix(db, p.category, groups)
        found.append(
            Finding(
                id=p.id,
                category=p.category,
                severity="error",
                title=p.title,
                evidence=tuple(evidence),
                fix=p.fix.format(**fmt),
                source=p.source,
            )
        )
    if not found and text.strip():
        found.append(
            Finding(
                id="unrecognized",
                category="other",
                severity="info",
                title="no known bitsandbytes / torch / CUDA error in this text",
                evidence=(text.strip().splitlines()[-1][:300],),
                fix="bnb-provision doctor --python PATH inspects the environment",
            )
        )
    return tuple(found)
