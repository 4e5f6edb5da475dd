"""The machine snapshot: everything ``detect`` knows, as one frozen value.

:func:`detect_machine` reads the running system; :func:`machine_from_dict`
reads a snapshot (``bnb-provision.machine/1``, possibly hand-written and
partial) with errors that give the path of the bad field;
:meth:`Machine.to_dict` writes one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.detect.fatbin import KernelInventory
from bnb_provision.detect.host import (
    OSInfo,
    PythonInfo,
    detect_os,
    detect_python,
    normalize_arch,
    normalize_system,
)
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo, detect_nvidia
from bnb_provision.detect.target import (
    BnbInfo,
    BnbLibrary,
    EnvInfo,
    TorchInfo,
    find_env_python,
    inspect_env,
)
from bnb_provision.errors import SnapshotError

__all__ = ["MACHINE_SCHEMA", "Machine", "detect_machine", "load_machine", "machine_from_dict"]

MACHINE_SCHEMA: Final = "bnb-provision.machine/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Machine:
    """A machine: OS, Python, NVIDIA driver and GPUs, optionally a target environment."""

    os: OSInfo
    python: PythonInfo
    nvidia: NvidiaInfo | None
    gpus: tuple[Gpu, ...]
    env: EnvInfo | None = None
    cuda_visible_devices: str | None = None
    warnings: tuple[str, ...] = ()
    label: str | None = None  # where a snapshot came from (file name)

    def to_dict(self) -> dict[str, Any]:
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
    )


# ---------------------------------------------------------------------------
# reading snapshots

_CC_RE: Final = re.compile(r"^(\d+)\.(\d+)$")


def _parse_cc(f: Fields, key: str) -> tuple[int, int] | None:
    value = f.data.get(key)
    f._seen.add(key)  # noqa: SLF001 - read by hand to accept "9.0", 9.0 and [9, 0]
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):  # noqa: PLR2004
        return int(value[0]), int(value[1])
    text = str(value)
    m = _CC_RE.match(text)
    f.check(bool(m), key, f'expected "X.Y" such as "8.6", got {value!r}')
    assert m is not None
    return int(m.group(1)), int(m.group(2))


def _gpu(f: Fields, i: int) -> Gpu:
    g = Gpu(
        index=f.integer("index", i),
        name=f.text("name", "unknown"),
        compute_capability=_parse_cc(f, "compute_capability"),
        memory_total_mib=f.integer("memory_total_mib", None),
        memory_free_mib=f.integer("memory_free_mib", None),
        uuid=f.text("uuid", None),
        mig_mode=f.flag("mig_mode", None),
    )
    f.check(
        g.name != "unknown" or g.compute_capability is not None,
        "name",
        "give the GPU's name or its compute_capability",
    )
    f.done()
    return g


def _kernels(f: Fields | None) -> KernelInventory | None:
    if f is None:
        return None
    k = KernelInventory(
        format=f.text("format", "elf"),
        sass=tuple(f.int_list("sass", [])),
        ptx=tuple(f.int_list("ptx", [])),
        rel_sass=tuple(f.int_list("relocatable_sass", [])),
        rel_ptx=tuple(f.int_list("relocatable_ptx", [])),
        fatbins=f.integer("fatbins", 0),
    )
    f.done()
    return k


def _python(f: Fields) -> PythonInfo:
    python = PythonInfo(
        version=f.text("version"),
        executable=f.text("executable", None),
        implementation=f.text("implementation", "cpython"),
    )
    f.check(
        bool(re.match(r"^3\.\d+", python.version)),
        "version",
        f"expected a Python 3 version such as '3.12', got {python.version!r}",
    )
    f.done()
    return python


def _env(f: Fields) -> EnvInfo:
    py = f.table("python")
    assert py is not None
    python = _python(py)
    packages_t = f.table("packages", {})
    assert packages_t is not None
    packages = tuple(sorted((k, packages_t.text(k)) for k in list(packages_t.data)))
    torch = None
    tf = f.table("torch", None)
    if tf is not None:
        torch = TorchInfo(
            version=tf.text("version"),
            cuda=tf.text("cuda", None),
            hip=tf.text("hip", None),
            xpu=tf.text("xpu", None),
            location=tf.text("location", None),
        )
        tf.text("variant", None)
        tf.done()
    bnb = None
    bf = f.table("bitsandbytes", None)
    if bf is not None:
        libs = []
        for lf in bf.tables("libraries", []):
            libs.append(
                BnbLibrary(
                    file=lf.text("file"),
                    backend=lf.text("backend"),
                    version=lf.text("version", None),
                    kernels=_kernels(lf.table("kernels", None)),
                )
            )
            lf.done()
        bnb = BnbInfo(
            version=bf.text("version"),
            location=bf.text("location", None),
            libraries=tuple(libs),
            direct_url=bf.text("direct_url", None),
        )
        bf.done()
    variables_t = f.table("variables", {})
    assert variables_t is not None
    variables = tuple(sorted((k, variables_t.text(k)) for k in list(variables_t.data)))
    f.table("quant_libs", {})  # derived from packages; accepted and ignored
    installed = f.table("installed_at", {})
    assert installed is not None
    stamps = tuple(
        sorted((k, float(v)) for k, v in installed.data.items() if isinstance(v, int | float))
    )
    env = EnvInfo(
        python=python,
        prefix=f.text("prefix", None),
        packages=packages,
        torch=torch,
        bitsandbytes=bnb,
        variables=variables,
        cudart=tuple(f.str_list("cudart", [])),
        installed_at=stamps,
    )
    f.done()
    return env


def machine_from_dict(data: object, *, label: str | None = None) -> Machine:
    """Build a :class:`Machine` from a snapshot dict. Raises :class:`SnapshotError`."""
    where = label or "snapshot"
    try:
        f = Fields(data, "")
        schema = f.text("schema", None)
        if schema is not None and schema.split("/")[0] != MACHINE_SCHEMA.split("/")[0]:
            raise FieldError(f"schema: expected {MACHINE_SCHEMA!r}, got {schema!r}")
        if schema is not None and schema != MACHINE_SCHEMA:
            raise FieldError(
                f"schema: this bnb-provision reads {MACHINE_SCHEMA!r}, got "
                f"{schema!r}; upgrade bnb-provision"
            )
        tool = f.table("tool", None)
        if tool is not None:
            tool._seen.update(tool.data)  # noqa: SLF001 - informational only
        osf = f.table("os")
        assert osf is not None
        os_info = OSInfo(
            system=normalize_system(osf.text("system")),
            arch=normalize_arch(osf.text("arch", "x86_64")),
            release=osf.text("release", None),
            distro=osf.text("distro", None),
            distro_id=osf.text("distro_id", None),
            distro_version=osf.text("distro_version", None),
            libc=osf.text("libc", None),
            wsl=osf.flag("wsl", False),
            containers=tuple(osf.str_list("containers", [])),
            msvc_runtime=osf.flag("msvc_runtime", None),
            apple_silicon=osf.flag("apple_silicon", None),
        )
        osf.check(
            os_info.system in {"linux", "windows", "macos"},
            "system",
            f"expected linux, windows or macos, got {os_info.system!r}",
        )
        osf.done()
        pyf = f.table("python", None)
        if pyf is None:
            raise FieldError(
                'python: required field is missing (give at least {"version": "3.12"})'
            )
        python = _python(pyf)
        nvidia = None
        nf = f.table("nvidia", None)
        if nf is not None:
            nvidia = NvidiaInfo(
                driver=nf.text("driver"),
                cuda_driver=nf.text("cuda_driver", None),
                source=nf.text("source", "snapshot"),
            )
            nf.check(
                bool(re.match(r"^\d+(\.\d+)*$", nvidia.driver)),
                "driver",
                f"expected a driver version such as '580.95.05', got {nvidia.driver!r}",
            )
            nf.done()
        gpus = tuple(_gpu(g, i) for i, g in enumerate(f.tables("gpus", [])))
        env_f = f.table("env", None)
        env = _env(env_f) if env_f is not None else None
        machine = Machine(
            os=os_info,
            python=python,
            nvidia=nvidia,
            gpus=gpus,
            env=env,
            cuda_visible_devices=f.text("cuda_visible_devices", None),
            warnings=tuple(f.str_list("warnings", [])),
            label=label,
        )
        f.done()
    except FieldError as exc:
        raise SnapshotError(f"{where}: {exc}") from exc
    if gpus and nvidia is None:
        raise SnapshotError(
            f"{where}: gpus are listed but nvidia is null; add "
            '"nvidia": {"driver": "..."} (the driver version)'
        )
    return machine


def load_machine(path: str | os.PathLike[str]) -> Machine:
    """Read a snapshot file written by ``bnb-provision detect --json`` (or by hand)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError(f"--machine {p}: cannot read it ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(
            f"--machine {p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Write it with `bnb-provision detect --json > FILE`."
        ) from exc
    return machine_from_dict(data, label=p.name)


def with_env(machine: Machine, env: EnvInfo | None) -> Machine:
    return replace(machine, env=env)
