"""``python -m torch.utils.collect_env`` (and the copies vLLM and others ship), in the
formats from torch 1.x (``Is debug build: No``) to today's and vLLM's sectioned one
(``Key   : value`` under ``=====`` headings).

``CUDA runtime version`` is nvcc's (collect_env runs ``nvcc --version``), so it becomes
the CUDA toolkit; torch's own CUDA is ``CUDA used to build PyTorch``.
"""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.core.text import is_digits
from bnb_provision.detect.nvidia import parse_driver_version
from bnb_provision.detect.reports.facts import (
    Facts,
    GpuFact,
    TorchBuild,
    cuda_version,
    major_minor,
    normalize_package,
    platform_facts,
    version_token,
)

__all__ = ["COLLECT_ENV_KEYS", "is_collect_env_line", "parse_collect_env"]

COLLECT_ENV_KEYS: Final = frozenset(
    {
        "PyTorch version",
        "Is debug build",
        "CUDA used to build PyTorch",
        "ROCM used to build PyTorch",
        "OS",
        "GCC version",
        "Clang version",
        "CMake version",
        "Libc version",
        "Python version",
        "Python platform",
        "Is CUDA available",
        "CUDA runtime version",
        "CUDA_MODULE_LOADING set to",
        "GPU models and configuration",
        "Nvidia driver version",
        "cuDNN version",
        "HIP runtime version",
        "MIOpen runtime version",
        "Is XNNPACK available",
        "Is XPU available",
        "vLLM Version",
        "Versions of relevant libraries",
    }
)
_UNKNOWN: Final = frozenset({"", "N/A", "None", "No CUDA", "Could not collect", "Unknown"})
_GPU_LINE_RE: Final = re.compile(r"GPU ([0-9]{1,3}): (.+)")
_PIP_LINE_RE: Final = re.compile(r"\[(?:pip3?|conda)\] ([A-Za-z0-9][A-Za-z0-9._-]*)(?:==| +)(\S+)")
_OS_ARCH_RE: Final = re.compile(r"(.+?) \((x86_64|aarch64|arm64|AMD64|ppc64le|s390x)\)")
_SECTIONS: Final = frozenset(
    {"System Info", "PyTorch Info", "Python Environment", "CUDA / GPU Info", "CPU Info"}
)


def _key_value(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    key = key.strip()
    return (key, value.strip()) if sep and key in COLLECT_ENV_KEYS else None


def is_collect_env_line(line: str) -> bool:
    """A line only collect_env prints (for telling sections apart)."""
    s = line.strip()
    return (
        _key_value(s) is not None
        or s.startswith(("Collecting environment information", "[pip3] ", "[pip] ", "[conda] "))
        or s in _SECTIONS
    )


def _os_facts(value: str) -> dict[str, object]:
    """``Ubuntu 20.04.5 LTS (x86_64)``, ``Mac OSX 10.15.5 (x86_64)``, ``macOS 15.6.1
    (arm64)``, ``Microsoft Windows 11 Pro (10.0.22631 64-bit)``."""
    if value in _UNKNOWN:
        return {}
    m = _OS_ARCH_RE.fullmatch(value)
    release, arch = (m.group(1), m.group(2)) if m else (value, None)
    low = release.lower()
    if low.startswith(("microsoft windows", "windows")):
        release = release.split(" (")[0]
        arch = "AMD64" if "64-bit" in value else None
        return {"os": "windows", "os_release": release, "arch": arch}
    system = "macos" if low.startswith(("mac", "os x")) else "linux"
    return {"os": system, "os_release": release, "arch": arch}


def _torch(
    values: dict[str, str], packages: dict[str, str]
) -> tuple[str | None, TorchBuild | None]:
    version = version_token(values.get("PyTorch version", ""))
    version = version or packages.get("torch")
    cuda_value = values.get("CUDA used to build PyTorch")
    rocm_value = values.get("ROCM used to build PyTorch")
    if version is None or cuda_value is None:
        return version, None
    cuda = cuda_version(cuda_value)
    hip = major_minor(rocm_value) if rocm_value and rocm_value not in _UNKNOWN else None
    if cuda:
        return version, TorchBuild(kind="cuda", cuda=cuda)
    if hip:
        return version, TorchBuild(kind="rocm", hip=hip)
    if cuda_value == "None":  # torch.version.cuda is None: not a CUDA build
        return version, TorchBuild(kind="cpu")
    return version, None


def _gpus(lines: list[str]) -> list[GpuFact]:
    """``GPU models and configuration: GPU 0: X`` inline, ``GPU i: X`` lines below it,
    or one name inline (ROCm: ``AMD Instinct MI300X (gfx942:sramecc+:xnack-)``)."""
    gpus: list[GpuFact] = []
    for i, line in enumerate(lines):
        kv = _key_value(line)
        if kv is None or kv[0] != "GPU models and configuration":
            continue
        first = kv[1]
        if first and first in _UNKNOWN:
            return []
        rest = [first] if first else []
        rest += [x.strip() for x in lines[i + 1 : i + 65]]
        for item in rest:
            m = _GPU_LINE_RE.fullmatch(item)
            if m is None:
                break
            gpus.append(GpuFact(name=m.group(2).split(" (UUID")[0].strip()))
        if not gpus and first:
            gpus.append(GpuFact(name=first.split(" (gfx")[0].strip()))
        break
    return gpus


def _packages(lines: list[str]) -> dict[str, str]:
    packages: dict[str, str] = {}
    for line in lines:
        m = _PIP_LINE_RE.match(line.strip())
        version = version_token(m.group(2)) if m else None
        if m and version:
            name = normalize_package(m.group(1))
            packages.setdefault("torch" if name == "pytorch" else name, version)
    return packages


def _flag(value: str | None) -> bool | None:
    return {"True": True, "Yes": True, "False": False, "No": False}.get(value or "")


def parse_collect_env(text: str) -> Facts:
    """The facts in collect_env output, as printed."""
    lines = text.splitlines()
    values: dict[str, str] = {}
    for line in lines:
        kv = _key_value(line)
        if kv is not None:
            values.setdefault(*kv)
    packages = _packages(lines)
    if vllm := version_token(values.get("vLLM Version", "")):
        packages.setdefault("vllm", vllm)
    torch, build = _torch(values, packages)
    os_facts = _os_facts(values.get("OS", ""))
    p_os, p_arch, p_wsl, p_libc = platform_facts(values.get("Python platform", ""))
    python = values.get("Python version", "").split(" ")[0]
    driver = values.get("Nvidia driver version", "")
    toolkit = values.get("CUDA runtime version", "")
    return Facts(
        tool="collect_env",
        os=p_os or _str(os_facts.get("os")),
        os_release=_str(os_facts.get("os_release")),
        wsl=p_wsl or None,
        arch=_str(os_facts.get("arch")) or p_arch,
        libc=p_libc,
        python=version_token(python) if is_digits(python[:1]) else None,
        gpus=tuple(_gpus(lines)),
        driver=parse_driver_version(driver) if driver else None,
        torch=torch,
        torch_build=build,
        cuda_toolkit=cuda_version(toolkit),
        cuda_available=_flag(values.get("Is CUDA available")),
        packages=tuple(sorted(packages.items())),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
