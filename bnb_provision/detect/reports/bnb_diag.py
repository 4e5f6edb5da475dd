"""``python -m bitsandbytes`` and the lines bitsandbytes logs on import, in each era:

* 0.35-0.41 ``CUDA SETUP: ...`` banner: ``Highest compute capability among GPUs
  detected: 8.6``, ``Detected CUDA version 116`` (the CUDA runtime it found),
  ``Loading binary X`` / ``Required library version not found: X`` / ``Defaulting to
  libbitsandbytes_cpu.so``, and ``bin X`` (0.38-0.40);
* 0.41-0.42 ``PyTorch settings found: CUDA_VERSION=121, Highest Compute Capability: 8.9``;
* 0.43-0.46 ``BUG REPORT INFORMATION`` blocks, ``CUDA specs: CUDASpecs(...)``,
  ``COMPUTE_CAPABILITIES_PER_GPU = ['8.6']``, ``Could not find the bitsandbytes CUDA
  binary at PosixPath('X')``, ``BNB_CUDA_VERSION=123 environment variable detected``;
* 0.44 and later: a ``bitsandbytes vX`` header, ``Platform:``, ``Python:``,
  ``PyTorch: X`` with ``CUDA:`` / ``HIP:`` / ``XPU:`` below, ``Related packages:``,
  ``Highest Compute Capability: (8, 6)``, ``ROCM_VERSION=64``, ``Configured CUDA binary
  not found at X``.

The library it names is the one its loader picked, found or not; a fallback is kept apart.
"""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.detect.reports.facts import (
    Facts,
    TorchBuild,
    cuda_from_digits,
    cuda_version,
    major_minor,
    normalize_package,
    platform_facts,
    torch_build,
    version_token,
)

__all__ = ["is_bnb_line", "library_name", "parse_bnb_diag"]

_LIB_RE: Final = re.compile(r"(?:libs?)?bitsandbytes_[A-Za-z0-9_]{1,64}\.(?:so|dll|dylib)")
_CC_RE: Final = re.compile(r"([0-9]{1,2})(?:\.|, )([0-9])")
_CUDA_VERSION_RE: Final = re.compile(r"CUDA_VERSION=([0-9]{2,3})")
_ROCM_VERSION_RE: Final = re.compile(r"ROCM_VERSION=([0-9]{2,3})")
_BNB_CUDA_RE: Final = re.compile(r"BNB_CUDA_VERSION=([0-9]{2,3})")
_MARKERS: Final = (
    "CUDA SETUP",
    "CUDA_SETUP",
    "BUG REPORT",
    "libbitsandbytes",
    "bitsandbytes v0.",
    "bitsandbytes v1.",
    "bitsandbytes library",
    "bitsandbytes native library",
    "bitsandbytes CUDA binary",
    "Welcome to bitsandbytes",
    "PyTorch settings found",
    "COMPILED_WITH_CUDA",
    "COMPUTE_CAPABILITIES_PER_GPU",
    "DEBUG INFO",
    "CUDA specs:",
    "ROCm specs:",
    "Related packages:",
    "Checking that the library is importable",
    "Running a quick check that",
    "+ library is importable",
    "+ CUDA function is callable",
    "Installation was successful",
    "PyTorch says CUDA is not available",
    "++++++++++++++++++++",
)
# where the loader's choice is named, most decisive first: (marker, role)
_PICKED: Final = (
    "Required library version not found:",
    "Configured CUDA binary not found at",
    "Configured ROCm binary not found at",
    "Library not found:",
    "Could not find the bitsandbytes CUDA binary at",
    "environment variable detected; loading",
    "Loading binary",
    "Could not load bitsandbytes native library:",
)


def library_name(text: str) -> str | None:
    """The bitsandbytes library file named in ``text`` (a path's last part). 0.35-0.37
    print ``libsbitsandbytes_cpu.so`` in one message; the file is ``libbitsandbytes_``."""
    m = _LIB_RE.search(text)
    if m is None:
        return None
    name = m.group(0)
    return "lib" + name[4:] if name.startswith("libsbitsandbytes_") else name


def is_bnb_line(line: str) -> bool:
    """A line only bitsandbytes prints (for telling sections apart)."""
    return any(marker in line for marker in _MARKERS)


def _picked(lines: list[str]) -> tuple[str | None, str | None]:
    """(the library the loader picked, the one it fell back to)."""
    fallback = None
    found: dict[str, str] = {}
    for line in lines:
        if "Defaulting to" in line:
            fallback = fallback or library_name(line)
        for marker in _PICKED:
            if marker in line and (name := library_name(line.partition(marker)[2])):
                found.setdefault(marker, name)
        s = line.strip()
        if s.startswith("bin ") and (name := library_name(s)):
            found.setdefault("bin", name)
    order = (*_PICKED[:6], "bin", *_PICKED[6:])
    picked = next((found[m] for m in order if m in found), None)
    if fallback is None and "Could not load bitsandbytes native library:" in found:
        last = found["Could not load bitsandbytes native library:"]
        fallback = last if last != picked else None
    return picked, fallback


