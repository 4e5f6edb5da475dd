"""What a target Python environment has installed, read without importing torch.

The target interpreter runs ``_probe_script.py`` (standard library only); this
side parses ``torch/version.py`` as text and reads the kernels of each native
library bitsandbytes ships.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from packaging.version import InvalidVersion, Version

from bnb_provision.core import process
from bnb_provision.core.cuda import CudaVersion, variant_of_cuda
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.detect.host import PythonInfo
from bnb_provision.detect.interpreter import resolve_interpreter
from bnb_provision.errors import ExternalToolError, TargetEnvError

if TYPE_CHECKING:  # fatbin loads when binaries are read (init's stamp reads none)
    from bnb_provision.detect.fatbin import KernelInventory

__all__ = [
    "BnbInfo",
    "BnbLibrary",
    "EnvInfo",
    "TorchInfo",
    "find_env_python",
    "inspect_env",
    "installed_from_files",
    "parse_bnb_library_name",
    "parse_torch_version_py",
    "site_packages",
]

PROBE_TIMEOUT: Final = 60.0
_MAX_MTIME: Final = 1e18  # seconds: beyond it (or NaN) a number is no file's mtime

# GPTQ/AWQ stacks: they pin their own torch builds and replace torch when installed beside it.
GPTQ_AWQ: Final = (
    "auto-gptq",
    "gptqmodel",
    "autoawq",
    "autoawq-kernels",
    "exllamav2",
    "exllama",
    "llm-awq",
    "awq",
)
# Every other quantization or kernel library worth reporting.
QUANT_LIBS: Final = (
    *GPTQ_AWQ,
    "optimum",
    "hqq",
    "aqlm",
    "quanto",
    "optimum-quanto",
    "marlin",
    "compressed-tensors",
    "torchao",
    "vllm",
    "flash-attn",
    "bitsandbytes-windows",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class TorchInfo:
    version: str  # "2.11.0+cu130"
    cuda: str | None  # "13.0"
    hip: str | None = None
    xpu: str | None = None
    location: str | None = None

    @property
    def variant(self) -> str:
        """``cu130``, ``rocm6.2``, ``xpu`` or ``cpu`` from what the build reports."""
        if self.cuda:
            try:
                return variant_of_cuda(self.cuda)
            except ValueError:
                return "unknown"
        if self.hip:
            return "rocm" + ".".join(self.hip.split(".")[:2])
        if self.xpu:
            return "xpu"
        return "cpu"


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbLibrary:
    """One native library shipped by bitsandbytes."""

    file: str
    backend: str  # cuda | rocm | xpu | cpu | mps | other
    version: str | None  # "130" for libbitsandbytes_cuda130.so
    kernels: KernelInventory | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class BnbInfo:
    version: str
    location: str | None
    libraries: tuple[BnbLibrary, ...]
    direct_url: str | None = None

    def library(self, backend: str, version: str) -> BnbLibrary | None:
        for lib in self.libraries:
            if lib.backend == backend and lib.version == version:
                return lib
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvInfo:
    """A target environment."""

    python: PythonInfo
    prefix: str | None
    packages: tuple[tuple[str, str], ...]  # (normalized name, version), sorted
    torch: TorchInfo | None
    bitsandbytes: BnbInfo | None
    variables: tuple[tuple[str, str], ...] = ()
    cudart: tuple[str, ...] = ()
    installed_at: tuple[tuple[str, float], ...] = ()

    def version_of(self, name: str) -> str | None:
        key = name.lower().replace("_", "-").replace(".", "-")
        for n, v in self.packages:
            if n == key:
                return v
        return None

    def variable(self, name: str) -> str | None:
        for k, v in self.variables:
            if k == name:
                return v
        return None

    @property
    def quant_libs(self) -> tuple[tuple[str, str], ...]:
        return tuple((n, v) for n, v in self.packages if n in QUANT_LIBS)


_LIB_RE: Final = re.compile(
    r"^(?:lib)?bitsandbytes_(?P<backend>cuda|rocm|xpu|cpu|mps)(?P<version>\d*)(?P<rest>[_a-z0-9]*)"
    r"\.(?:so|dll|dylib)$"
)


def parse_bnb_library_name(file_name: str) -> tuple[str, str | None]:
    """``libbitsandbytes_cuda124.so`` -> ``("cuda", "124")``; unknown -> ``("other", None)``."""
    m = _LIB_RE.match(file_name)
    if not m:
        return "other", None
    backend = m.group("backend")
    if m.group("rest") == "_nocublaslt":
        backend = "cuda-nocublaslt"
    return backend, m.group("version") or None


_MAX_LINE: Final = 4096  # torch/version.py lines are short; longer ones are not read
_ASSIGN_RE: Final = re.compile(r"^(?P<key>[A-Za-z_]+)\s*(?::[^=]+)?=\s*(?P<value>.+?)\s*$")


def parse_torch_version_py(text: str) -> TorchInfo:
    """Parse the text of ``torch/version.py`` (never importing it)."""
    values: dict[str, object] = {}
    for line in text.splitlines():
        m = _ASSIGN_RE.match(line) if len(line) <= _MAX_LINE else None
        if not m:
            continue
        try:
            values[m.group("key")] = ast.literal_eval(m.group("value"))
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            continue  # not a literal this reader needs
    version = values.get("__version__")
    if not isinstance(version, str):
        raise ValueError("torch/version.py has no __version__")  # noqa: TRY004

    def opt(key: str) -> str | None:
        v = values.get(key)
        return v if isinstance(v, str) and v else None

    cuda = opt("cuda")
    if cuda is not None:
        CudaVersion.parse(cuda)  # ValueError: "torch/version.py: ... is not a CUDA version"
    return TorchInfo(version=version, cuda=cuda, hip=opt("hip"), xpu=opt("xpu"))


def find_env_python(env_dir: str | os.PathLike[str]) -> Path:
    """The interpreter of a virtual or conda environment directory."""
    root = Path(env_dir)
    try:
        is_dir = root.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        is_dir = False
    if not is_dir:
        raise TargetEnvError(
            f"--env {root}: no such directory. Give the environment's folder "
            "(the one holding bin/python or Scripts\\python.exe), or use --python PATH."
        )
    for rel in ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe"):
        candidate = root / rel
        if candidate.exists():
            return candidate
    raise TargetEnvError(
        f"--env {root}: no Python interpreter inside (looked for bin/python3, bin/python, "
        "Scripts\\python.exe). Is it a virtual environment? Try --python PATH instead."
    )


def _run_probe(python: str) -> dict[str, Any]:
    script = (Path(__file__).parent / "_probe_script.py").read_text(encoding="utf-8")
    exe = resolve_interpreter(python)
    try:
        # run from the home folder, so that nothing in the current folder shadows a module
        done = process.run(
            [exe, "-X", "utf8", "-c", script],
            timeout=PROBE_TIMEOUT,
            cwd=Path.home() if Path.home().is_dir() else None,
        )
    except ExternalToolError as exc:
        raise TargetEnvError(
            f"--python {python}: could not run it as a Python 3.8+ interpreter ({exc}). "
            "Check that the path points at python, not at a folder or script; environments "
            "of Python 2 are not supported."
        ) from exc
    lines = done.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise TargetEnvError(
            f"--python {python}: it ran but did not answer like Python 3.8+ "
            f"(output: {done.stdout[:200]!r})"
        )
    if "error" in data:
        raise TargetEnvError(
            f"--python {python}: {str(data['error'])[:300]}; bnb-provision needs Python 3.8+"
        )
    return data


def _torch_from_probe(f: Fields | None, warnings: list[str]) -> TorchInfo | None:
    if f is None:
        return None
    text = f.text("version_py", None)
    location = f.text("location", None)
    if not text:
        warnings.append("torch is installed but torch/version.py is missing: a broken install")
        return None
    try:
        parsed = parse_torch_version_py(text)
    except ValueError as exc:
        warnings.append(f"torch: {exc}")
        return None
    return TorchInfo(
        version=parsed.version, cuda=parsed.cuda, hip=parsed.hip, xpu=parsed.xpu, location=location
    )


def _library_from_probe(path: str, warnings: list[str], *, read_binaries: bool) -> BnbLibrary:
    name = Path(path).name
    backend, version = parse_bnb_library_name(name)
    kernels = None
    if read_binaries and backend.startswith("cuda"):
        try:
            from bnb_provision.detect.fatbin import read_kernels

            kernels = read_kernels(path)
        except (OSError, ValueError) as exc:
            warnings.append(f"{name}: could not read its kernels ({exc})")
    return BnbLibrary(file=name, backend=backend, version=version, kernels=kernels)


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _bnb_from_probe(
    f: Fields | None, warnings: list[str], *, read_binaries: bool
) -> BnbInfo | None:
    if f is None:
        return None
    version = f.text("version")
    if not _is_version(version):
        warnings.append(f"bitsandbytes {version!r}: not a version (a broken install?)")
        return None
    libs = tuple(
        _library_from_probe(p, warnings, read_binaries=read_binaries)
        for p in f.str_list("libraries", [])
    )
    return BnbInfo(
        version=version,
        location=f.text("location", None),
        libraries=libs,
        direct_url=f.text("direct_url", None),
    )


def _strings(f: Fields, key: str) -> tuple[tuple[str, str], ...]:
    """A table of strings; entries that are not strings (a broken dist's version) skipped."""
    table = f.table(key, {})
    assert table is not None
    return tuple(sorted((str(k), v) for k, v in table.data.items() if isinstance(v, str)))


def _env_from_probe(data: dict[str, Any], warnings: list[str], *, read_binaries: bool) -> EnvInfo:
    """The probe's answer, checked field by field (it comes from another interpreter)."""
    f = Fields(data, "")
    py = f.table("python")
    assert py is not None
    python = PythonInfo(
        version=py.text("version"),
        executable=py.text("executable", None),
        implementation=py.text("implementation", "cpython"),
    )
    stamps = f.table("installed_at", {})
    assert stamps is not None
    return EnvInfo(
        python=python,
        prefix=f.text("prefix", None),
        packages=_strings(f, "packages"),
        torch=_torch_from_probe(f.table("torch", None), warnings),
        bitsandbytes=_bnb_from_probe(
            f.table("bitsandbytes", None), warnings, read_binaries=read_binaries
        ),
        variables=_strings(f, "variables"),
        cudart=tuple(f.str_list("cudart", [])),
        installed_at=tuple(
            sorted(
                (str(k), float(v))
                for k, v in stamps.data.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < _MAX_MTIME
            )
        ),
    )


def inspect_env(python: str, warnings: list[str], *, read_binaries: bool = True) -> EnvInfo:
    """Inspect the environment of interpreter ``python`` (a path, or a name on PATH)."""
    data = _run_probe(python)
    try:
        return _env_from_probe(data, warnings, read_binaries=read_binaries)
    except FieldError as exc:
        raise TargetEnvError(
            f"--python {python}: unexpected answer from the probe ({exc})"
        ) from exc


def site_packages(env_dir: str | os.PathLike[str]) -> Path | None:
    """The site-packages folder of a virtual environment, found on disk (no interpreter run)."""
    root = Path(env_dir)
    found = sorted(root.glob("lib/python3*/site-packages")) or sorted(
        root.glob("Lib/site-packages")
    )
    return found[-1] if found else None


def installed_from_files(site: Path) -> tuple[dict[str, str], TorchInfo | None]:
    """Installed distributions (normalized name -> version) and torch's build, from files.

    Reads the ``*.dist-info`` folder names (``name-version.dist-info``, the version never
    holds a dash) and ``torch/version.py`` as text: a fresh environment is read this way
    in a millisecond, without starting its interpreter.
    """
    packages: dict[str, str] = {}
    for info in site.glob("*.dist-info"):
        name, sep, version = info.name.removesuffix(".dist-info").rpartition("-")
        if sep:
            packages[re.sub(r"[-_.]+", "-", name).lower()] = version
    torch = None
    version_py = site / "torch" / "version.py"
    if version_py.is_file():
        try:
            torch = parse_torch_version_py(version_py.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            torch = None
    return packages, torch


def current_python() -> str:
    return sys.executable
