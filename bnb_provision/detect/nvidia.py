"""NVIDIA driver and GPU facts: pure parsers plus a reader with fallbacks.

Order of sources, each bounded in time and recorded as ``source``:

1. NVML through ``pynvml`` (driver, CUDA driver version, every GPU);
2. ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` plus the
   ``CUDA Version`` of its plain header;
3. ``/proc/driver/nvidia/version`` (driver only) and
   ``/proc/driver/nvidia/gpus/*/information`` (GPU names).

``CUDA_VISIBLE_DEVICES`` is ignored for the inventory (NVML and nvidia-smi
do not read it) and reported separately by the caller.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.core import process
from bnb_provision.core.cuda import ComputeCapability, CudaVersion
from bnb_provision.errors import ExternalToolError

__all__ = [
    "Gpu",
    "NvidiaInfo",
    "cuda_from_nvml",
    "detect_nvidia",
    "parse_driver_version",
    "parse_nvidia_smi_csv",
    "parse_nvidia_smi_header",
    "parse_proc_gpu_information",
    "parse_proc_version",
]

NVML_TIMEOUT: Final = 5.0
SMI_TIMEOUT: Final = 5.0
SMI_FIELDS: Final = (
    "index,name,compute_cap,memory.total,memory.free,uuid,driver_version,mig.mode.current"
)
SMI_FIELDS_OLD: Final = "index,name,memory.total,memory.free,uuid,driver_version"
_MIB: Final = 1024 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class Gpu:
    """One NVIDIA GPU as the driver reports it."""

    index: int
    name: str
    compute_capability: tuple[int, int] | None
    memory_total_mib: int | None
    memory_free_mib: int | None = None
    uuid: str | None = None
    mig_mode: bool | None = None

    @property
    def cc_text(self) -> str | None:
        cc = self.compute_capability
        return str(ComputeCapability(*cc)) if cc else None

    @property
    def sm(self) -> str | None:
        cc = self.compute_capability
        return ComputeCapability(*cc).sm if cc else None


@dataclass(frozen=True, kw_only=True, slots=True)
class NvidiaInfo:
    """The driver: its version, the newest CUDA it supports, where we read it."""

    driver: str
    cuda_driver: str | None  # "13.0"
    source: str  # nvml | nvidia-smi | proc | snapshot | flags


def cuda_from_nvml(value: int | None) -> str | None:
    """Turn NVML's ``13000`` into ``"13.0"``."""
    if not value:
        return None
    return str(CudaVersion.from_driver_api(value))


_DRIVER_RE: Final = re.compile(r"\d{1,4}(?:\.\d{1,4}){1,3}")


def parse_driver_version(text: str) -> str | None:
    """A driver version as NVIDIA prints it (``580.159.04``, ``572.61``), kept as given;
    None for anything else."""
    text = text.strip()
    return text if _DRIVER_RE.fullmatch(text) else None


def _int_or_none(text: str) -> int | None:
    """A non-negative whole number of MiB; None for ``inf``, ``nan``, negatives, words."""
    text = text.strip()
    if len(text) > 32:  # noqa: PLR2004 - no memory size has more digits
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 0 else None


