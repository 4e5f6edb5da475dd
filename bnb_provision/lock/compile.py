"""One lock group through uv: ``uv pip compile --format pylock.toml --generate-hashes``
for the group's Python version and platform, the result checked (PEP 751 validation with
``packaging.pylock``, the planned torch, no GPTQ/AWQ library in a bitsandbytes lock) and
uv's failures explained. Nothing here writes an output file.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.core import process
from bnb_provision.core.tomlio import toml_loads, toml_table
from bnb_provision.core.uv import UV_TIMEOUT, find_uv, network_failure, python_platform
from bnb_provision.errors import ExternalToolError, LockfileError
from bnb_provision.lock.spec import LockOptions, LockSpec

__all__ = ["Compiled", "compile_pylock", "explain_uv_failure", "packages_of", "uv_compile_args"]

_FORBIDDEN_IN_BNB: Final = frozenset({"auto-gptq", "gptqmodel", "autoawq", "autoawq-kernels"})
Packages = tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Compiled:
    """A group's validated pylock.toml, as text (with bnb-provision's ``[tool]`` table) and
    parsed, and the existing lock's packages it replaces (empty for a new lock)."""

    spec: LockSpec
    pylock_text: str
    pylock: dict[str, Any]
    packages: Packages
    previous: Packages
    seconds: float


def uv_compile_args(spec: LockSpec, input_file: Path, output: Path, opts: LockOptions) -> list[str]:
    """uv's arguments (after ``uv``) to compile ``input_file`` into ``output``."""
    args = [
        "pip",
        "compile",
        str(input_file),
        "--format",
        "pylock.toml",
        "--generate-hashes",
        "--python-version",
        spec.python,
        "--python-platform",
        python_platform(spec.platform, spec.glibc),
        "--no-header",
        "--quiet",
        # the target interpreter is never needed to resolve wheels; never fetch one
        "--no-python-downloads",
        "-o",
        str(output),
        # uv runs in the input's folder: no uv.toml or project of the caller's folder
        "--directory",
        str(input_file.parent),
    ]
    if opts.offline:
        args += ["--offline", "--no-index"]
    else:
        args += ["--default-index", opts.default_index]
    for d in opts.find_links:
        args += ["--find-links", str(d)]
    if opts.cache_dir is not None:
        args += ["--cache-dir", str(opts.cache_dir)]
    return args


def packages_of(pylock: dict[str, Any]) -> Packages:
    """(name, version) of every package of a parsed pylock.toml, sorted."""
    return tuple(sorted((p["name"], str(p["version"])) for p in pylock.get("packages", [])))


