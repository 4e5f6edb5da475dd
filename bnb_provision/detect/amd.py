"""AMD GPUs and ROCm: pure parsers plus a reader with fallbacks.

Order of sources, each recorded as the accelerator's ``source``:

1. the KFD topology in sysfs (``/sys/class/kfd/kfd/topology/nodes/*/properties``): a node
   whose ``gfx_target_version`` is not 0 is a GPU; ``90402`` is ``gfx942`` (major * 10000
   + minor * 100 + stepping, the stepping written in hex in the target's name);
2. ``rocminfo`` (its GPU agents' ``Name: gfx1100`` and ``Marketing Name``);
3. ``amd-smi static`` (``TARGET_GRAPHICS_VERSION`` and ``MARKET_NAME``).

The ROCm release is read from ``/opt/rocm/.info/version``, else the HIP runtime's version
from ``hipconfig --version``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bnb_provision.core import process
from bnb_provision.core.text import is_digits
from bnb_provision.detect.accelerators import Accelerator, Runtime
from bnb_provision.errors import ExternalToolError

__all__ = [
    "detect_amd",
    "gfx_from_target_version",
    "parse_amd_smi_static",
    "parse_kfd_properties",
    "parse_rocm_version",
    "parse_rocminfo",
]

TOOL_TIMEOUT: Final = 10.0
_MAX_NODES: Final = 256
_AGENT_RE: Final = re.compile(r"^\s*Agent\s+\d+\s*$", re.MULTILINE)
_GFX_RE: Final = re.compile(r"gfx[0-9a-f]{3,5}")
_SMI_GPU_RE: Final = re.compile(r"^GPU:\s*\d+\s*$", re.MULTILINE)
_ROCM_VERSION_RE: Final = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_MIB: Final = 1024 * 1024


def gfx_from_target_version(value: int) -> str | None:
    """KFD's ``gfx_target_version`` as a target name: ``90402`` -> ``gfx942``, ``90010``
    -> ``gfx90a``, ``110000`` -> ``gfx1100``; None for 0 (a CPU node) or a value that
    names no target."""
    major, minor, stepping = value // 10000, (value // 100) % 100, value % 100
    if not 1 <= major <= 99 or minor > 9 or stepping > 15:  # noqa: PLR2004 - a target name
        return None
    return f"gfx{major}{minor}{stepping:x}"


def parse_kfd_properties(text: str) -> dict[str, int]:
    """A KFD node's ``properties`` (``key value`` lines; ``key : value`` as rocprofv3 prints
    them) as integers; other values are left out."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.replace(":", " ", 1).partition(" ")
        value = value.strip()
        if key and is_digits(value) and len(value) <= 20:  # noqa: PLR2004 - a u64 at most
            out[key.strip()] = int(value)
    return out


def _fields(block: str) -> dict[str, str]:
    """``Key: value`` lines of one block, the first of each key, indented ones included."""
    out: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def parse_rocminfo(text: str) -> list[tuple[str, str]]:
    """``rocminfo``'s GPU agents as (marketing name, gfx target), in order."""
    blocks = _AGENT_RE.split(text)
    out = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        f = _fields(block)
        name = f.get("Name", "")
        if f.get("Device Type", "GPU") != "GPU" or not _GFX_RE.fullmatch(name):
            continue
        out.append((f.get("Marketing Name") or f"AMD GPU ({name})", name))
    return out


def parse_amd_smi_static(text: str) -> list[tuple[str, str]]:
    """``amd-smi static``'s GPUs as (market name, gfx target), in order."""
    out = []
    for block in _SMI_GPU_RE.split(text)[1:]:
        f = _fields(block)
        target = f.get("TARGET_GRAPHICS_VERSION", "")
        if _GFX_RE.fullmatch(target):
            out.append((f.get("MARKET_NAME") or f"AMD GPU ({target})", target))
    return out