def _compute_capabilities(lines: list[str]) -> tuple[tuple[int, int], ...]:
    found: list[tuple[int, int]] = []
    for line in lines:
        for marker in (
            "Highest compute capability among GPUs detected:",
            "Highest Compute Capability:",
            "highest_compute_capability=",
            "COMPUTE_CAPABILITIES_PER_GPU =",
        ):
            _, hit, rest = line.partition(marker)
            if not hit:
                continue
            values = rest.split("]")[0] if "[" in rest[:3] else rest[:12]
            found.extend((int(m[1]), int(m[2])) for m in _CC_RE.finditer(values[:200]))
    return tuple(dict.fromkeys(found))


def _torch(lines: list[str]) -> tuple[str | None, TorchBuild | None]:
    """``PyTorch: X`` with ``CUDA:`` / ``HIP:`` below it (0.44 and later), else
    ``PyTorch settings found: CUDA_VERSION=121`` / ``ROCM_VERSION=63``."""
    version: str | None = None
    sub: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.startswith("PyTorch: "):
            version = version_token(line[len("PyTorch: ") :])
            for below in lines[i + 1 : i + 4]:
                key, _, value = below.strip().partition(": ")
                sub[key] = value.strip()
            break
    cuda, hip = sub.get("CUDA", "N/A"), sub.get("HIP", "N/A")
    if version and sub:
        if cuda != "N/A":
            return version, TorchBuild(kind="cuda", cuda=cuda_version(cuda))
        if hip != "N/A":
            return version, TorchBuild(kind="rocm", hip=major_minor(hip))
        return version, TorchBuild(kind="xpu" if sub.get("XPU", "N/A") != "N/A" else "cpu")
    text = "\n".join(line for line in lines if "settings found" in line or "specs:" in line)
    if m := _CUDA_VERSION_RE.search(text):
        return version, TorchBuild(kind="cuda", cuda=cuda_from_digits(m.group(1)))
    if m := _ROCM_VERSION_RE.search(text):
        return version, TorchBuild(kind="rocm", hip=cuda_from_digits(m.group(1)))
    return version, torch_build(version) if version else None


def _header_version(lines: list[str]) -> str | None:
    for line in lines:
        s = line.strip().strip("=").strip()
        if s.startswith("bitsandbytes v") and (v := version_token(s[len("bitsandbytes v") :])):
            return v
    return None


def _related(lines: list[str]) -> dict[str, str]:
    """``Related packages:`` then ``  accelerate: 1.13.0`` lines (``not found`` skipped)."""
    packages: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.strip() != "Related packages:":
            continue
        for below in lines[i + 1 : i + 40]:
            name, sep, value = below.strip().partition(": ")
            if not sep or not below.startswith((" ", "\t")):
                break
            if version := version_token(value):
                packages[normalize_package(name)] = version
        break
    return packages


def _field(lines: list[str], label: str) -> str:
    return next((line[len(label) :].strip() for line in lines if line.startswith(label)), "")


def _toolkit(lines: list[str]) -> str | None:
    detected = _field([x.strip() for x in lines], "CUDA SETUP: Detected CUDA version")
    return cuda_from_digits(detected.split()[0]) if detected else None


def _available(lines: list[str]) -> bool | None:
    if any("PyTorch says CUDA is not available" in line for line in lines):
        return False
    checked = any("is importable and CUDA is callable" in line for line in lines)
    return True if checked and any(line.strip() == "SUCCESS!" for line in lines) else None


def parse_bnb_diag(text: str) -> Facts:
    """The facts in ``python -m bitsandbytes`` output (any era), as printed."""
    lines = text.splitlines()
    torch, build = _torch(lines)
    picked, fallback = _picked(lines)
    os_name, arch, wsl, libc = platform_facts(_field(lines, "Platform: "))
    packages = _related(lines)
    bnb = _header_version(lines)
    for name, version in (("bitsandbytes", bnb), ("torch", torch)):
        if version:
            packages.setdefault(name, version)
    override = next((m.group(1) for line in lines if (m := _BNB_CUDA_RE.search(line))), None)
    return Facts(
        tool="bitsandbytes",
        os=os_name,
        wsl=wsl or None,
        arch=arch,
        libc=libc,
        python=version_token(_field(lines, "Python: ")),
        compute_capabilities=_compute_capabilities(lines),
        torch=torch,
        torch_build=build,
        cuda_toolkit=_toolkit(lines),
        cuda_available=_available(lines),
        bitsandbytes=bnb,
        bnb_lib=picked,
        bnb_fallback=fallback,
        packages=tuple(sorted(packages.items())),
        variables=(("BNB_CUDA_VERSION", override),) if override else (),
    )
