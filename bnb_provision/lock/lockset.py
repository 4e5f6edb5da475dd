"""lock: hash-pinned lockfiles for one machine or a whole team's machines.

Machines are planned, grouped by the plan they need, and each group is
resolved by ``uv pip compile --format pylock.toml --generate-hashes`` for the
group's Python version and platform. The input is a generated
``pyproject.toml`` in which torch is routed to the chosen PyTorch index through
an *explicit* index (``[tool.uv.sources]``), so torch comes from there and
nothing else does; when PyPI itself serves the chosen build, no extra index is
used. From the validated ``pylock.toml`` (PEP 751) a pip-installable
``requirements.txt`` is written with the same hashes. A manifest maps machine
classes to their lock files so ``init`` on any machine can pick its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import string
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bnb_provision import __version__
from bnb_provision.core import process
from bnb_provision.core.data import data_dir
from bnb_provision.core.tomlio import toml_loads, toml_pairs, toml_table
from bnb_provision.core.uv import UV_TIMEOUT, find_uv, network_failure, python_platform
from bnb_provision.errors import ExternalToolError, LockfileError, NoPlanError
from bnb_provision.lock.pins import MANIFEST_FILE, MANIFEST_SCHEMA

# The DB, the machines and the resolver load only when a plan must be computed: a lock
# whose inputs were planned before starts uv on the cached groups (see lock_request).
if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.plan.constraints import Constraints, MachineFlags
    from bnb_provision.plan.resolve import Plan

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "STACKS",
    "LockOptions",
    "LockRequest",
    "LockResult",
    "LockSet",
    "LockSpec",
    "compile_spec",
    "lock_input",
    "lock_machines",
    "lock_request",
    "plan_specs",
    "pylock_to_requirements",
    "spec_for",
    "stack_requirements",
    "write_atomic",
]

PYPI_SIMPLE: Final = "https://pypi.org/simple"
STACKS: Final = ("bnb", "gptq", "awq")
# what each stack installs besides torch; the bnb stack never holds GPTQ/AWQ libraries
_STACK_EXTRA: Final = {"gptq": ("gptqmodel",), "awq": ("autoawq",)}
_FORBIDDEN_IN_BNB: Final = frozenset({"auto-gptq", "gptqmodel", "autoawq", "autoawq-kernels"})
Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockOptions:
    output: Path
    stack: str = "bnb"
    default_index: str = PYPI_SIMPLE
    torch_index_template: str | None = None  # e.g. a mirror: https://mirror/whl/{variant}
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    force: bool = False
    dockerfile: bool = False
    uv_project: bool = False
    jobs: int = 4
    regenerate: str = "bnb-provision lock"
    cache_dir: Path | None = None
    upgrade: bool = False  # resolve afresh instead of keeping the existing lock's versions


@dataclass(frozen=True, kw_only=True, slots=True)
class LockSpec:
    """One lock group, planned: everything uv and the output files need, as plain values.

    Machines that need the same plan share a spec. Specs are what the planning stage
    hands to the uv stage.
    """

    name: str
    stack: str
    machines: tuple[str, ...]
    python: str
    platform: str  # linux-x86_64, windows-x86_64, macos-arm64, ...
    os: str
    arch: str
    glibc: tuple[int, int] | None
    torch: str  # public version, 2.13.0
    variant: str  # cu128, cpu, ...
    torch_index: str | None  # None: PyPI serves the chosen build
    requirements: tuple[str, ...]  # the pins uv resolves
    bitsandbytes: str
    bitsandbytes_library: str
    driver_floor: str  # "" when the build needs no driver
    gpu_archs: tuple[str, ...]  # "8.0", ...
    db_version: str
    uv_input: str  # the pyproject.toml uv compiles


@dataclass(frozen=True, kw_only=True, slots=True)
class LockResult:
    spec: LockSpec
    requirements: Path
    pylock: Path
    packages: tuple[tuple[str, str], ...]
    changed: tuple[str, ...]
    seconds: float
    extra_files: tuple[Path, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class LockSet:
    results: tuple[LockResult, ...]
    manifest: Path
    unplanned: tuple[tuple[str, str], ...] = field(default=())  # (machine, why)


@dataclass(frozen=True, kw_only=True, slots=True)
class LockRequest:
    """lock's inputs as the user gave them: snapshot files or folders, machine flags
    (alone, or on top of each snapshot; with neither, this machine), plan constraints."""

    machine_files: tuple[Path, ...]
    flags: MachineFlags
    constraints: Constraints


# -- planning and grouping -------------------------------------------------------------


def _label(machine: Machine, index: int, plan: Plan | None) -> str:
    if machine.label:
        return machine.label.removesuffix(".json")
    ccs = plan.target.ccs if plan is not None else ()
    gpus = "+".join(f"sm_{a}{b}" for a, b in ccs) or ("gpu" if machine.gpus else "cpu")
    return f"machine{index}-{machine.os.system}-{gpus}"


def _group_name(plan: Plan, stack: str) -> str:
    t = plan.torch
    return (
        f"{stack}-{plan.target.platform}-py{plan.python}-torch{t.version}-{t.variant}"
        f"-bnb{plan.bitsandbytes.version}"
    )


def stack_requirements(plan: Plan, stack: str) -> list[str]:
    torch_pin = f"torch=={plan.torch.version}"
    if plan.torch.channel == "index":
        torch_pin += f"+{plan.torch.variant}"
    reqs = [torch_pin]
    for name, version in plan.packages:
        if name == "torch" or (stack != "bnb" and name == "bitsandbytes"):
            continue
        reqs.append(f"{name}=={version}")
    reqs += _STACK_EXTRA.get(stack, ())
    return reqs


def lock_input(
    python: str, requirements: Sequence[str], variant: str, *, torch_index: str | None
) -> str:
    """The ``pyproject.toml`` uv compiles: the plan's pins, torch routed to its index
    through an explicit uv index (``[tool.uv.sources]``), so nothing else comes from it."""
    import tomlkit

    doc = tomlkit.document()
    project = tomlkit.table()
    project["name"] = "bnb-provision-lock"
    project["version"] = "0"
    project["requires-python"] = f">={python}"
    project["dependencies"] = list(requirements)
    doc["project"] = project
    if torch_index:
        uv_tool = tomlkit.table()
        index = tomlkit.aot()
        entry = tomlkit.table()
        entry["name"] = f"pytorch-{variant}"
        entry["url"] = torch_index
        entry["explicit"] = True
        index.append(entry)
        uv_tool["index"] = index
        sources = tomlkit.table()
        sources["torch"] = tomlkit.inline_table()
        sources["torch"]["index"] = f"pytorch-{variant}"
        uv_tool["sources"] = sources
        tool = tomlkit.table()
        tool["uv"] = uv_tool
        doc["tool"] = tool
    return tomlkit.dumps(doc)


def spec_for(
    plan: Plan,
    machines: tuple[str, ...],
    glibc: tuple[int, int] | None,
    db: CompatDB,
    opts: LockOptions,
) -> LockSpec:
    """The lock spec of one plan."""
    torch_index = None
    if plan.torch.channel != "pypi":
        template = opts.torch_index_template or db.torch_index_url
        torch_index = template.format(variant=plan.torch.variant)
    requirements = stack_requirements(plan, opts.stack)
    floor, _ = db.min_driver(plan.torch.cuda, plan.target.os) if plan.torch.cuda else (None, "")
    return LockSpec(
        name=_group_name(plan, opts.stack),
        stack=opts.stack,
        machines=machines,
        python=plan.python,
        platform=plan.target.platform,
        os=plan.target.os,
        arch=plan.target.arch,
        glibc=glibc,
        torch=str(plan.torch.version),
        variant=plan.torch.variant,
        torch_index=torch_index,
        requirements=tuple(requirements),
        bitsandbytes=str(plan.bitsandbytes.version),
        bitsandbytes_library=plan.bitsandbytes.library or "",
        driver_floor=str(floor) if floor else "",
        gpu_archs=tuple(sorted({f"{a}.{b}" for _, (a, b) in plan.target.gpus})),
        db_version=db.version,
        uv_input=lock_input(
            plan.python,
            requirements,
            plan.torch.variant,
            torch_index=None if opts.offline else torch_index,
        ),
    )


def plan_specs(
    machines: Sequence[Machine], db: CompatDB, constraints: Constraints, opts: LockOptions
) -> tuple[list[LockSpec], list[tuple[str, str]]]:
    """Plan every machine and group those that need the same plan into one spec.

    Raises NoPlanError when no machine could be planned (the message says why for each).
    """
    from bnb_provision.plan.inputs import plan_for

    if opts.stack not in STACKS:
        raise LockfileError(f"--stack {opts.stack}: expected one of {', '.join(STACKS)}")

    groups: dict[str, tuple[Plan, list[str], tuple[int, int] | None]] = {}
    unplanned: list[tuple[str, str]] = []
    for i, m in enumerate(machines):
        try:
            plan = plan_for(m, db, constraints)
        except NoPlanError as exc:
            unplanned.append((_label(m, i, None), str(exc).splitlines()[0]))
            continue
        label = _label(m, i, plan)
        name = _group_name(plan, opts.stack)
        if name in groups:
            first, labels, glibc = groups[name]
            low = min(filter(None, (glibc, m.os.glibc)), default=None)
            groups[name] = (first, [*labels, label], low)
        else:
            groups[name] = (plan, [label], m.os.glibc)
    specs = [
        spec_for(plan, tuple(labels), glibc, db, opts) for plan, labels, glibc in groups.values()
    ]
    if not specs:
        why = "; ".join(f"{m}: {w}" for m, w in unplanned)
        raise NoPlanError(f"no machine could be planned, so nothing was locked ({why})")
    return specs, unplanned


def uv_compile_args(spec: LockSpec, input_file: Path, output: Path, opts: LockOptions) -> list[str]:
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
        for d in opts.find_links:
            args += ["--find-links", str(d)]
    else:
        args += ["--default-index", opts.default_index]
        for d in opts.find_links:
            args += ["--find-links", str(d)]
    if opts.cache_dir is not None:
        args += ["--cache-dir", str(opts.cache_dir)]
    return args


# -- outputs --------------------------------------------------------------------------


def _render(template: str, **values: str) -> str:
    text = (data_dir("templates") / template).read_text(encoding="utf-8")
    return string.Template(text).substitute(values)


def pylock_to_requirements(pylock: dict[str, Any], header: str, index_lines: list[str]) -> str:
    """A pip-installable requirements.txt with the lock's exact versions and hashes."""
    lines = [header.rstrip(), *index_lines, ""]
    for pkg in sorted(pylock.get("packages", []), key=lambda p: p["name"]):
        hashes = sorted(
            {
                w["hashes"]["sha256"]
                for w in pkg.get("wheels", [])
                if "sha256" in w.get("hashes", {})
            }
        )
        sdist = pkg.get("sdist")
        if sdist and "sha256" in sdist.get("hashes", {}):
            hashes.append(sdist["hashes"]["sha256"])
        if not hashes:
            raise LockfileError(f"{pkg['name']}: the lock holds no sha256 hash for it")
        parts = [f"{pkg['name']}=={pkg['version']}"] + [f"--hash=sha256:{h}" for h in hashes]
        lines.append(" \\\n    ".join(parts))
    return "\n".join(lines) + "\n"


