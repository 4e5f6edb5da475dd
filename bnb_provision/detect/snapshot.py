"""Reading machine snapshots (``bnb-provision.machine/1``), hand-written and partial ones
too, with errors that give the path of the bad field.

Files come from other machines and other shells: UTF-8 with or without a BOM and
UTF-16 (what Windows PowerShell's ``>`` writes) are read; size and nesting are bounded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.jsonio import JsonInputError, decode_json, max_depth
from bnb_provision.core.text import is_digits
from bnb_provision.detect.accelerators import ACCELERATOR_VENDORS, Accelerator, Runtime
from bnb_provision.detect.fatbin import KernelInventory
from bnb_provision.detect.host import OSInfo, PythonInfo, normalize_arch, normalize_system
from bnb_provision.detect.machine import MACHINE_SCHEMA, Machine
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo
from bnb_provision.detect.target import BnbInfo, BnbLibrary, EnvInfo, TorchInfo
from bnb_provision.errors import SnapshotError

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "decode_snapshot",
    "load_machine",
    "machine_from_dict",
    "max_depth",
]

MAX_SNAPSHOT_BYTES: Final = 16 * 1024 * 1024  # a real snapshot is a few KiB
_MAX_DEPTH: Final = 64

_CC_RE: Final = re.compile(r"^([0-9]{1,3})\.([0-9]{1,3})$")


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


def _vendor(f: Fields) -> str:
    vendor = f.text("vendor")
    f.check(
        vendor in ACCELERATOR_VENDORS,
        "vendor",
        f"expected one of {', '.join(ACCELERATOR_VENDORS)}, got {vendor!r}",
    )
    return vendor


def _accelerator(f: Fields, i: int) -> Accelerator:
    vendor = _vendor(f)
    a = Accelerator(
        vendor=next(v for v in ACCELERATOR_VENDORS if v == vendor),
        index=f.integer("index", i),
        name=f.text("name"),
        target=f.text("target", None),
        memory_total_mib=f.integer("memory_total_mib", None),
        source=f.text("source", "snapshot"),
    )
    f.done()
    return a


def _runtime(f: Fields) -> Runtime:
    vendor = _vendor(f)
    r = Runtime(
        vendor=next(v for v in ACCELERATOR_VENDORS if v == vendor),
        name=f.text("name"),
        version=f.text("version", None),
        source=f.text("source", "snapshot"),
    )
    f.done()
    return r


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
        bool(re.match(r"^3\.[0-9]+", python.version)),
        "version",
        f"expected a Python 3 version such as '3.12', got {python.version!r}",
    )
    f.done()
    return python


def _python_or(pyf: Fields | None, given: str | None) -> PythonInfo:
    """The snapshot's ``python``, or the version given with ``--python`` where it has none."""
    if pyf is not None:
        return _python(pyf)
    if given is None:
        raise FieldError(
            'python: required field is missing (give at least {"version": "3.12"}, '
            "or plan with --python X.Y)"
        )
    return PythonInfo(version=given)


def _torch(tf: Fields | None) -> TorchInfo | None:
    if tf is None:
        return None
    cuda = tf.text("cuda", None)
    if cuda is not None:
        try:
            CudaVersion.parse(cuda)
        except ValueError as exc:
            tf.check(False, "cuda", str(exc))
    torch = TorchInfo(
        version=tf.text("version"),
        cuda=cuda,
        hip=tf.text("hip", None),
        xpu=tf.text("xpu", None),
        location=tf.text("location", None),
    )
    tf.text("variant", None)  # derived from the version; accepted and ignored
    tf.done()
    return torch


def _library(lf: Fields) -> BnbLibrary:
    version = lf.text("version", None)
    lf.check(
        version is None or is_digits(version),
        "version",
        f"expected the digits in the library's name (124 of libbitsandbytes_cuda124.so), "
        f"got {version!r:.40}",
    )
    lib = BnbLibrary(
        file=lf.text("file"),
        backend=lf.text("backend"),
        version=version,
        kernels=_kernels(lf.table("kernels", None)),
    )
    lf.done()
    return lib