def parse_nvidia_smi_csv(text: str, fields: str = SMI_FIELDS) -> tuple[str | None, list[Gpu]]:
    """Parse ``nvidia-smi --query-gpu=FIELDS --format=csv,noheader,nounits``.

    Returns the driver version and the GPUs. Values nvidia-smi cannot give
    (``[N/A]``, ``[Not Supported]``) become None.
    """
    names = fields.split(",")
    driver: str | None = None
    gpus: list[Gpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(names):
            raise ValueError(f"expected {len(names)} fields, got {len(parts)}: {line!r}")
        row = dict(zip(names, parts, strict=True))
        missing = {k for k, v in row.items() if v.startswith("[") or v in {"N/A", ""}}
        cc = None
        if "compute_cap" in row and "compute_cap" not in missing:
            m = re.fullmatch(r"(\d+)\.(\d+)", row["compute_cap"])
            cc = (int(m.group(1)), int(m.group(2))) if m else None
        if "driver_version" not in missing:
            driver = row["driver_version"]
        mig = row.get("mig.mode.current")
        gpus.append(
            Gpu(
                index=int(row["index"]),
                name=row["name"],
                compute_capability=cc,
                memory_total_mib=None
                if "memory.total" in missing
                else _int_or_none(row["memory.total"]),
                memory_free_mib=None
                if "memory.free" in missing
                else _int_or_none(row["memory.free"]),
                uuid=None if "uuid" in missing else row["uuid"],
                mig_mode=None if mig is None or "mig.mode.current" in missing else mig == "Enabled",
            )
        )
    return driver, gpus


_HEADER_RE: Final = re.compile(
    r"Driver Version:\s*(?P<driver>[\d.]+)(?:.*?CUDA Version:\s*(?P<cuda>[\d.]+|N/A))?"
)


def parse_nvidia_smi_header(text: str) -> tuple[str | None, str | None]:
    """Read ``Driver Version`` and ``CUDA Version`` from plain ``nvidia-smi`` output."""
    m = _HEADER_RE.search(text)
    if not m:
        return None, None
    cuda = m.group("cuda")
    return m.group("driver"), (cuda if cuda and cuda != "N/A" else None)


_PROC_RE: Final = re.compile(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s")


def parse_proc_version(text: str) -> str | None:
    """Read the driver version from ``/proc/driver/nvidia/version``."""
    m = _PROC_RE.search(text + " ")
    return m.group(1) if m else None


def parse_proc_gpu_information(text: str) -> tuple[str | None, str | None]:
    """Read ``Model`` and ``GPU UUID`` from ``/proc/driver/nvidia/gpus/*/information``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    uuid = fields.get("GPU UUID") or None
    return fields.get("Model"), uuid


# ---------------------------------------------------------------------------
# readers


def _bounded(fn: object, timeout: float) -> object:
    """Run ``fn()`` in a daemon thread; raise TimeoutError if it hangs."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name="bnb-provision-nvml")
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def _from_nvml(warnings: list[str]) -> tuple[NvidiaInfo, list[Gpu]] | None:
    from bnb_provision.detect._nvml import NvmlReading, NvmlUnavailable, read_nvml

    try:
        reading = _bounded(read_nvml, NVML_TIMEOUT)
    except NvmlUnavailable as exc:
        warnings.append(f"NVML: {exc}")
        return None
    except TimeoutError as exc:
        warnings.append(f"NVML: {exc}")
        return None
    assert isinstance(reading, NvmlReading)
    driver = parse_driver_version(reading.driver)
    if driver is None:
        warnings.append(f"NVML: the driver version {reading.driver[:40]!r} is not a version")
        return None
    gpus = [
        Gpu(
            index=g.index,
            name=g.name,
            compute_capability=g.cc,
            memory_total_mib=g.memory_total // _MIB if g.memory_total is not None else None,
            memory_free_mib=g.memory_free // _MIB if g.memory_free is not None else None,
            uuid=g.uuid,
            mig_mode=g.mig_mode,
        )
        for g in reading.gpus
    ]
    info = NvidiaInfo(driver=driver, cuda_driver=cuda_from_nvml(reading.cuda_driver), source="nvml")
    return info, gpus


def _smi_dirs() -> list[str]:
    if sys.platform == "win32":
        root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        return [
            str(Path(root) / "System32"),
            str(
                Path(os.environ.get("PROGRAMFILES", r"C:\Program Files"))
                / "NVIDIA Corporation"
                / "NVSMI"
            ),
        ]
    return ["/usr/lib/wsl/lib", "/usr/bin", "/usr/local/nvidia/bin"]


def find_nvidia_smi() -> str | None:
    return process.find_program("nvidia-smi", *_smi_dirs())


def _from_nvidia_smi(warnings: list[str]) -> tuple[NvidiaInfo, list[Gpu]] | None:
    smi = find_nvidia_smi()
    if smi is None:
        warnings.append("nvidia-smi: not found on PATH")
        return None
    for fields in (SMI_FIELDS, SMI_FIELDS_OLD):
        try:
            done = process.run(
                [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                timeout=SMI_TIMEOUT,
            )
        except ExternalToolError as exc:
            if fields == SMI_FIELDS and "not a valid field" in exc.output:
                continue  # drivers before ~510 lack compute_cap / mig.mode.current
            warnings.append(f"nvidia-smi: {exc}")
            return None
        try:
            driver, gpus = parse_nvidia_smi_csv(done.stdout, fields)
        except ValueError as exc:
            warnings.append(f"nvidia-smi: unexpected output ({exc})")
            return None
        break
    else:  # pragma: no cover - the loop always breaks or returns
        return None
    cuda = None
    try:
        plain = process.run([smi], timeout=SMI_TIMEOUT)
        head_driver, cuda = parse_nvidia_smi_header(plain.stdout)
        driver = driver or head_driver
    except ExternalToolError as exc:
        warnings.append(f"nvidia-smi: could not read the CUDA version ({exc})")
    driver = parse_driver_version(driver) if driver else None
    if driver is None:
        warnings.append("nvidia-smi: no driver version in its output")
        return None
    return NvidiaInfo(driver=driver, cuda_driver=cuda, source="nvidia-smi"), gpus


def _read_text(path: Path, warnings: list[str]) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        warnings.append(f"{path}: unreadable ({exc.strerror or exc})")
        return None


def _from_proc(warnings: list[str], root: Path) -> tuple[NvidiaInfo, list[Gpu]] | None:
    text = _read_text(root / "proc/driver/nvidia/version", warnings)
    driver = parse_proc_version(text) if text else None
    if driver is None:
        sys_text = _read_text(root / "sys/module/nvidia/version", warnings)
        driver = parse_driver_version(sys_text) if sys_text else None
    if driver is None:
        return None
    gpus: list[Gpu] = []
    gpu_dir = root / "proc/driver/nvidia/gpus"
    if gpu_dir.is_dir():
        for i, d in enumerate(sorted(gpu_dir.iterdir())):
            info = _read_text(d / "information", warnings)
            if not info:
                continue
            name, uuid = parse_proc_gpu_information(info)
            gpus.append(
                Gpu(
                    index=i,
                    name=name or "unknown NVIDIA GPU",
                    compute_capability=None,
                    memory_total_mib=None,
                    uuid=uuid,
                )
            )
    warnings.append(
        "driver read from /proc: the CUDA version it supports and the GPUs' compute "
        "capability are unknown (install nvidia-ml-py or put nvidia-smi on PATH)"
    )
    return NvidiaInfo(driver=driver, cuda_driver=None, source="proc"), gpus


def detect_nvidia(
    warnings: list[str], *, root: Path = Path("/"), use_nvml: bool = True, use_smi: bool = True
) -> tuple[NvidiaInfo | None, list[Gpu]]:
    """Detect the NVIDIA driver and GPUs, falling back source by source.

    Problems go into ``warnings``; this never raises for a missing or broken
    driver. Returns ``(None, [])`` on a machine without one.
    """
    if sys.platform == "darwin":
        warnings.append("macOS: NVIDIA CUDA is not available on macOS")
        return None, []
    tried: list[str] = []
    if use_nvml:
        found = _from_nvml(tried)
        if found:
            warnings.extend(tried)
            return found
    if use_smi:
        found = _from_nvidia_smi(tried)
        if found:
            warnings.extend(tried)
            return found
    if sys.platform != "win32":
        found = _from_proc(tried, root)
        if found:
            warnings.extend(tried)
            return found
    warnings.append(
        "no NVIDIA driver found (" + "; ".join(tried) + ")" if tried else "no NVIDIA driver found"
    )
    return None, []