def _previous(path: Path, opts: LockOptions) -> tuple[bytes | None, Packages]:
    """The lock already at ``path``: its bytes for uv's preferences (uv then keeps its
    versions where the pins allow, pip-compile's rule, so re-locking does not churn; not
    with --upgrade) and its packages. Nothing for a missing, unreadable or corrupt lock,
    or a symlink (never followed)."""
    if path.is_symlink() or not path.is_file():
        return None, ()
    try:
        data = path.read_bytes()
        packages = packages_of(toml_loads(data.decode("utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, ()
    return (None if opts.upgrade else data), packages


@contextlib.contextmanager
def _uv_compile(
    spec: LockSpec, opts: LockOptions, preferences: bytes | None
) -> Iterator[Callable[[], str]]:
    """Start uv for ``spec``; yields a function that waits for it and returns the
    pylock.toml text uv wrote. The scratch folder goes afterwards."""
    with tempfile.TemporaryDirectory(prefix="bnb-provision-lock-") as tmp:
        folder = Path(tmp)
        (folder / "pyproject.toml").write_text(spec.uv_input, encoding="utf-8")
        if preferences is not None:
            (folder / "pylock.toml").write_bytes(preferences)
        args = uv_compile_args(spec, folder / "pyproject.toml", folder / "pylock.toml", opts)
        running = process.start([find_uv(), *args], timeout=UV_TIMEOUT, check=True)

        def finish() -> str:
            running.wait()
            return (folder / "pylock.toml").read_text(encoding="utf-8")

        try:
            yield finish
        finally:
            running.cancel()  # nothing when it finished


def _with_meta(uv_text: str, spec: LockSpec, opts: LockOptions) -> str:
    """uv's pylock.toml with bnb-provision's ``[tool.bnb-provision]`` table added."""
    meta = {
        "generator": f"bnb-provision {__version__}",
        "db-version": spec.db_version,
        "stack": spec.stack,
        "platform": spec.platform,
        "python": spec.python,
        "torch": f"{spec.torch}+{spec.variant}",
        "torch-index": spec.torch_index or "PyPI",
        **(
            {"bitsandbytes": spec.bitsandbytes, "bitsandbytes-library": spec.bitsandbytes_library}
            if spec.bitsandbytes
            else {}
        ),
        **({"holds": f"{spec.holds[0]}=={spec.holds[1]}"} if spec.holds[0] else {}),
        "driver-floor": spec.driver_floor,
        "gpu-archs": list(spec.gpu_archs),
        "machines": list(spec.machines),
        "regenerate": opts.regenerate,
        **({"warnings": list(spec.warnings)} if spec.warnings else {}),
    }
    if re.search(r"^\[+\s*tool\b", uv_text, re.MULTILINE):
        import tomlkit  # rare: uv wrote a tool table of its own; merge into it properly

        doc = tomlkit.parse(uv_text)
        tool = doc.get("tool") or tomlkit.table()
        tool["bnb-provision"] = meta
        doc["tool"] = tool
        return tomlkit.dumps(doc)
    return uv_text.rstrip("\n") + "\n\n" + toml_table("[tool.bnb-provision]", meta)


def _check(data: dict[str, Any], spec: LockSpec) -> Packages:
    """Validate the pylock (PEP 751) and what it locked; returns its packages."""
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise LockfileError(f"{spec.name}: uv's pylock.toml does not validate: {exc}") from exc
    packages = packages_of(data)
    names = {n for n, _ in packages}
    if spec.stack == "bnb" and names & _FORBIDDEN_IN_BNB:
        raise LockfileError(
            f"{spec.name}: the bitsandbytes lock pulled in "
            f"{', '.join(sorted(names & _FORBIDDEN_IN_BNB))}; lock GPTQ/AWQ "
            "with --stack gptq|awq into their own environment"
        )
    torch_locked = dict(packages).get("torch", "")
    if not torch_locked.startswith(spec.torch):
        raise LockfileError(
            f"{spec.name}: uv resolved torch {torch_locked}, not the planned {spec.torch}"
        )
    return packages


def compile_pylock(spec: LockSpec, opts: LockOptions, previous: Path) -> Compiled:
    """Resolve ``spec`` with uv (keeping the versions of the lock at ``previous``, unless
    ``opts.upgrade``) and check the result. Raises ExternalToolError (uv failed, with
    what to do) or LockfileError (uv's lock is not what was planned)."""
    start = time.perf_counter()
    preferences, old = _previous(previous, opts)
    with _uv_compile(spec, opts, preferences) as finish:
        try:
            uv_text = finish()
        except ExternalToolError as exc:
            raise explain_uv_failure(exc, spec, opts) from exc
    text = _with_meta(uv_text, spec, opts)
    data = toml_loads(text)
    packages = _check(data, spec)
    return Compiled(
        spec=spec,
        pylock_text=text,
        pylock=data,
        packages=packages,
        previous=old,
        seconds=time.perf_counter() - start,
    )


def explain_uv_failure(
    exc: ExternalToolError, spec: LockSpec, opts: LockOptions
) -> ExternalToolError:
    """uv's failure with what it means for this group and what to do next."""
    url = network_failure(exc.output)
    if spec.unverified and url is None and "torch" in exc.output:
        message = (
            f"{spec.name}: uv could not lock torch {spec.torch}+{spec.variant} from "
            f"{spec.torch_index}. The plan honoured --torch on a fact the DB could not "
            f"verify: {spec.unverified}. The index may not have it.\n{exc.output.strip()}\n"
            "Pin a torch whose listing is verified (bnb-provision plan without --torch "
            "names the newest), or pass --cuda for another variant."
        )
    elif url is not None:
        torch_index = ""
        if spec.torch_index:
            torch_index = (
                f", PyTorch index {spec.torch_index}: a mirror of it is given with "
                "--torch-index-url URL, where {variant} stands for cu126, cpu, ..."
            )
        message = (
            f"{spec.name}: could not reach {url} (index {opts.default_index}"
            + torch_index
            + "). A PyPI mirror is given with --index-url URL. On a machine without "
            "network, lock from a wheelhouse: --offline --find-links DIR (bnb-provision "
            "bundle fills one)."
        )
    elif "No solution found" in exc.output or "unsatisfiable" in exc.output:
        message = (
            f"{spec.name}: uv found no resolution.\n{exc.output.strip()}\n"
            f"The plan pinned: {', '.join(spec.requirements)} (torch {spec.variant} for "
            f"{', '.join(spec.machines)}). Relax a pin with --torch/--bnb/--python, or pick "
            "another --stack."
        )
    else:
        return exc
    return ExternalToolError(
        message, command=exc.command, returncode=exc.returncode, output=exc.output
    )
