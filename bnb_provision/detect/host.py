"""Operating-system facts: pure parsers plus thin readers.

Nothing here imports torch or starts a program except, on Windows, nothing at
all: the MSVC runtime check is a file test.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "OSInfo",
    "PythonInfo",
    "detect_os",
    "detect_python",
    "normalize_arch",
    "parse_os_release",
    "parse_proc_version_wsl",
]

_ARCH_ALIASES: Final = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "armv8": "aarch64",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class OSInfo:
    """The operating system. ``system`` is ``linux``, ``windows`` or ``macos``."""

    system: str
    arch: str  # x86_64 | aarch64 | other machine string
    release: str | None = None
    distro: str | None = None  # "Ubuntu 24.04.3 LTS"
    distro_id: str | None = None  # "ubuntu"
    distro_version: str | None = None  # "24.04"
    libc: str | None = None  # "glibc 2.39", "musl 1.2.4"
    wsl: bool = False
    containers: tuple[str, ...] = ()
    msvc_runtime: bool | None = None  # Windows: vcruntime140.dll present
    apple_silicon: bool | None = None  # macOS only

    @property
    def glibc(self) -> tuple[int, int] | None:
        if self.libc and self.libc.startswith("glibc "):
            m = re.match(r"([0-9]{1,6})\.([0-9]{1,6})", self.libc[6:])
            if m:
                return int(m.group(1)), int(m.group(2))
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class PythonInfo:
    version: str  # "3.12.3"
    executable: str | None = None
    implementation: str = "cpython"

    @property
    def minor(self) -> str:
        """``"3.12"``."""
        return ".".join(self.version.split(".")[:2])


def normalize_arch(machine: str) -> str:
    return _ARCH_ALIASES.get(machine.lower(), machine.lower())


def normalize_system(name: str) -> str:
    n = name.lower()
    return {"darwin": "macos", "win32": "windows", "mac": "macos", "osx": "macos"}.get(n, n)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse ``/etc/os-release`` (shell-style ``KEY=value`` lines)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":  # noqa: PLR2004
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[key.strip()] = value
    return out


def parse_proc_version_wsl(text: str) -> bool:
    """True when ``/proc/version`` names a WSL2 kernel (``microsoft-standard-WSL2``)."""
    low = text.lower()
    return "microsoft" in low and ("wsl2" in low or "microsoft-standard" in low)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _libc() -> str | None:
    try:
        gnu = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.39"
    except (AttributeError, ValueError, OSError):
        gnu = None
    if gnu:
        return gnu
    lib, version = platform.libc_ver()
    if lib:
        return f"{lib} {version}".strip()
    # musl: the loader's path names it; packaging reads its version the same way
    if any(Path("/lib").glob("ld-musl-*.so.1")):
        return "musl"  # the version needs running the loader; the family is what matters
    return None


def _containers(root: Path, environ: dict[str, str]) -> tuple[str, ...]:
    hints: list[str] = []
    if (root / ".dockerenv").exists():
        hints.append("docker")
    if (root / "run/.containerenv").exists():
        hints.append("podman")
    if environ.get("SINGULARITY_CONTAINER") or environ.get("APPTAINER_CONTAINER"):
        hints.append("apptainer")
    if environ.get("KUBERNETES_SERVICE_HOST"):
        hints.append("kubernetes")
    if environ.get("NVIDIA_PYTORCH_VERSION") or environ.get("NGC_VERSION"):
        hints.append("ngc:" + (environ.get("NVIDIA_PYTORCH_VERSION") or environ["NGC_VERSION"]))
    cgroup = _read(root / "proc/1/cgroup") or ""
    for word in ("docker", "kubepods", "containerd", "lxc"):
        if word in cgroup and word not in hints:
            hints.append(word)
    return tuple(hints)


def detect_os(root: Path = Path("/"), environ: dict[str, str] | None = None) -> OSInfo:
    """Read the facts of the running operating system."""
    env = dict(os.environ) if environ is None else environ
    system = normalize_system(platform.system())
    arch = normalize_arch(platform.machine())
    release = platform.release() or None
    if system == "windows":
        sysroot = Path(env.get("SystemRoot", r"C:\Windows"))
        return OSInfo(
            system="windows",
            arch=arch,
            release=platform.version() or release,
            distro=f"Windows {platform.release()}",
            msvc_runtime=(sysroot / "System32" / "vcruntime140.dll").exists(),
        )
    if system == "macos":
        mac = platform.mac_ver()[0]
        return OSInfo(
            system="macos",
            arch=arch,
            release=mac or release,
            distro=f"macOS {mac}" if mac else "macOS",
            apple_silicon=arch == "aarch64",
        )
    osr = parse_os_release(
        _read(root / "etc/os-release") or _read(root / "usr/lib/os-release") or ""
    )
    proc_version = _read(root / "proc/version") or ""
    wsl = parse_proc_version_wsl(proc_version) or bool(
        env.get("WSL_DISTRO_NAME") and "microsoft" in proc_version.lower()
    )
    return OSInfo(
        system=system,
        arch=arch,
        release=release,
        distro=osr.get("PRETTY_NAME") or None,
        distro_id=osr.get("ID") or None,
        distro_version=osr.get("VERSION_ID") or None,
        libc=_libc() if system == "linux" else None,
        wsl=wsl,
        containers=_containers(root, env),
    )


def detect_python() -> PythonInfo:
    """The interpreter running bnb-provision."""
    v = sys.version_info
    return PythonInfo(
        version=f"{v.major}.{v.minor}.{v.micro}",
        executable=sys.executable,
        implementation=sys.implementation.name,
    )