def _bnb(bf: Fields | None) -> BnbInfo | None:
    if bf is None:
        return None
    version = bf.text("version")
    try:
        Version(version)
    except InvalidVersion:
        bf.check(False, "version", f"expected a bitsandbytes version, got {version!r}")
    bnb = BnbInfo(
        version=version,
        location=bf.text("location", None),
        libraries=tuple(_library(lf) for lf in bf.tables("libraries", [])),
        direct_url=bf.text("direct_url", None),
    )
    bf.done()
    return bnb


def _env(f: Fields) -> EnvInfo:
    py = f.table("python")
    assert py is not None
    python = _python(py)
    packages_t = f.table("packages", {})
    assert packages_t is not None
    packages = tuple(sorted((k, packages_t.text(k)) for k in list(packages_t.data)))
    torch = _torch(f.table("torch", None))
    bnb = _bnb(f.table("bitsandbytes", None))
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


def _os(osf: Fields | None) -> OSInfo:
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
    return os_info


def _nvidia(nf: Fields | None) -> NvidiaInfo | None:
    if nf is None:
        return None
    nvidia = NvidiaInfo(
        driver=nf.text("driver"),
        cuda_driver=nf.text("cuda_driver", None),
        source=nf.text("source", "snapshot"),
    )
    nf.check(
        bool(re.match(r"^[0-9]{1,9}(\.[0-9]{1,9})*$", nvidia.driver)),
        "driver",
        f"expected a driver version such as '580.95.05', got {nvidia.driver!r}",
    )
    nf.done()
    return nvidia


def machine_from_dict(
    data: object, *, label: str | None = None, python: str | None = None
) -> Machine:
    """Build a :class:`Machine` from a snapshot dict. Raises :class:`SnapshotError`.

    ``python`` (``X.Y``, from ``--python``) stands in for a snapshot without ``python``."""
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
        os_info = _os(f.table("os"))
        python_info = _python_or(f.table("python", None), python)
        nvidia = _nvidia(f.table("nvidia", None))
        gpus = tuple(_gpu(g, i) for i, g in enumerate(f.tables("gpus", [])))
        env_f = f.table("env", None)
        env = _env(env_f) if env_f is not None else None
        machine = Machine(
            os=os_info,
            python=python_info,
            nvidia=nvidia,
            gpus=gpus,
            env=env,
            cuda_visible_devices=f.text("cuda_visible_devices", None),
            warnings=tuple(f.str_list("warnings", [])),
            label=label,
            accelerators=tuple(
                _accelerator(a, i) for i, a in enumerate(f.tables("accelerators", []))
            ),
            runtimes=tuple(_runtime(r) for r in f.tables("runtimes", [])),
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


def decode_snapshot(raw: bytes, where: str) -> object:
    """JSON from bytes in UTF-8 (with or without a BOM) or UTF-16 (a BOM says which),
    nested at most 64 deep. Raises :class:`SnapshotError` naming what is wrong."""
    try:
        return decode_json(raw, max_depth_allowed=_MAX_DEPTH)
    except JsonInputError as exc:
        hint = {
            "depth": "; a snapshot is at most a few",
            "value": "",
        }.get(exc.kind, ". Write it with `bnb-provision detect --json > FILE`.")
        text = f"not a snapshot ({exc})" if exc.kind == "value" else str(exc)
        raise SnapshotError(f"{where}: {text}{hint}") from exc


def load_machine(path: str | os.PathLike[str], *, python: str | None = None) -> Machine:
    """Read a snapshot file written by ``bnb-provision detect --json`` (or by hand);
    ``python`` (``X.Y``) stands in for a snapshot without ``python``."""
    p = Path(path)
    where = f"--machine {p}"
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise SnapshotError(f"{where}: cannot read it ({exc.strerror or exc})") from exc
    except ValueError as exc:  # a NUL in the name
        raise SnapshotError(f"{where}: cannot read it ({exc})") from exc
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"{where}: larger than {MAX_SNAPSHOT_BYTES >> 20} MiB; not a snapshot")
    return machine_from_dict(decode_snapshot(raw, where), label=p.name, python=python)