def parse_rocm_version(text: str) -> str | None:
    """``/opt/rocm/.info/version`` (``6.4.1-120``) or ``hipconfig --version``
    (``6.4.43482-0f2d60242``) -> ``6.4.1`` / ``6.4.43482``; None for anything else."""
    m = _ROCM_VERSION_RE.match(text.strip())
    return m.group(0) if m else None


# ---------------------------------------------------------------------------
# readers


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _node_memory(node: Path) -> int | None:
    banks = sorted((node / "mem_banks").glob("*/properties"))
    sizes = [parse_kfd_properties(_read(b) or "").get("size_in_bytes", 0) for b in banks[:1]]
    return sizes[0] // _MIB if sizes and sizes[0] else None


def _from_kfd(root: Path) -> list[Accelerator]:
    nodes = sorted(
        (root / "sys/class/kfd/kfd/topology/nodes").glob("*/properties"),
        key=lambda p: int(p.parent.name) if is_digits(p.parent.name) else 0,
    )
    out: list[Accelerator] = []
    for props in nodes[:_MAX_NODES]:
        values = parse_kfd_properties(_read(props) or "")
        target = gfx_from_target_version(values.get("gfx_target_version", 0))
        if target is None:
            continue
        minor = values.get("drm_render_minor")
        product = (
            _read(root / f"sys/class/drm/renderD{minor}/device/product_name") if minor else None
        )
        out.append(
            Accelerator(
                vendor="amd",
                index=len(out),
                name=(product or "").strip() or f"AMD GPU ({target})",
                target=target,
                memory_total_mib=_node_memory(props.parent),
                source="kfd",
            )
        )
    return out


def _from_tool(
    argv: list[str],
    parse: Callable[[str], list[tuple[str, str]]],
    source: str,
    warnings: list[str],
) -> list[Accelerator]:
    program = process.find_program(argv[0], "/opt/rocm/bin")
    if program is None:
        return []
    try:
        done = process.run([program, *argv[1:]], timeout=TOOL_TIMEOUT)
    except ExternalToolError as exc:
        warnings.append(f"{argv[0]}: {exc}")
        return []
    found = parse(done.stdout)
    return [
        Accelerator(vendor="amd", index=i, name=name, target=target, source=source)
        for i, (name, target) in enumerate(found)
    ]


def detect_amd(
    warnings: list[str], *, root: Path = Path("/"), use_tools: bool = True
) -> tuple[tuple[Accelerator, ...], tuple[Runtime, ...]]:
    """AMD GPUs (KFD, else rocminfo, else amd-smi) and the ROCm release; never raises."""
    found = _from_kfd(root)
    if not found and use_tools and (root / "sys/class/kfd").exists():
        found = _from_tool(["rocminfo"], parse_rocminfo, "rocminfo", warnings) or _from_tool(
            ["amd-smi", "static", "--asic"], parse_amd_smi_static, "amd-smi", warnings
        )
    return tuple(found), _runtimes(root, warnings, use_tools=use_tools and bool(found))


def _runtimes(root: Path, warnings: list[str], *, use_tools: bool) -> tuple[Runtime, ...]:
    """The ROCm release (``/opt/rocm/.info/version``), else the HIP version ``hipconfig``
    prints (only where an AMD GPU was found)."""
    text = _read(root / "opt/rocm/.info/version")
    version = parse_rocm_version(text) if text else None
    if version:
        return (
            Runtime(vendor="amd", name="rocm", version=version, source="/opt/rocm/.info/version"),
        )
    program = process.find_program("hipconfig", "/opt/rocm/bin") if use_tools else None
    if program is None:
        return ()
    try:
        done = process.run([program, "--version"], timeout=TOOL_TIMEOUT)
    except ExternalToolError as exc:
        warnings.append(f"hipconfig: {exc}")
        return ()
    hip = parse_rocm_version(done.stdout)
    return (Runtime(vendor="amd", name="hip", version=hip, source="hipconfig"),) if hip else ()