def _packages(pylock: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((p["name"], str(p["version"])) for p in pylock.get("packages", [])))


def _diff(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    o, n = dict(old), dict(new)
    out = [f"+ {k} {n[k]}" for k in sorted(n.keys() - o.keys())]
    out += [f"- {k} {o[k]}" for k in sorted(o.keys() - n.keys())]
    out += [f"~ {k} {o[k]} -> {n[k]}" for k in sorted(n.keys() & o.keys()) if o[k] != n[k]]
    return tuple(out)


def _umask() -> int:
    """The process umask, read once (os.umask both reads and sets it: not from threads)."""
    global _UMASK  # noqa: PLW0603 - read once, in the main thread, before any worker
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def write_atomic(path: Path, text: str, *, force: bool) -> Path | None:
    """Write ``text`` through a temporary file and ``os.replace``.

    An existing file is replaced only with ``force``, and then kept as a dated
    backup (returned). Raises LockfileError otherwise. A new file gets the usual
    permissions (0666 less the umask); a replaced one keeps its own.
    """
    backup = None
    mode = 0o666 & ~_umask()
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return None
        if not force:
            raise LockfileError(
                f"{path} exists; pass --force to replace it (the old file is kept as a dated .bak)"
            )
        mode = path.stat().st_mode & 0o777
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        path.replace(backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)  # noqa: PTH101 - mkstemp gives a path string
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if backup is not None and not path.exists():
            backup.replace(path)
        raise
    return backup


def _old_packages(path: Path) -> tuple[tuple[str, str], ...]:
    if not path.exists():
        return ()
    try:
        return _packages(toml_loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return ()


def _compile_argv(spec: LockSpec, folder: str, opts: LockOptions) -> list[str]:
    """uv pip compile of ``spec``, with its input and output in ``folder``."""
    d = Path(folder)
    return [find_uv(), *uv_compile_args(spec, d / "pyproject.toml", d / "pylock.toml", opts)]


def _preferences(pylock_path: Path, opts: LockOptions) -> bytes | None:
    """The existing lock, handed to uv: it keeps the versions of an existing output file
    where the pins allow (pip-compile's rule), so re-locking does not churn; --upgrade
    resolves afresh."""
    if opts.upgrade or not pylock_path.is_file():
        return None
    return pylock_path.read_bytes()


@contextlib.contextmanager
def _uv_compile(
    spec: LockSpec, opts: LockOptions, pylock_path: Path
) -> Iterator[Callable[[], str]]:
    """Start uv for ``spec``; yields a function that waits for it and returns the
    pylock.toml text uv wrote. The scratch folder goes afterwards."""
    with tempfile.TemporaryDirectory(prefix="bnb-provision-lock-") as tmp:
        Path(tmp, "pyproject.toml").write_text(spec.uv_input, encoding="utf-8")
        preferences = _preferences(pylock_path, opts)
        if preferences is not None:
            Path(tmp, "pylock.toml").write_bytes(preferences)
        argv = _compile_argv(spec, tmp, opts)
        running = process.start(argv, timeout=UV_TIMEOUT, check=True)

        def finish() -> str:
            running.wait()
            return Path(tmp, "pylock.toml").read_text(encoding="utf-8")

        try:
            yield finish
        finally:
            running.cancel()  # nothing when it finished


def compile_spec(spec: LockSpec, opts: LockOptions) -> LockResult:
    """Resolve one spec with uv and write its lock files."""
    start = time.perf_counter()
    out = opts.output
    req_path = out / f"{spec.name}.requirements.txt"
    pylock_path = out / f"pylock.{spec.name}.toml"
    with _uv_compile(spec, opts, pylock_path) as finish:
        old = _old_packages(pylock_path)  # while uv resolves
        try:
            uv_text = finish()
        except ExternalToolError as exc:
            raise _explain_uv_failure(exc, spec, opts) from exc
    meta = {
        "generator": f"bnb-provision {__version__}",
        "db-version": spec.db_version,
        "stack": spec.stack,
        "platform": spec.platform,
        "python": spec.python,
        "torch": f"{spec.torch}+{spec.variant}",
        "torch-index": spec.torch_index or "PyPI",
        "bitsandbytes": spec.bitsandbytes,
        "bitsandbytes-library": spec.bitsandbytes_library,
        "machines": list(spec.machines),
        "regenerate": opts.regenerate,
    }
    if re.search(r"^\[+\s*tool\b", uv_text, re.MULTILINE):
        import tomlkit  # rare: uv wrote a tool table of its own; merge into it properly

        doc = tomlkit.parse(uv_text)
        tool = doc.get("tool") or tomlkit.table()
        tool["bnb-provision"] = meta
        doc["tool"] = tool
        final = tomlkit.dumps(doc)
    else:
        final = uv_text.rstrip("\n") + "\n\n" + toml_table("[tool.bnb-provision]", meta)
    data = toml_loads(final)
    _validate_pylock(data, spec)
    packages = _packages(data)
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
    header = _render(
        "lock-header.txt.tmpl",
        tool_version=__version__,
        db_version=spec.db_version,
        torch=spec.torch,
        variant=spec.variant,
        bnb=spec.bitsandbytes,
        python=spec.python,
        platform=spec.platform,
        machines=", ".join(spec.machines),
        regenerate=opts.regenerate,
    )
    index_lines = [] if opts.offline else [f"--index-url {opts.default_index}"]
    if spec.torch_index:
        # pip has no per-package index: the exact local version and the hashes pin torch
        # to the file resolved from the PyTorch index
        index_lines.append(f"--extra-index-url {spec.torch_index}")
    requirements = pylock_to_requirements(data, header, index_lines)
    for path, content in ((pylock_path, final), (req_path, requirements)):
        write_atomic(path, content, force=opts.force)
    extra: list[Path] = []
    if opts.dockerfile and spec.os == "linux":
        dockerfile = out / f"Dockerfile.{spec.name}"
        write_atomic(
            dockerfile,
            _render(
                "Dockerfile.tmpl",
                tool_version=__version__,
                lock_name=req_path.name,
                db_version=spec.db_version,
                regenerate=opts.regenerate,
                base_image=f"python:{spec.python}-slim",
            ),
            force=opts.force,
        )
        extra.append(dockerfile)
    if opts.uv_project:
        project = out / f"uv-project.{spec.name}.toml"
        write_atomic(project, spec.uv_input, force=opts.force)
        extra.append(project)
    return LockResult(
        spec=spec,
        requirements=req_path,
        pylock=pylock_path,
        packages=packages,
        changed=_diff(old, packages) if old else (),
        seconds=time.perf_counter() - start,
        extra_files=tuple(extra),
    )


def _validate_pylock(data: dict[str, Any], spec: LockSpec) -> None:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise LockfileError(f"{spec.name}: uv's pylock.toml does not validate: {exc}") from exc


def _explain_uv_failure(
    exc: ExternalToolError, spec: LockSpec, opts: LockOptions
) -> ExternalToolError:
    url = network_failure(exc.output)
    if url is not None:
        return ExternalToolError(
            f"{spec.name}: could not reach {url} (index {opts.default_index}"
            + (f", PyTorch index {spec.torch_index}" if spec.torch_index else "")
            + "). On a machine without network, lock from a wheelhouse: "
            "--offline --find-links DIR (bnb-provision bundle fills one).",
            command=exc.command,
            returncode=exc.returncode,
            output=exc.output,
        )
    if "No solution found" in exc.output or "unsatisfiable" in exc.output:
        return ExternalToolError(
            f"{spec.name}: uv found no resolution.\n{exc.output.strip()}\n"
            f"The plan pinned: {', '.join(spec.requirements)} (torch {spec.variant} for "
            f"{', '.join(spec.machines)}). Relax a pin with --torch/--bnb/--python, or pick "
            "another --stack.",
            command=exc.command,
            returncode=exc.returncode,
            output=exc.output,
        )
    return exc


def _manifest(results: Sequence[LockResult], unplanned: Sequence[tuple[str, str]]) -> str:
    top: dict[str, object] = {
        "schema": MANIFEST_SCHEMA,
        "generator": f"bnb-provision {__version__}",
        "db-version": results[0].spec.db_version if results else "",
    }
    if unplanned:
        top["unplanned"] = [f"{m}: {why}" for m, why in unplanned]
    parts = [toml_pairs(top)]
    for r in results:
        s = r.spec
        parts.append(
            toml_table(
                "[[class]]",
                {
                    "name": s.name,
                    "requirements": r.requirements.name,
                    "pylock": r.pylock.name,
                    "os": s.os,
                    "arch": s.arch,
                    "python": s.python,
                    "driver-floor": s.driver_floor,
                    "gpu-archs": list(s.gpu_archs),
                    "torch": s.torch,
                    "variant": s.variant,
                    "bitsandbytes": s.bitsandbytes,
                    "lock-sha256": hashlib.sha256(r.pylock.read_bytes()).hexdigest(),
                    "machines": list(s.machines),
                },
            )
        )
    return "\n".join(parts)


def _in_parallel(specs: Sequence[LockSpec], opts: LockOptions) -> list[LockResult]:
    """compile_spec for every spec, at most ``opts.jobs`` at a time; the first failure is
    raised once all have stopped."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(specs)))) as pool:
        futures = [pool.submit(compile_spec, spec, opts) for spec in specs]
        # while uv resolves, load what checking its output needs
        import packaging.pylock  # noqa: F401

        return [f.result() for f in futures]


def _compile_all(
    specs: Sequence[LockSpec],
    unplanned: Sequence[tuple[str, str]],
    opts: LockOptions,
) -> LockSet:
    """Run uv for every spec (in parallel), then write the manifest."""
    find_uv()  # resolve the binary once, before the worker threads
    _umask()
    results = _in_parallel(specs, opts)
    results.sort(key=lambda r: r.spec.name)
    manifest = opts.output / MANIFEST_FILE
    write_atomic(manifest, _manifest(results, unplanned), force=True)
    return LockSet(
        results=tuple(results),
        manifest=manifest,
        unplanned=tuple(unplanned),
    )


def lock_machines(
    machines: Sequence[Machine],
    db: CompatDB,
    constraints: Constraints,
    opts: LockOptions,
    log: Log = lambda _m: None,
) -> LockSet:
    """Plan, group and lock ``machines``; groups compile in parallel."""
    specs, unplanned = plan_specs(machines, db, constraints, opts)
    log(f"{len(machines)} machine(s) -> {len(specs)} lock group(s)")
    return _compile_all(specs, unplanned, opts)


def lock_request(request: LockRequest, opts: LockOptions, log: Log = lambda _m: None) -> LockSet:
    """lock as the command line runs it: plan the request's machines, then lock every
    group in parallel."""
    from bnb_provision.db.load import load_db
    from bnb_provision.plan.inputs import load_machines

    db = load_db()
    machines = load_machines(request.machine_files, request.flags, db)
    return lock_machines(machines, db, request.constraints, opts, log)
