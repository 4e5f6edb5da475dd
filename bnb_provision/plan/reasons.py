"""Why the chosen combination runs here, what to watch for, and how to load a model with it:
a plan's reasons, warnings and ``BitsAndBytesConfig`` snippet."""

from __future__ import annotations

from packaging.version import Version

from bnb_provision.core.cuda import CPU, ComputeCapability
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import Verified
from bnb_provision.plan.model import BnbChoice, Target, TorchChoice

__all__ = ["four_bit_floor", "plan_reasons", "plan_warnings", "snippet"]


def _sm(cc: tuple[int, int]) -> str:
    return ComputeCapability(*cc).sm


def _covered(coverage: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{cc} by {how.upper()}" for cc, how in coverage)


def plan_reasons(
    t: Target,
    db: CompatDB,
    torch: TorchChoice,
    bnb: BnbChoice,
    others: tuple[tuple[str, str], ...],
    verified: Verified | None,
    evidence: tuple[Verified, ...] = (),
    floor: Version | None = None,
) -> tuple[str, ...]:
    """One line per choice: the evidence, the machine, torch, bitsandbytes, the rest."""
    reasons: list[str] = []
    if verified is not None:
        reasons.append(
            f"VERIFIED on {verified.gpu} with driver {verified.driver}: {verified.evidence} "
            f"({verified.source}, {verified.checked})",
        )
    reasons += [
        f"verified on {v.gpu} (driver {v.driver}) with torch {v.torch}+{v.variant} and "
        f"bitsandbytes {v.bnb} ({v.source}, {v.checked}); this plan's torch {torch.version} "
        "is not yet verified on hardware: the newest torch that is safe here wins"
        for v in evidence
    ]
    if t.gpus:
        gpus = ", ".join(f"{n} ({_sm(cc)})" for n, cc in t.gpus)
        driver = f"driver {t.driver_text}" if t.driver is not None else "no driver version given"
        reasons.append(f"GPUs: {gpus}; {driver}")
    reasons.append(_torch_reason(t, db, torch, floor))
    reasons.append(_bnb_reason(t, torch, bnb))
    companions = [(n, v) for n, v in others if n in ("torchvision", "torchaudio")]
    if companions:
        reasons.append(
            ", ".join(f"{n} {v}" for n, v in companions)
            + f": the newest releases whose own metadata requires this torch ({torch.version})"
        )
    stack = [(n, v) for n, v in others if (n, v) not in companions]
    reasons.append(
        "Hugging Face: "
        + ", ".join(f"{n} {v}" for n, v in stack)
        + f" (newest that fit Python {t.python}, torch and the DB's floors)"
    )
    return tuple(reasons)


def _torch_reason(t: Target, db: CompatDB, torch: TorchChoice, floor: Version | None) -> str:
    if torch.variant == CPU:
        what = "MPS build (Apple GPU through Metal)" if torch.mps else "CPU build"
        return (
            f"torch {torch.version} {what}"
            + (" from PyPI" if torch.channel == "pypi" else f" from {torch.index_url}")
            + ("" if t.gpus or torch.mps else ": no NVIDIA GPU on this machine")
        )
    assert torch.cuda is not None
    _floor, why = db.min_driver(torch.cuda, t.os)
    src = "PyPI (its default build here)" if torch.channel == "pypi" else torch.index_url
    has = f", and driver {t.driver_text} has it" if t.driver is not None else ""
    if floor is not None and _floor is not None and floor > _floor:
        has += f"; PTX JIT needs driver >= {floor}"
    return (
        f"torch {torch.version}+{torch.variant} from {src}: {why}{has}; its kernels "
        f"cover every GPU ({_covered(torch.coverage)})"
    )


def _bnb_reason(t: Target, torch: TorchChoice, bnb: BnbChoice) -> str:
    lib = bnb.library or "-"
    where = f" from {bnb.index_url} (third-party)" if bnb.index_url else ""
    return (
        f"bitsandbytes {bnb.version}{where}: wheel for {t.platform}, accepts torch "
        f"{torch.version} and Python {t.python}; its loader ({bnb.rule} rule) picks {lib}"
        + (" as a same-major fallback" if bnb.fallback else "")
        + (
            ""
            if not bnb.coverage
            else f", whose kernels cover every GPU ({_covered(bnb.coverage)})"
        )
    )


def plan_warnings(t: Target, db: CompatDB, torch: TorchChoice, bnb: BnbChoice) -> tuple[str, ...]:
    """What works, but not as well as it could, or needs a step of the user's."""
    return (
        *_fact_warnings(torch, bnb),
        *_gpu_warnings(t, db, torch, bnb),
        *_platform_warnings(t, db, torch),
    )


def _fact_warnings(torch: TorchChoice, bnb: BnbChoice) -> list[str]:
    """What the plan rests on that the DB cannot vouch for."""
    warnings = []
    if torch.unverified:
        warnings.append(
            f"pinned on an unverified fact: {torch.unverified}; lock fails with a clear "
            "message if the index does not have it"
        )
    if bnb.index_url:
        warnings.append(
            f"bitsandbytes {bnb.version} comes from {bnb.index_url}, an unmaintained "
            "third-party index (official Windows wheels start at 0.43.0): its libraries' "
            "kernels are not in the DB, so GPU coverage is not checked; only bitsandbytes "
            "is taken from there"
        )
    return warnings


def four_bit_floor(db: CompatDB, bnb: Version) -> tuple[tuple[int, int], str]:
    """The compute capability NF4/FP4 needs under bitsandbytes ``bnb``, and what says so:
    the release's own documentation, else (a release that documents none) the current."""
    row = db.feature_row("nf4_fp4", bnb)
    cc = ComputeCapability(*row.min_cc)
    if row.bnb is not None and not row.bnb.contains(bnb, prereleases=True):
        return row.min_cc, (
            f"bitsandbytes {bnb} documents no floor for it, and the current documentation "
            f"says {cc} and up ({row.source})"
        )
    says = f"bitsandbytes {bnb} documents it from compute capability {cc} ({row.source})"
    return row.min_cc, says


def _gpu_warnings(t: Target, db: CompatDB, torch: TorchChoice, bnb: BnbChoice) -> list[str]:
    warnings = [
        f"{who} reach compute capability {cc} only through PTX JIT: slower first start "
        "(kernels are compiled and cached), and the driver must be at least as new as the "
        "toolkit that built them"
        for who, coverage in (
            (f"torch {torch.label}'s kernels", torch.coverage),
            (f"{bnb.library}'s kernels", bnb.coverage),
        )
        for cc, how in coverage
        if how == "ptx"
    ]
    if not t.ccs:
        return warnings
    low = min(t.ccs)
    if low < db.min_cc("bf16"):
        warnings.append(
            f"{_sm(low)} has no bfloat16: use bnb_4bit_compute_dtype=torch.float16 "
            "(bf16 compute fails with 'expected scalar type Half' or runs slowly)"
        )
    four, says = four_bit_floor(db, bnb.version)
    current = db.feature_row("nf4_fp4")
    if low < four:
        warnings.append(f"4-bit (NF4/FP4) is not promised on {_sm(low)}: {says}")
    elif low < current.min_cc:
        warnings.append(
            f"4-bit on {_sm(low)} rests on older documentation: {says}; bitsandbytes "
            f"{current.bnb or ''} documents {ComputeCapability(*current.min_cc)} and up "
            f"({current.source}): newer releases will not serve this GPU"
        )
    int8 = db.min_cc("llm_int8", bnb.version)
    if low < int8:
        warnings.append(
            f"LLM.int8() (load_in_8bit) needs compute capability "
            f"{ComputeCapability(*int8)}; {_sm(low)} "
            + ("can use 4-bit (NF4/FP4) only" if low >= four else "can use neither")
        )
    return warnings


def _platform_warnings(t: Target, db: CompatDB, torch: TorchChoice) -> list[str]:
    warnings = []
    if t.os == "windows" and t.msvc_runtime is False:
        warnings.append(
            "vcruntime140.dll is missing: install the Microsoft Visual C++ "
            "Redistributable (x64) or torch and bitsandbytes fail with "
            "'DLL load failed'"
        )
    if t.os == "windows" and torch.variant != CPU:
        warnings.append(
            "PyPI's torch for Windows is CPU-only: install torch from "
            f"{torch.index_url} (the lock files do this)"
        )
    if t.wsl:
        warnings.append(
            "WSL2: use the Windows NVIDIA driver; do not install a Linux driver inside WSL"
        )
    if t.os == "macos" and t.os_version is None:
        warnings.append(
            "the macOS release is not known (--os-version 13, for example): the wheels "
            "planned here need the release their platform tags name (torch and bitsandbytes "
            "ship macOS 14 wheels only in recent releases)"
        )
    if torch.channel == "index" and db.torch_index(torch.version) is None:
        warnings.append("the variant list of this torch release on the index is unknown")
    return warnings


def snippet(t: Target, db: CompatDB, torch: TorchChoice, bnb: BnbChoice) -> str:
    """The ``BitsAndBytesConfig`` that loads a model in 4-bit with this plan; bf16 compute
    where every GPU has it (the DB's floor). Empty where bitsandbytes does not document
    4-bit for the GPU."""
    low = min(t.ccs) if t.ccs else None
    if low is not None and low < four_bit_floor(db, bnb.version)[0]:
        return ""
    dtype = "torch.bfloat16" if low is not None and low >= db.min_cc("bf16") else "torch.float16"
    device = '"auto"' if torch.variant != CPU else '"cpu"'
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
