"""What one section of a pasted report states, and the small readers every tool's
parser shares (versions, local version tags, Python's platform strings).

Every value is kept as the report prints it (``580.159.04`` keeps its zero, ``arm64``
stays ``arm64``); normalising is the snapshot's job (:mod:`.reports`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.core.text import is_digits
from bnb_provision.detect.host import parse_proc_version_wsl
from bnb_provision.vocab import ReportTool

__all__ = [
    "MAX_LINE",
    "Facts",
    "GpuFact",
    "TorchBuild",
    "cuda_from_digits",
    "cuda_version",
    "major_minor",
    "normalize_package",
    "platform_facts",
    "same_gpu",
    "torch_build",
    "version_token",
]

MAX_LINE: Final = 4096
"""Longer lines are cut to this before any parser looks at them: no tool prints more."""

_VERSION_RE: Final = re.compile(r"[0-9]+(?:\.[0-9A-Za-z]+)*(?:[-_+!][0-9A-Za-z.]+)*")
_PACKAGE_SEP_RE: Final = re.compile(r"[-_.]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuFact:
    """A GPU as a report names it; any part may be missing."""

    name: str | None = None
    cc: tuple[int, int] | None = None
    memory_mib: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchBuild:
    """What torch was built for, when the report says: ``kind`` is cuda, rocm, xpu or cpu."""

    kind: str
    cuda: str | None = None  # "12.1"
    hip: str | None = None  # "6.2"


@dataclass(frozen=True, kw_only=True, slots=True)
class Facts:
    """The facts one section states. None (or empty) means the section does not say."""

    tool: ReportTool
    os: str | None = None  # linux | windows | macos
    os_hint: str | None = None  # the OS the report's file paths suggest
    os_release: str | None = None  # "Ubuntu 20.04.5 LTS", as printed
    wsl: bool | None = None
    arch: str | None = None  # as printed: x86_64, AMD64, arm64, aarch64
    libc: str | None = None  # "glibc 2.35"
    python: str | None = None  # "3.11.9", "3.10"
    gpus: tuple[GpuFact, ...] = ()
    compute_capabilities: tuple[tuple[int, int], ...] = ()  # printed without a GPU name
    driver: str | None = None
    driver_cuda: str | None = None  # the newest CUDA the driver supports
    smi_version: str | None = None  # nvidia-smi's own version (differs under WSL2)
    torch: str | None = None
    torch_build: TorchBuild | None = None
    cuda_toolkit: str | None = None  # nvcc's, or the CUDA runtime bitsandbytes found
    cuda_available: bool | None = None
    bitsandbytes: str | None = None
    bnb_lib: str | None = None  # the native library bitsandbytes' loader picked
    bnb_fallback: str | None = None  # the library it fell back to when that one failed
    packages: tuple[tuple[str, str], ...] = ()  # (normalized name, version)
    variables: tuple[tuple[str, str], ...] = ()  # environment variables it printed
    notes: tuple[str, ...] = ()  # what the parser inferred rather than read


def version_token(text: str) -> str | None:
    """The version at the start of ``text`` (``2.4.1+cu121``, ``0.44.0.dev0``,
    ``'1.8.1'`` quoted), or None when ``text`` does not start with one."""
    token = text.strip().strip("'\"`")[:80]
    m = _VERSION_RE.match(token)
    if m is None:
        return None
    value = m.group(0).rstrip(".-_+!")
    return value or None


def major_minor(version: str) -> str | None:
    """``12.4.131`` -> ``12.4``; None unless it starts with two numbers."""
    parts = version.split(".")
    if len(parts) < 2 or not (is_digits(parts[0]) and is_digits(parts[1][:3])):  # noqa: PLR2004
        return None
    minor = "".join(ch for ch in parts[1][:3] if is_digits(ch))
    return f"{int(parts[0])}.{int(minor)}"


def cuda_from_digits(digits: str) -> str | None:
    """A CUDA version written without its dot, as bitsandbytes writes it (``121`` ->
    ``12.1``, ``92`` -> ``9.2``); None for anything else. Spellings: :mod:`core.cuda`."""
    try:
        return str(CudaVersion.from_tag(digits))
    except ValueError:
        return None


def cuda_version(text: str) -> str | None:
    """A CUDA version as printed (``12.4``, ``12.4.131``) -> ``12.4``; None for ``N/A``,
    ``ERR!``, ``None`` and other words."""
    try:
        return str(CudaVersion.parse(text))
    except ValueError:
        return None


def torch_build(version: str) -> TorchBuild | None:
    """The build a torch version's local tag names: ``+cu121``, ``+rocm6.2``, ``+cpu``,
    ``+xpu``; None without a tag (the tag-less wheels differ by index and platform)."""
    _, plus, tag = version.partition("+")
    tag = tag.lower()
    if not plus:
        return None
    if (cuda := CudaVersion.from_variant(tag)) is not None:
        return TorchBuild(kind="cuda", cuda=str(cuda))
    if tag.startswith("rocm") and (hip := major_minor(tag[4:] + ".0")):
        return TorchBuild(kind="rocm", hip=hip)
    if tag in {"cpu", "xpu"}:
        return TorchBuild(kind=tag)
    return None


def normalize_package(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Huggingface_hub`` ->
    ``huggingface-hub``."""
    return _PACKAGE_SEP_RE.sub("-", name.strip()).lower()


def platform_facts(text: str) -> tuple[str | None, str | None, bool, str | None]:
    """Python's ``platform.platform()`` string (``Linux-5.15.0-43-generic-x86_64-with-
    glibc2.28``, ``Windows-10-10.0.22621-SP0``, ``macOS-15.6.1-arm64-arm-64bit``) as
    (OS, architecture, WSL, libc)."""
    low = text.strip().lower()
    parts = low.split("-")
    os_name = {"linux": "linux", "windows": "windows", "macos": "macos", "darwin": "macos"}.get(
        parts[0]
    )
    arch = next((a for a in ("x86_64", "aarch64", "arm64", "amd64") if a in parts), None)
    libc = None
    if "-with-glibc" in low:
        glibc = low.partition("-with-glibc")[2].split("-")[0]
        libc = f"glibc {glibc}" if major_minor(glibc + ".0") else None
    wsl = os_name == "linux" and parse_proc_version_wsl(low)
    return os_name, arch, wsl, libc


def _gpu_words(name: str) -> list[str]:
    """``NVIDIA GeForce RTX 3050 laptop GPU`` -> geforce rtx 3050 laptop."""
    words = name.replace("...", " ").lower().split()
    words = words[1:] if words[:1] == ["nvidia"] else words
    return words[:-1] if words[-1:] == ["gpu"] else words


def same_gpu(a: str, b: str) -> bool:
    """Whether two names may be one GPU model: equal but for a leading ``NVIDIA`` and
    case, one the other's last words (``RTX 5090``, ``NVIDIA GeForce RTX 5090``), or one
    a prefix of the other where nvidia-smi cut it with ``...``."""
    wa, wb = _gpu_words(a), _gpu_words(b)
    if not wa or not wb:
        return False
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    if long_[len(long_) - len(short) :] == short:
        return True
    if a.endswith("...") or b.endswith("..."):
        sa, sb = " ".join(wa), " ".join(wb)
        return sa.startswith(sb) or sb.startswith(sa)
    return False
