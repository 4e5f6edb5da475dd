"""The Hugging Face ``env`` commands: ``transformers env`` / ``transformers-cli env``
(from 2.4, ``PyTorch version (GPU?)``; from 4.5x ``(accelerator?)``), ``accelerate env``,
``diffusers-cli env`` and ``trl env``: ``- Key: value`` lines.

Every ``- <Name> version: X`` line is a package; ``Platform`` is Python's
``platform.platform()``; ``GPU type`` names the first GPU only (``CUDA device(s)``, from
trl, names them all).
"""

from __future__ import annotations

from typing import Final

from bnb_provision.detect.reports.facts import (
    Facts,
    GpuFact,
    normalize_package,
    platform_facts,
    torch_build,
    version_token,
)

__all__ = ["is_hf_env_line", "parse_hf_env"]

_ALIASES: Final = {"pytorch": "torch", "hf-hub": "huggingface-hub"}
_NOT_PACKAGES: Final = frozenset({"python", "cann", "cuda", "cudnn", "nccl", "driver", "os"})
_MARKERS: Final = (
    "Copy-and-paste the text below in your GitHub issue",
    "- `transformers` version:",
    "- `Accelerate` version:",
    "- Using GPU in script?",
    "- Using distributed or parallel set-up in script?",
    "- `Accelerate` default config:",
    "- Accelerate config:",
    "- GPU type:",
    "- System RAM:",
)
_AVAILABLE: Final = {"True": True, "CUDA": True, "False": False, "NA": False}


def _entry(line: str) -> tuple[str, str] | None:
    """``- `Accelerate` version: 0.13.2`` -> ("Accelerate version", "0.13.2")."""
    s = line.strip()
    if not s.startswith("- "):
        return None
    key, sep, value = s[2:].partition(":")
    if not sep:
        return None
    key = key.replace("`", "").replace("\N{HUGGING FACE}", "").strip()
    return key, value.strip()


def is_hf_env_line(line: str) -> bool:
    """A line only an HF ``env`` command prints, or a ``- <Name> version: X`` line."""
    s = line.strip()
    if s.startswith(_MARKERS):
        return True
    entry = _entry(s)
    return entry is not None and (
        entry[0] in {"Platform", "Python version"} or _package(*entry) is not None
    )


def _package(key: str, value: str) -> tuple[str, str] | None:
    """(name, version) from ``Huggingface_hub version: 0.16.4``; None otherwise."""
    name, _, _paren = key.partition(" (")
    if not name.endswith(" version"):
        return None
    package = normalize_package(name[: -len(" version")])
    package = _ALIASES.get(package, package)
    version = version_token(value)
    if not package or package in _NOT_PACKAGES or version is None:
        return None
    return package, version


def _torch(value: str) -> tuple[str | None, bool | None]:
    """``2.0.1+cu117 (True)`` / ``2.12.0+cu130 (CUDA)`` -> (version, CUDA available)."""
    version = version_token(value)
    _, paren, rest = value.partition("(")
    available = _AVAILABLE.get(rest.rstrip(")").strip()) if paren else None
    return version, available if version else None


def _gpus(entries: list[tuple[str, str]]) -> tuple[tuple[GpuFact, ...], tuple[str, ...]]:
    for key, value in entries:
        if key == "CUDA device(s)" and value:
            return tuple(GpuFact(name=n.strip()) for n in value.split(",") if n.strip()), ()
    for key, value in entries:
        if key == "GPU type" and value:
            note = "the HF env command names the first GPU only; the report may have more"
            return (GpuFact(name=value),), (note,)
    return (), ()


def parse_hf_env(text: str) -> Facts:
    """The facts in ``transformers env`` / ``accelerate env`` output, as printed."""
    entries = [e for line in text.splitlines() if (e := _entry(line)) is not None]
    values: dict[str, str] = {}
    packages: dict[str, str] = {}
    torch: str | None = None
    available: bool | None = None
    for key, value in entries:
        values.setdefault(key, value)
        if key.startswith("PyTorch version") and torch is None:
            torch, available = _torch(value)
        elif (pkg := _package(key, value)) is not None:
            packages.setdefault(*pkg)
    if torch:
        packages.setdefault("torch", torch)
    os_name, arch, wsl, libc = platform_facts(values.get("Platform", ""))
    gpus, notes = _gpus(entries)
    python = version_token(values.get("Python version", ""))
    return Facts(
        tool="hf-env",
        os=os_name,
        wsl=wsl or None,
        arch=arch,
        libc=libc,
        python=python,
        gpus=gpus,
        torch=torch,
        torch_build=torch_build(torch) if torch else None,
        cuda_available=available,
        packages=tuple(sorted(packages.items())),
        notes=notes,
    )
