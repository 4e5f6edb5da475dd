"""The only module that imports :mod:`pynvml` (from the ``nvidia-ml-py`` package).

It returns plain values and raises :class:`NvmlUnavailable` with a readable
reason when NVML cannot answer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["NvmlGpu", "NvmlReading", "NvmlUnavailable", "read_nvml"]

_LINUX_LIBRARY: Final = "libnvidia-ml.so.1"


class NvmlUnavailable(Exception):  # noqa: N818 - it is a condition, not a bug
    """NVML could not be loaded or queried; the message says why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class NvmlGpu:
    index: int
    name: str
    cc: tuple[int, int] | None
    memory_total: int | None  # bytes
    memory_free: int | None  # bytes
    uuid: str | None
    mig_mode: bool | None


@dataclass(frozen=True, kw_only=True, slots=True)
class NvmlReading:
    driver: str
    cuda_driver: int | None  # 13000 for CUDA 13.0
    gpus: tuple[NvmlGpu, ...]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(fn: Any, *args: Any) -> Any:
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def _check_library() -> None:
    """On Linux, load the NVML library first: a machine without the NVIDIA driver then
    says so at once, without importing pynvml (its ctypes tables take ~10 ms)."""
    if sys.platform != "linux":
        return  # pynvml knows where Windows keeps nvml.dll; macOS has no NVML
    import ctypes

    try:
        ctypes.CDLL(_LINUX_LIBRARY)  # the name pynvml loads; stays loaded for it
    except OSError as exc:
        raise NvmlUnavailable(f"NVML could not be loaded: {exc}") from exc


def read_nvml() -> NvmlReading:
    """Query the NVIDIA driver through NVML. Raises :class:`NvmlUnavailable`."""
    _check_library()
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise NvmlUnavailable(f"the pynvml module (nvidia-ml-py) is not installed: {exc}") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML could not start: {exc}") from exc
    except OSError as exc:  # pragma: no cover - ctypes loader oddities
        raise NvmlUnavailable(f"NVML could not be loaded: {exc}") from exc
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = _try(pynvml.nvmlSystemGetCudaDriverVersion)
        count = pynvml.nvmlDeviceGetCount()
        gpus = []
        for i in range(count):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = _try(pynvml.nvmlDeviceGetMemoryInfo, h)
            cc = _try(pynvml.nvmlDeviceGetCudaComputeCapability, h)
            mig = _try(pynvml.nvmlDeviceGetMigMode, h)
            uuid = _try(pynvml.nvmlDeviceGetUUID, h)
            gpus.append(
                NvmlGpu(
                    index=i,
                    name=_text(pynvml.nvmlDeviceGetName(h)),
                    cc=(int(cc[0]), int(cc[1])) if cc else None,
                    memory_total=int(mem.total) if mem is not None else None,
                    memory_free=int(mem.free) if mem is not None else None,
                    uuid=_text(uuid) if uuid is not None else None,
                    mig_mode=bool(mig[0]) if mig else None,
                )
            )
        return NvmlReading(driver=driver, cuda_driver=cuda, gpus=tuple(gpus))
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML query failed: {exc}") from exc
    finally:
        _try(pynvml.nvmlShutdown)
