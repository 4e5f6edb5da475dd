"""``nvidia-smi`` as users paste it: the plain table (every driver generation since the
340 series, WSL2's, a header line on its own) and ``nvidia-smi -q``.

The table's header line gives the driver, the newest CUDA it supports and nvidia-smi's
own version (which differs from the driver's under WSL2); each GPU row gives the index,
the name (cut with ``...`` by nvidia-smi when long) and, on the row below, the memory.
``-q`` gives ``Driver Version``, ``CUDA Version`` and per GPU ``Product Name`` and
``FB Memory Usage / Total``. Neither form prints the compute capability.
"""

from __future__ import annotations

import re
from typing import Final

from bnb_provision.core.text import is_digits
from bnb_provision.detect.nvidia import parse_driver_version
from bnb_provision.detect.reports.facts import Facts, GpuFact, cuda_version

__all__ = ["is_smi_line", "parse_nvidia_smi", "smi_header"]

_SMI_MARKS: Final = ("Driver Version", "KMD Version", "NVIDIA-SMI", "NVSMI LOG")
_SMI_STARTS: Final = (
    "+----",
    "|====",
    "| GPU  Name",
    "|  GPU   GI",
    "| Processes:",
    "Product Name ",
    "Attached GPUs ",
    "FB Memory Usage",
)
_PERSISTENCE: Final = frozenset({"On", "Off", "WDDM", "TCC", "N/A"})
_BUS_RE: Final = re.compile(r"[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]")
_MEMORY_RE: Final = re.compile(r"([0-9]{1,9})\s*MiB\s*/\s*([0-9]{1,9})\s*MiB")
_Q_GPU_RE: Final = re.compile(r"GPU [0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]")
_Q_MIB_RE: Final = re.compile(r"([0-9]{1,9}) MiB")


def _after(line: str, label: str) -> str | None:
    """The first word after ``label`` in ``line`` (``|`` ends it), or None."""
    _, found, rest = line.partition(label)
    if not found:
        return None
    words = rest.replace("|", " ").split()
    return words[0] if words else None


def smi_header(line: str) -> tuple[str | None, str | None, str | None]:
    """(driver, CUDA version, nvidia-smi version) from a header line such as
    ``| NVIDIA-SMI 580.126.09   Driver Version: 580.126.09   CUDA Version: 13.0 |``, or
    from 610 on ``KMD Version: 610.43.02   CUDA UMD Version: 13.3``; ``CUDA Version:
    ERR!`` or ``N/A`` give None."""
    driver = _after(line, "Driver Version:") or _after(line, "KMD Version:")
    cuda = _after(line, "CUDA Version:") or _after(line, "CUDA UMD Version:")
    smi = _after(line, "NVIDIA-SMI ")
    return (
        parse_driver_version(driver) if driver else None,
        cuda_version(cuda) if cuda else None,
        parse_driver_version(smi) if smi else None,
    )


def is_smi_line(line: str) -> bool:
    """A line only nvidia-smi prints (for telling sections apart)."""
    s = line.strip()
    return any(m in s for m in _SMI_MARKS) or s.startswith(_SMI_STARTS)


def _gpu_row(line: str) -> tuple[str, str] | None:
    """``|   0  NVIDIA A100 80G...  Off  | 00000000:4F:00.0 Off |`` -> (name, mode): the
    mode column is Persistence-M on Linux, TCC/WDDM on Windows."""
    cells = line.strip().strip("|").split("|")
    if len(cells) < 2 or _BUS_RE.search(cells[1]) is None:  # noqa: PLR2004
        return None
    words = cells[0].split()
    if len(words) < 3 or not is_digits(words[0]) or words[-1] not in _PERSISTENCE:  # noqa: PLR2004
        return None
    return " ".join(words[1:-1]), words[-1]


def _memory(line: str) -> int | None:
    cells = line.strip().strip("|").split("|")
    m = _MEMORY_RE.search(cells[1]) if len(cells) > 1 else None
    return int(m.group(2)) if m else None


def _table_gpus(lines: list[str]) -> tuple[list[GpuFact], bool]:
    """The GPU rows, and whether their mode column says Windows (TCC/WDDM)."""
    gpus: list[GpuFact] = []
    windows = False
    for i, line in enumerate(lines):
        row = _gpu_row(line) if line.lstrip().startswith("|") else None
        if row is None:
            continue
        memory = _memory(lines[i + 1]) if i + 1 < len(lines) else None
        gpus.append(GpuFact(name=row[0] or None, memory_mib=memory))
        windows = windows or row[1] in {"TCC", "WDDM"}
    return gpus, windows


def _q_facts(lines: list[str]) -> tuple[str | None, str | None, list[GpuFact]]:
    """``nvidia-smi -q``: driver, CUDA version and the GPUs."""
    driver = cuda = None
    gpus: list[GpuFact] = []
    name: str | None = None
    in_fb = False
    for raw in lines:
        line = raw.strip()
        if _Q_GPU_RE.fullmatch(line):
            if name is not None:
                gpus.append(GpuFact(name=name))
            name, in_fb = "", False
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            in_fb = key == "FB Memory Usage"
        elif key in {"Driver Version", "KMD Version"} and driver is None:
            driver = parse_driver_version(value)
        elif key in {"CUDA Version", "CUDA UMD Version"} and cuda is None:
            cuda = cuda_version(value)
        elif key == "Product Name" and name == "":
            name = value
        elif key == "Total" and in_fb and name and (m := _Q_MIB_RE.fullmatch(value)):
            gpus.append(GpuFact(name=name, memory_mib=int(m.group(1))))
            name, in_fb = None, False
    if name:
        gpus.append(GpuFact(name=name))
    return driver, cuda, gpus


def parse_nvidia_smi(text: str) -> Facts:
    """The facts in nvidia-smi output (table or ``-q``), as printed."""
    lines = text.splitlines()
    driver = cuda = smi = None
    for line in lines:
        if "Driver Version:" in line or "KMD Version:" in line:
            driver, cuda, smi = smi_header(line)
            if driver:
                break
    gpus, windows = _table_gpus(lines)
    q_driver, q_cuda, q_gpus = _q_facts(lines)
    return Facts(
        tool="nvidia-smi",
        driver=driver or q_driver,
        driver_cuda=cuda or q_cuda,
        smi_version=smi,
        gpus=tuple(gpus or q_gpus),
        os="windows" if windows else None,
    )
