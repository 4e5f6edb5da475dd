"""Why the chosen combination runs here, what to watch for, and how to load a model with it:
a plan's reasons, warnings and ``BitsAndBytesConfig`` snippet."""

from __future__ import annotations

from bnb_provision.core.cuda import CPU, ComputeCapability
from bnb_provision.db.model import CompatDB
from bnb_provision.db.rows import Verified
from bnb_provision.plan.model import BnbChoice, Target, TorchChoice

__all__ = ["plan_reasons", "plan_warnings", "snippet"]


def _sm(cc: tuple[int, int]) -> str:
    return ComputeCapability(*cc).sm


def _covered(coverage: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{cc} by {how.upper()}" for cc, how in coverage)


def plan_reasons(
    t: Target,
    db: CompatDB,
    torch: TorchChoice,
    bnb: BnbChoice,
    stack: tuple[tuple[str, str], ...],
    verified: Verified | None,
) -> tuple[str, ...]:
    """One line per choice: the machine, torch, bitsandbytes, the Hugging Face stack."""
    reasons: list[str] = []
    if verified is not None:
        reasons.append(
            f"VERIFIED on {verified.gpu} with driver {verified.driver}: {verified.evidence} "
            f"({verified.source}, {verified.checked})",
        )
    if t.gpus:
        gpus = ", ".join(f"{n} ({_sm(cc)})" for n, cc in t.gpus)
        reasons.append(f"GPUs: {gpus}; driver {t.driver_text}")
    reasons.append(_torch_reason(t, db, torch))
    lib = bnb.library or "-"
    reasons.append(
        f"bitsandbytes {bnb.version}: wheel for {t.platform}, accepts torch {torch.version} and "
        f"Python {t.python}; its loader ({bnb.rule} rule) picks {lib}"
        + (" as a same-major fallback" if bnb.fallback else "")
        + (
            ""
            if not bnb.coverage
            else f", whose kernels cover every GPU ({_covered(bnb.coverage)})"
        )
    )
    reasons.append(
        "Hugging Face: "
        + ", ".join(f"{n} {v}" for n, v in stack)
        + f" (newest that fit Python {t.python}, torch and the DB's floors)"
    )
    return tuple(reasons)


def _torch_reason(t: Target, db: CompatDB, torch: TorchChoice) -> str:
    if torch.variant == CPU:
        return (
            f"torch {torch.version} CPU build"
            + (" from PyPI" if torch.channel == "pypi" else f" from {torch.index_url}")
            + ("" if t.gpus else ": no NVIDIA GPU on this machine")
        )
    assert torch.cuda is not None
    _floor, why = db.min_driver(torch.cuda, t.os)
    src = "PyPI (its default build here)" if torch.channel == "pypi" else torch.index_url
    return (
        f"torch {torch.version}+{torch.variant} from {src}: {why}, and driver "
        f"{t.driver_text} has it; its kernels cover every GPU ({_covered(torch.coverage)})"
    )


def plan_warnings(t: Target, db: CompatDB, torch: TorchChoice, bnb: BnbChoice) -> tuple[str, ...]:
    """What works, but not as well as it could, or needs a step of the user's."""
    return (*_gpu_warnings(t, db, torch, bnb), *_platform_warnings(t, db, torch))


def _gpu_warnings(t: Target, db: CompatDB, torch: TorchChoice, bnb: BnbChoice) -> list[str]:
    warnings = [
        f"compute capability {cc} runs only through PTX JIT in this build: "
        "slower first start (kernels are compiled and cached)"
        for cc, how in (*torch.coverage, *bnb.coverage)
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
    int8 = db.min_cc("llm_int8")
    if low < int8:
        warnings.append(
            f"LLM.int8() (load_in_8bit) needs compute capability "
            f"{ComputeCapability(*int8)}; {_sm(low)} can use 4-bit (NF4/FP4) only"
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
    if torch.channel == "index" and db.torch_index(torch.version) is None:
        warnings.append("the variant list of this torch release on the index is unknown")
    return warnings


def snippet(t: Target, torch: TorchChoice, bf16_cc: tuple[int, int]) -> str:
    """The ``BitsAndBytesConfig`` that loads a model in 4-bit with this plan; bf16 compute
    where every GPU has it (``bf16_cc``, from the DB)."""
    low = min(t.ccs) if t.ccs else None
    dtype = "torch.bfloat16" if low is not None and low >= bf16_cc else "torch.float16"
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
