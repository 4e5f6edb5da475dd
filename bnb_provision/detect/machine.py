"""The machine snapshot: everything ``detect`` knows, as one frozen value.

:func:`detect_machine` reads the running system and :meth:`Machine.to_dict` writes a
snapshot (``bnb-provision.machine/1``); :mod:`bnb_provision.detect.snapshot` reads one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.detect.accelerators import Accelerator, Runtime
from bnb_provision.detect.host import (
    OSInfo,
    PythonInfo,
    detect_os,
    detect_python,
)
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo, detect_nvidia
from bnb_provision.detect.scan import detect_accelerators
from bnb_provision.detect.target import (
    EnvInfo,
    find_env_python,
    inspect_env,
)

__all__ = ["MACHINE_SCHEMA", "Machine", "detect_machine"]

MACHINE_SCHEMA: Final = "bnb-provision.machine/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Machine:
    """A machine: OS, Python, NVIDIA driver and GPUs, other GPUs (AMD, Intel, Apple) with
    their runtimes, optionally a target environment."""

    os: OSInfo
    python: PythonInfo
    nvidia: NvidiaInfo | None
    gpus: tuple[Gpu, ...]
    env: EnvInfo | None = None
    cuda_visible_devices: str | None = None
    warnings: tuple[str, ...] = ()
    label: str | None = None  # where a snapshot came from (file name)
    accelerators: tuple[Accelerator, ...] = ()
    runtimes: tuple[Runtime, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = self._to_dict()
        if self.accelerators:  # optional keys: a machine without them writes what it always did
            data["accelerators"] = [_accelerator_dict(a) for a in self.accelerators]
        if self.runtimes:
            data["runtimes"] = [
                {"vendor": r.vendor, "name": r.name, "version": r.version, "source": r.source}
                for r in self.runtimes
            ]
        return data

    def _to_dict(self) -> dict[str, Any]:
        return {
            "schema": MACHINE_SCHEMA,
            "tool": {"name": "bnb-provision", "version": __version__},
            "os": {
                "system": self.os.system,
                "arch": self.os.arch,
                "release": self.os.release,
                "distro": self.os.distro,
                "distro_id": self.os.distro_id,
                "distro_version": self.os.distro_version,
                "libc": self.os.libc,
                "wsl": self.os.wsl,
                "containers": list(self.os.containers),
                "msvc_runtime": self.os.msvc_runtime,
                "apple_silicon": self.os.apple_silicon,
            },
            "python": _python_dict(self.python),
            "nvidia": None
            if self.nvidia is None
            else {
                "driver": self.nvidia.driver,
                "cuda_driver": self.nvidia.cuda_driver,
                "source": self.nvidia.source,
            },
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "compute_capability": g.cc_text,
                    "memory_total_mib": g.memory_total_mib,
                    "memory_free_mib": g.memory_free_mib,
                    "uuid": g.uuid,
                    "mig_mode": g.mig_mode,
                }
                for g in self.gpus
            ],
            "cuda_visible_devices": self.cuda_visible_devices,
            "env": None if self.env is None else _env_dict(self.env),
            "warnings": list(self.warnings),
        }

    def identity(self) -> dict[str, Any]:
        """The snapshot less what changes from one moment to the next (free GPU memory, the
        detection's warnings): equal for the same machine, for keying what was derived."""
        data = self.to_dict()
        data.pop("warnings")
        for gpu in data["gpus"]:
            gpu.pop("memory_free_mib")
        return data


def _accelerator_dict(a: Accelerator) -> dict[str, Any]:
    return {
        "vendor": a.vendor,
        "index": a.index,
        "name": a.name,
        "target": a.target,
        "memory_total_mib": a.memory_total_mib,
        "source": a.source,
    }


def _python_dict(p: PythonInfo) -> dict[str, Any]:
    return {"version": p.version, "executable": p.executable, "implementation": p.implementation}


def _env_dict(e: EnvInfo) -> dict[str, Any]:
    t, b = e.torch, e.bitsandbytes
    return {
        "python": _python_dict(e.python),
        "prefix": e.prefix,
        "packages": dict(e.packages),
        "torch": None
        if t is None
        else {
            "version": t.version,
            "cuda": t.cuda,
            "hip": t.hip,
            "xpu": t.xpu,
            "variant": t.variant,
            "location": t.location,
        },
        "bitsandbytes": None
        if b is None
        else {
            "version": b.version,
            "location": b.location,
            "direct_url": b.direct_url,
            "libraries": [
                {
                    "file": lib.file,
                    "backend": lib.backend,
                    "version": lib.version,
                    "kernels": None if lib.kernels is None else lib.kernels.to_dict(),
                }
                for lib in b.libraries
            ],
        },
        "quant_libs": dict(e.quant_libs),
        "variables": dict(e.variables),
        "cudart": list(e.cudart),
        "installed_at": dict(e.installed_at),
    }


def detect_machine(
    *,
    python: str | None = None,
    env_dir: str | None = None,
    root: Path = Path("/"),
    use_nvml: bool = True,
    use_smi: bool = True,
) -> Machine:
    """Detect this machine, and the target environment when one is named."""
    warnings: list[str] = []
    os_info = detect_os(root)
    nvidia, gpus = detect_nvidia(warnings, root=root, use_nvml=use_nvml, use_smi=use_smi)
    accelerators, runtimes = detect_accelerators(
        warnings, root=root, macos_release=os_info.release if os_info.system == "macos" else None
    )
    env = None
    if env_dir is not None:
        python = str(find_env_python(env_dir))
    if python is not None:
        env = inspect_env(python, warnings)
    return Machine(
        os=os_info,
        python=detect_python(),
        nvidia=nvidia,
        gpus=tuple(gpus),
        env=env,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        warnings=tuple(warnings),
        accelerators=accelerators,
        runtimes=runtimes,
    )
