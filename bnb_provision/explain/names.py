"""The facts explain reads out of a text, the values it derives from them, and the
conversions a curated row may apply to a message's field to make it a fact.

A ``{name}`` in a curated title, explanation or fix must be one of :data:`FACTS` or
:data:`DERIVED`; the loader rejects any other, so no text can reach the user with a
placeholder in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from bnb_provision.core.text import is_digits

__all__ = [
    "ALWAYS",
    "CONVERSIONS",
    "DERIVED",
    "FACTS",
    "cuda_from_int",
    "cuda_from_tag",
    "normal_cc",
]

FACTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "os": "linux, windows, wsl or macos, from path shapes and banners",
        "arch": "x86_64 or aarch64",
        "python": "the Python version (X.Y) of the environment",
        "bnb": "the bitsandbytes version installed",
        "bnb_range": "the bitsandbytes releases whose messages the text holds",
        "bnb_lib": "the bitsandbytes native library named",
        "lib_cuda": "the CUDA version in that library's name (cuda121 -> 12.1)",
        "lib_kind": "cuda, cpu, hip, mps or xpu: the kind of that library",
        "lib_format": "so, dll or dylib: the file format of that library",
        "torch": "the torch version",
        "torch_cuda": "the CUDA version torch was built with",
        "cuda": "a CUDA toolkit or runtime found on the system (not torch's)",
        "driver": "the NVIDIA driver version",
        "driver_cuda": "the newest CUDA the driver supports",
        "compute_capability": "the GPU's compute capability (X.Y)",
        "sm": "the compute capability as sm_XY digits",
        "gpu": "the GPU's name",
        "gpu_memory": "the GPU's total memory as printed",
        "library": "the package whose code raised",
        "extension": "a compiled extension module named in the error",
        "stack": "the quantization or kernel stack that extension belongs to",
        "missing_lib": "a shared library the loader could not open",
        "cuda_major": "the CUDA major version of that library (libcudart.so.11 -> 11)",
        "min_version": "a minimum version a check asks for",
        "transformers": "the transformers version",
        "accelerate": "the accelerate version",
        "peft": "the peft version",
        "trl": "the trl version",
        "triton": "the triton version",
        "vllm": "the vllm version",
        "xformers": "the xformers version",
        "bnb_windows_wheel": "no: every bitsandbytes release the text fits predates Windows wheels",
        "bnb_macos_wheel": "no: every bitsandbytes release the text fits predates macOS wheels",
        "driver_vs_torch": "older: the driver's CUDA is older than the major torch is built for",
        "lib_vs_torch": "other when bitsandbytes' library is for another CUDA major than torch's",
    }
)

DERIVED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "plan_command": "bnb-provision plan with the machine flags the text gives",
        "sm_builds": "the torch builds and the first bitsandbytes with kernels for the GPU",
        "driver_floor": "the driver a CUDA build needs, from the DB",
        "bnb_windows_first": "the first bitsandbytes release with a Windows wheel",
        "bnb_macos_first": "the first bitsandbytes release with a macOS wheel",
        "bnb_with_lib": "the first bitsandbytes release that ships the library named",
    }
)

ALWAYS: Final = frozenset({"plan_command"})
"""Derived values explain can always give: a last variant may use them."""


def cuda_from_tag(tag: str) -> str | None:
    """``118`` -> ``11.8``; ``121`` -> ``12.1``; ``92`` -> ``9.2``; ``11.8`` -> ``11.8``."""
    dotted = re.fullmatch(r"(\d{1,2})\.(\d)", tag.strip())
    if dotted:
        return f"{int(dotted.group(1))}.{dotted.group(2)}"
    digits = re.sub(r"\D", "", tag)
    # CUDA tags: 80 .. 92 (two digits), 100 .. 139 (three)
    if not (len(digits) == 3 and digits[0] == "1") and not (len(digits) == 2 and digits[0] in "89"):  # noqa: PLR2004
        return None
    return f"{int(digits[:-1])}.{digits[-1]}"


def _lib_cuda(value: str) -> str | None:
    """``.../libbitsandbytes_cuda131.so`` -> ``13.1``."""
    m = re.search(r"cuda(\d{2,3})", value.lower())
    return cuda_from_tag(m.group(1)) if m else None


def cuda_from_int(value: str) -> str | None:
    """The CUDA API's integer version: ``11040`` -> ``11.4``; ``6050`` -> ``6.5``."""
    if not is_digits(value):
        return None
    n = int(value)
    return f"{n // 1000}.{n % 1000 // 10}" if n >= 1000 else None  # noqa: PLR2004


def normal_cc(value: str) -> str | None:
    """``8.6``, ``(8, 6)``, ``sm_86``, ``86`` -> ``8.6``."""
    m = re.search(r"(\d{1,2})\s*[.,]\s*(\d)", value)
    if m:
        return f"{int(m.group(1))}.{m.group(2)}"
    m = re.search(r"(?:sm_?)?(\d{1,2})(\d)\b", value)
    return f"{int(m.group(1))}.{m.group(2)}" if m else None


def _basename(value: str) -> str | None:
    name = re.split(r"[\\/]", value.strip("'\"()"))[-1]
    return name.rstrip(".'\")") or None


def _version(value: str) -> str | None:
    m = re.search(r"\d+(?:\.\d+){1,3}(?:\.?(?:dev|post|rc|a|b)\d*)?", value)
    return m.group(0) if m else None


CONVERSIONS: Final[Mapping[str, Callable[[str], str | None]]] = MappingProxyType(
    {
        "text": lambda v: v.strip() or None,
        "cuda_tag": cuda_from_tag,
        "cuda_int": cuda_from_int,
        "cc": normal_cc,
        "file": _basename,
        "version": _version,
        "lib_cuda": _lib_cuda,
    }
)
