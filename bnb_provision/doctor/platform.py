"""Checks of the platform under the stack: Windows installs, macOS, the NVIDIA driver
against torch's CUDA build, and a CPU-only torch on a machine with NVIDIA GPUs."""

from __future__ import annotations

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.db.model import CompatDB
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.target import EnvInfo
from bnb_provision.doctor.check import REBUILD, DoctorOptions
from bnb_provision.doctor.check import version_or_none as _v
from bnb_provision.doctor.findings import Finding

__all__ = ["check_cpu_only", "check_driver", "check_macos", "check_windows"]


def check_windows(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """The Visual C++ runtime, third-party Windows forks, pre-0.43 and Linux-only builds."""
    if m.os.system != "windows":
        return []
    out: list[Finding] = []
    if m.os.msvc_runtime is False:
        out.append(
            Finding(
                id="msvc-runtime-missing",
                category="windows_install",
                severity="error",
                title="the Microsoft Visual C++ runtime (vcruntime140.dll) is missing",
                evidence=("System32\\vcruntime140.dll not found",),
                fix="install the Visual C++ Redistributable (x64): https://aka.ms/vs/17/release/vc_redist.x64.exe",
                source="https://github.com/pytorch/pytorch/issues/32916",
            )
        )
    env = m.env
    if env is None:
        return out
    return out + _windows_bitsandbytes(env, db)


def _windows_bitsandbytes(env: EnvInfo, db: CompatDB) -> list[Finding]:
    floor = db.bnb_os_floor("windows")  # the first official Windows wheels
    out: list[Finding] = []
    bnb_v = _v(env.version_of("bitsandbytes"))
    if env.version_of("bitsandbytes-windows"):
        out.append(
            Finding(
                id="bnb-windows-fork",
                category="windows_install",
                severity="error",
                title="a third-party 'bitsandbytes-windows' build is installed",
                evidence=(f"bitsandbytes-windows {env.version_of('bitsandbytes-windows')}",),
                fix="pip uninstall bitsandbytes-windows; then install official wheels "
                f"(bitsandbytes >= {floor}): " + REBUILD,
                source="https://github.com/bitsandbytes-foundation/bitsandbytes/issues/1058",
            )
        )
    if bnb_v is not None and bnb_v < floor:
        legacy = str(bnb_v) in db.bnb_windows_legacy_versions
        out.append(
            Finding(
                id="bnb-before-official-windows",
                category="windows_install",
                severity="error",
                title=f"bitsandbytes {bnb_v} predates official Windows support ({floor})",
                evidence=(
                    f"bitsandbytes {bnb_v}"
                    + (
                        " (a build from the unmaintained third-party "
                        f"index {db.bnb_windows_legacy_index})"
                        if legacy
                        else ""
                    ),
                ),
                fix=f"install bitsandbytes >= {floor} with a CUDA torch from download.pytorch.org: "
                + REBUILD
                + "; or use WSL2",
                source="https://github.com/jllllll/bitsandbytes-windows-webui",
            )
        )
    if (
        env.bitsandbytes
        and env.bitsandbytes.libraries
        and not any(lib.file.endswith(".dll") for lib in env.bitsandbytes.libraries)
    ):
        out.append(
            Finding(
                id="bnb-linux-libraries-on-windows",
                category="windows_install",
                severity="error",
                title="the installed bitsandbytes holds Linux libraries only",
                evidence=tuple(lib.file for lib in env.bitsandbytes.libraries[:4]),
                fix=f"install official Windows wheels (bitsandbytes >= {floor}): " + REBUILD,
            )
        )
    return out


def check_driver(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """A driver older than the floor of torch's CUDA build."""
    env = m.env
    if env is None or env.torch is None or env.torch.cuda is None or m.nvidia is None:
        return []
    driver = _v(m.nvidia.driver)
    floor, why = db.min_driver(env.torch.cuda, m.os.system)
    if driver is None or floor is None or driver >= floor:
        return []
    return [
        Finding(
            id="driver-too-old",
            category="driver_too_old",
            severity="error",
            title=f"driver {m.nvidia.driver} cannot run torch's CUDA {env.torch.cuda} build",
            evidence=(f"torch {env.torch.version}", why),
            fix=f"install NVIDIA driver >= {floor}, or {REBUILD} (picks a build this driver runs)",
            source=next(
                (
                    f.source
                    for f in db.families
                    if f.major == CudaVersion.parse(env.torch.cuda).major
                ),
                None,
            ),
        )
    ]


def check_cpu_only(m: Machine, _db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """A CPU-only torch on a machine with NVIDIA GPUs."""
    env = m.env
    if env is None or env.torch is None or not m.gpus or env.torch.cuda or env.torch.hip:
        return []
    where = (
        "PyPI's torch for Windows is always a CPU build"
        if m.os.system == "windows"
        else "a CPU-only torch build is installed"
    )
    return [
        Finding(
            id="cpu-only-torch",
            category="cpu_only_build",
            severity="error",
            title=f"torch {env.torch.version} is a CPU build on a machine with "
            f"{len(m.gpus)} NVIDIA GPU(s)",
            evidence=(where, f"GPU 0: {m.gpus[0].name}"),
            fix=REBUILD + " (installs torch from the PyTorch CUDA index for this driver)",
            source="https://github.com/pytorch/pytorch/issues/28111",
        )
    ]


def check_macos(m: Machine, db: CompatDB, _o: DoctorOptions) -> list[Finding]:
    """macOS has no CUDA; bitsandbytes before its first macOS wheel has no macOS build."""
    if m.os.system != "macos":
        return []
    floor = db.bnb_os_floor("macos")  # the first macOS wheel
    out = [
        Finding(
            id="macos-no-cuda",
            category="other",
            severity="info",
            title="macOS has no CUDA: bitsandbytes runs its CPU/MPS backend",
            evidence=(f"bitsandbytes ships a macOS arm64 wheel from {floor}",),
        )
    ]
    bnb = _v(m.env.version_of("bitsandbytes")) if m.env else None
    if bnb is not None and bnb < floor:
        out.append(
            Finding(
                id="macos-old-bnb",
                category="other",
                severity="error",
                title=f"bitsandbytes {bnb} has no macOS build",
                evidence=(f"bitsandbytes {bnb}",),
                fix=f"install bitsandbytes >= {floor}: " + REBUILD,
            )
        )
    return out
