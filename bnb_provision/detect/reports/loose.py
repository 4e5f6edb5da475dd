"""Facts stated outside any tool's output: the lines users type or paste around them.

Read over the whole report, with the lowest rank when facts are merged: OS release
lines (``CentOS Linux release 7.8.2003 (Core)``, ``Ubuntu 21.04``), a GPU named on a
line of its own (``NVIDIA A100-PCIE-40GB 1gpu``), nvcc's ``release 10.2``, the output
of ``print(torch.__version__)``, torch's and vLLM's compute-capability messages, the
driver's CUDA version in ``found version 11040``, WSL2 kernel strings, and what file
paths say (the OS, ``lib/python3.10/site-packages``, ``bitsandbytes-0.40.2-py3.8.egg``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Final

from bnb_provision.core.cuda import ComputeCapability, CudaVersion
from bnb_provision.core.text import is_digits
from bnb_provision.detect.reports.facts import (
    Facts,
    GpuFact,
    TorchBuild,
    cuda_version,
    same_gpu,
    torch_build,
    version_token,
)
from bnb_provision.detect.reports.nvidia_smi_text import smi_header

__all__ = ["parse_loose"]

_OS_RELEASE: Final = (
    (
        "linux",
        re.compile(
            r"(?:CentOS Linux|CentOS Stream|Red Hat Enterprise Linux(?: Server)?|Rocky Linux"
            r"|AlmaLinux|Oracle Linux Server|Fedora) release [0-9][0-9.]{0,20}(?: \([^)]{0,40}\))?"
        ),
    ),
    (
        "linux",
        re.compile(r"(?:Ubuntu|Debian GNU/Linux|Linux Mint|Pop!_OS) [0-9][0-9.]{0,20}(?: LTS)?"),
    ),
    ("windows", re.compile(r"(?:Microsoft )?Windows (?:10|11|Server [0-9]{4})(?: [A-Za-z]+)?")),
    ("macos", re.compile(r"(?:macOS|Mac OS X|OS X) [0-9][0-9.]{0,20}(?: \([^)]{0,40}\))?")),
)
_PRETTY_RE: Final = re.compile(r"(?:PRETTY_NAME=|Description:\s)\s{0,20}\"?([^\"]{1,80})\"?")
_NVCC_RE: Final = re.compile(r"Cuda compilation tools, release ([0-9]{1,2}\.[0-9]{1,2})")
_FOUND_RE: Final = re.compile(r"too old \(found version ([0-9]{4,6})\)")
_SM_RE: Final = re.compile(r" with CUDA capability sm_([0-9]{2,3}) ")
_VLLM_CC_RE: Final = re.compile(r"Your (.{2,60}?) GPU has compute capability ([0-9]{1,2})\.([0-9])")
_SMI_L_RE: Final = re.compile(r"GPU ([0-9]{1,3}): ([^()]{2,80}?)(?: \(UUID: [^)]{0,80}\))?")
_PYTHON_LINE_RE: Final = re.compile(r"[Pp]ython:?\s{1,4}(3\.[0-9]{1,2}(?:\.[0-9]{1,3})?)")
_BANNER_RE: Final = re.compile(r"Python (3\.[0-9]{1,2}\.[0-9]{1,3}) \(")
_BANNER_OS: Final = {" on linux": "linux", " on win32": "windows", " on darwin": "macos"}
_PY_PATH_RES: Final = (
    re.compile(r"python(3\.[0-9]{1,2})[/\\-]", re.IGNORECASE),
    re.compile(r"-py(3\.[0-9]{1,2})\.egg"),
    re.compile(r"\\Python3([0-9]{1,2})\\"),
    re.compile(r"cpython-3([0-9]{1,2})-"),
    re.compile(r"Python\.(3\.[0-9]{1,2})_"),
)
_BNB_PATH_RE: Final = re.compile(
    r"bitsandbytes-([0-9]{1,3}(?:\.[0-9]{1,4}){1,3}(?:\.?(?:dev|post|rc|a|b)[0-9]{1,8})?)"
    r"(?=-py|\.dist-info|\.egg|/|\\)"
)
_WINDOWS_PATH_RE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Z]:\\|WindowsPath\(|\.dll\b|\\AppData\\")
_MAC_PATH_RE: Final = re.compile(r"(?<![A-Za-z0-9])/Users/|\.dylib\b|/opt/homebrew/|\bDarwin\b")
_LINUX_PATH_RE: Final = re.compile(
    r"/home/|/root/|dist-packages|linux-x86_64|linux-gnu|-with-glibc|/opt/conda/|PosixPath\(|/usr/l"
)
_WSL_LINE_RE: Final = re.compile(
    r"(?:(?:os|OS|Os)\s{0,3}[:\uff1a]\s{0,3})?(?:WSL|wsl)2?(?:[\s:]|$)"
)
"""A line that starts by naming WSL: ``os:wsl ubuntu22``, ``WSL2 Ubuntu 22.04.2 LTS``."""
_BRANDS: Final = frozenset({"NVIDIA", "Nvidia", "GeForce", "Tesla", "Quadro", "TITAN"})
_PROSE: Final = frozenset(
    {"driver", "version", "is", "not", "with", "found", "error", "cuda", "smi", "on", "and"}
)
_COUNT_RE: Final = re.compile(r"[xX]?([0-9]{1,2})(?:x|X|gpus?|GPUs?)?")


def _os_release(line: str) -> tuple[str, str] | None:
    for system, pattern in _OS_RELEASE:
        if pattern.fullmatch(line):
            return system, line
    m = _PRETTY_RE.fullmatch(line)
    if m is not None:
        for system, pattern in _OS_RELEASE:
            if pattern.match(m.group(1)):
                return system, m.group(1)
    return None


def _gpu_line(line: str) -> list[GpuFact]:
    """``NVIDIA A100-PCIE-40GB 1gpu`` or ``Nvidia GeForce RTX 3050 laptop GPU``."""
    words = line.split()
    if not 2 <= len(words) <= 8 or words[0] not in _BRANDS or len(line) > 80:  # noqa: PLR2004
        return []
    count = 1
    if len(words) > 2 and (m := _COUNT_RE.fullmatch(words[-1])) and not is_digits(words[-1]):  # noqa: PLR2004
        count, words = int(m.group(1)), words[:-1]
    if any(w.lower() in _PROSE or not w.replace("-", "").isalnum() for w in words):
        return []
    if not any(is_digits(ch) for w in words[1:] for ch in w):
        return []
    return [GpuFact(name=" ".join(words))] * min(count, 16)


def _sm_gpu(line: str) -> GpuFact | None:
    """torch's ``NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible``
    and vLLM's ``Your Tesla T4 GPU has compute capability 7.5``."""
    m = _SM_RE.search(line)
    if m is not None:
        before = line[: m.start()].split()[-6:]
        start = next((i for i, w in enumerate(before) if w in _BRANDS), None)
        name = " ".join(before[start:]) if start is not None else None
        cc = ComputeCapability.from_arch(int(m.group(1)))
        return GpuFact(name=name, cc=(cc.major, cc.minor))
    v = _VLLM_CC_RE.search(line)
    if v is not None:
        return GpuFact(name=v.group(1), cc=(int(v.group(2)), int(v.group(3))))
    return None


def _after_line(lines: list[str], i: int) -> str | None:
    """The first non-empty line after ``lines[i]``, stripped of quotes."""
    for below in lines[i + 1 : i + 3]:
        if below.strip():
            return below.strip().strip("'\"")
    return None


def _python_snippets(lines: list[str]) -> dict[str, str]:
    """What ``print(torch.__version__)``, ``torch.version.cuda`` and
    ``torch.cuda.is_available()`` printed on the next line."""
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        for expr in ("torch.__version__", "torch.version.cuda", "torch.cuda.is_available()"):
            value = _after_line(lines, i) if expr in line and expr not in found else None
            if value is not None and len(value.split()) == 1:
                found[expr] = value
    return found


def _paths(text: str) -> tuple[str | None, str | None, str | None]:
    """(OS, Python, bitsandbytes version) as the report's file paths show them."""
    system = None
    if _WINDOWS_PATH_RE.search(text):
        system = "windows"
    elif _MAC_PATH_RE.search(text):
        system = "macos"
    elif _LINUX_PATH_RE.search(text):
        system = "linux"
    pythons = set()
    for pattern in _PY_PATH_RES:
        for m in pattern.finditer(text):
            value = m.group(1)
            pythons.add(value if value.startswith("3.") else f"3.{value}")
    bnbs = {m.group(1) for m in _BNB_PATH_RE.finditer(text)}
    return (
        system,
        pythons.pop() if len(pythons) == 1 else None,
        bnbs.pop() if len(bnbs) == 1 else None,
    )


@dataclass(slots=True)
class _Lines:
    """What the report's lines state, filled line by line (first statement wins)."""

    driver: tuple[str | None, str | None, str | None] | None = None
    os_release: tuple[str, str] | None = None
    toolkit: str | None = None
    found_cuda: str | None = None
    python: str | None = None
    wsl: bool = False
    gpus: list[GpuFact] = field(default_factory=list)
    named_ccs: list[GpuFact] = field(default_factory=list)

    def read(self, line: str) -> None:
        if self.driver is None and ("Driver Version:" in line or "KMD Version:" in line):
            self.driver = smi_header(line)
        if self.os_release is None:
            self.os_release = _os_release(line)
        if self.toolkit is None and (m := _NVCC_RE.search(line)):
            self.toolkit = m.group(1)
        if self.found_cuda is None and (m := _FOUND_RE.search(line)):
            self.found_cuda = str(CudaVersion.from_driver_api(int(m.group(1))))
        if self.python is None and (m := _PYTHON_LINE_RE.fullmatch(line)):
            self.python = m.group(1)
        if self.python is None and (m := _BANNER_RE.match(line)):
            self.python = m.group(1)  # the interactive interpreter's banner
            system = next((s for end, s in _BANNER_OS.items() if line.endswith(end)), None)
            self.os_release = self.os_release or ((system, "") if system else None)
        low = line.lower()
        self.wsl = self.wsl or "microsoft-standard" in low or "/usr/lib/wsl/lib" in line
        self.wsl = self.wsl or _WSL_LINE_RE.match(line) is not None
        if gpu := _sm_gpu(line):
            self.named_ccs.append(gpu)
        elif m := _SMI_L_RE.fullmatch(line):
            self.gpus.append(GpuFact(name=m.group(2).strip()))
        else:
            self.gpus.extend(_gpu_line(line))


def _with_ccs(gpus: list[GpuFact], named: list[GpuFact]) -> tuple[GpuFact, ...]:
    """The GPUs named on their own lines, with the compute capability an error message
    gave for the same name; or the GPUs the messages name, when no line names one."""
    if not gpus:
        return tuple(dict.fromkeys(g for g in named if g.name))
    out = []
    for gpu in gpus:
        cc = next((n.cc for n in named if n.name and gpu.name and same_gpu(n.name, gpu.name)), None)
        out.append(replace(gpu, cc=cc) if cc else gpu)
    return tuple(out)


def parse_loose(text: str) -> Facts:
    """The facts a report states outside any tool's output."""
    lines = text.splitlines()
    found = _Lines()
    for line in lines:
        found.read(line.strip())
    snippets = _python_snippets(lines)
    path_os, path_python, path_bnb = _paths(text)
    cuda = cuda_version(snippets.get("torch.version.cuda", ""))
    available = {"True": True, "False": False}.get(snippets.get("torch.cuda.is_available()", ""))
    driver, driver_cuda, smi = found.driver or (None, None, None)
    torch = version_token(snippets.get("torch.__version__", ""))
    build = torch_build(torch) if torch else None
    system, release = found.os_release or (None, None)
    return Facts(
        tool="text",
        os=system,
        os_hint=path_os,
        os_release=release or None,
        wsl=found.wsl or None,
        python=found.python or path_python,
        gpus=_with_ccs(found.gpus, found.named_ccs),
        compute_capabilities=tuple(g.cc for g in found.named_ccs if g.cc),
        driver=driver,
        driver_cuda=driver_cuda or found.found_cuda,
        smi_version=smi,
        torch=torch,
        torch_build=TorchBuild(kind="cuda", cuda=cuda) if cuda else build,
        cuda_toolkit=found.toolkit,
        cuda_available=available,
        bitsandbytes=path_bnb,
    )
