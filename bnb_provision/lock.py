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

import concurrent.futures
import datetime as dt
import hashlib
import os
import re
import string
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import tomlkit

from bnb_provision import __version__
from bnb_provision._data import data_dir
from bnb_provision.compat import CompatDB, toml_loads
from bnb_provision.constraints import Constraints
from bnb_provision.errors import ExternalToolError, LockfileError, NoPlanError
from bnb_provision.lockfiles import MANIFEST_FILE, MANIFEST_SCHEMA
from bnb_provision.machine import Machine
from bnb_provision.planning import plan_for
from bnb_provision.resolve import Plan
from bnb_provision.uv import find_uv, network_failure, python_platform, run_uv

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "STACKS",
    "LockGroup",
    "LockOptions",
    "LockResult",
    "LockSet",
    "group_machines",
    "lock_input",
    "lock_machines",
    "pylock_to_requirements",
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


@dataclass(frozen=True, kw_only=True, slots=True)
class LockGroup:
    name: str
    plan: Plan
    machines: tuple[str, ...]
    glibc: tuple[int, int] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LockResult:
    group: LockGroup
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


def group_machines(
    machines: Sequence[Machine], db: CompatDB, constraints: Constraints, stack: str = "bnb"
) -> tuple[list[LockGroup], list[tuple[str, str]]]:
    """Plan every machine and group those that need the same plan."""
    groups: dict[str, LockGroup] = {}
    unplanned: list[tuple[str, str]] = []
    for i, m in enumerate(machines):
        try:
            plan = plan_for(m, db, constraints)
        except NoPlanError as exc:
            unplanned.append((_label(m, i, None), str(exc).splitlines()[0]))
            continue
        label = _label(m, i, plan)
        name = _group_name(plan, stack)
        glibc = m.os.glibc
        if name in groups:
            g = groups[name]
            low = min(filter(None, (g.glibc, glibc)), default=None)
            groups[name] = replace(g, machines=(*g.machines, label), glibc=low)
        else:
            groups[name] = LockGroup(name=name, plan=plan, machines=(label,), glibc=glibc)
    return list(groups.values()), unplanned


# -- the uv input ---------------------------------------------------------------------


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


def lock_input(plan: Plan, stack: str, *, torch_index: str | None, offline: bool) -> str:
    """The ``pyproject.toml`` uv compiles: the plan's pins, torch routed to its index."""
    doc = tomlkit.document()
    project = tomlkit.table()
    project["name"] = "bnb-provision-lock"
    project["version"] = "0"
    project["requires-python"] = f">={plan.python}"
    project["dependencies"] = stack_requirements(plan, stack)
    doc["project"] = project
    if torch_index and not offline:
        uv_tool = tomlkit.table()
        index = tomlkit.aot()
        entry = tomlkit.table()
        entry["name"] = f"pytorch-{plan.torch.variant}"
        entry["url"] = torch_index
        entry["explicit"] = True
        index.append(entry)
        uv_tool["index"] = index
        sources = tomlkit.table()
        sources["torch"] = tomlkit.inline_table()
        sources["torch"]["index"] = f"pytorch-{plan.torch.variant}"
        uv_tool["sources"] = sources
        tool = tomlkit.table()
        tool["uv"] = uv_tool
        doc["tool"] = tool
    return tomlkit.dumps(doc)


def _torch_index(plan: Plan, db: CompatDB, opts: LockOptions) -> str | None:
    if plan.torch.channel == "pypi":
        return None
    template = opts.torch_index_template or db.torch_index_url
    return template.format(variant=plan.torch.variant)


def uv_compile_args(
    group: LockGroup, input_file: Path, output: Path, opts: LockOptions
) -> list[str]:
    plan = group.plan
    args = [
        "pip",
        "compile",
        str(input_file),
        "--format",
        "pylock.toml",
        "--generate-hashes",
        "--python-version",
        plan.python,
        "--python-platform",
        python_platform(plan.target.platform, group.glibc),
        "--no-header",
        "--quiet",
        # the target interpreter is never needed to resolve wheels; never fetch one
        "--no-python-downloads",
        "-o",
        str(output),
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


def write_atomic(path: Path, text: str, *, force: bool) -> Path | None:
    """Write ``text`` through a temporary file and ``os.replace``.

    An existing file is replaced only with ``force``, and then kept as a dated
    backup (returned). Raises LockfileError otherwise.
    """
    backup = None
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return None
        if not force:
            raise LockfileError(
                f"{path} exists; pass --force to replace it (the old file is kept as a dated .bak)"
            )
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        path.replace(backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
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


def compile_group(group: LockGroup, db: CompatDB, opts: LockOptions) -> LockResult:
    """Resolve one group with uv and write its lock files."""
    start = time.perf_counter()
    plan = group.plan
    torch_index = _torch_index(plan, db, opts)
    text = lock_input(plan, opts.stack, torch_index=torch_index, offline=opts.offline)
    with tempfile.TemporaryDirectory(prefix="bnb-provision-lock-") as tmp:
        input_file = Path(tmp) / "pyproject.toml"
        input_file.write_text(text, encoding="utf-8")
        raw = Path(tmp) / "pylock.toml"
        try:
            run_uv(uv_compile_args(group, input_file, raw, opts), cwd=tmp)
        except ExternalToolError as exc:
            raise _explain_uv_failure(exc, group, torch_index, opts) from exc
        uv_text = raw.read_text(encoding="utf-8")
    meta = {
        "generator": f"bnb-provision {__version__}",
        "db-version": db.version,
        "stack": opts.stack,
        "platform": plan.target.platform,
        "python": plan.python,
        "torch": f"{plan.torch.version}+{plan.torch.variant}",
        "torch-index": torch_index or "PyPI",
        "bitsandbytes": str(plan.bitsandbytes.version),
        "bitsandbytes-library": plan.bitsandbytes.library or "",
        "machines": list(group.machines),
        "regenerate": opts.regenerate,
    }
    if "[tool" in uv_text:
        doc = tomlkit.parse(uv_text)  # rare: uv wrote a tool table; merge properly
        tool = doc.get("tool") or tomlkit.table()
        tool["bnb-provision"] = meta
        doc["tool"] = tool
        final = tomlkit.dumps(doc)
    else:
        table = tomlkit.document()
        table["tool"] = {"bnb-provision": meta}
        final = uv_text.rstrip("\n") + "\n\n" + tomlkit.dumps(table)
    data = toml_loads(final)
    _validate_pylock(data, group)
    packages = _packages(data)
    names = {n for n, _ in packages}
    if opts.stack == "bnb" and names & _FORBIDDEN_IN_BNB:
        raise LockfileError(
            f"{group.name}: the bitsandbytes lock pulled in "
            f"{', '.join(sorted(names & _FORBIDDEN_IN_BNB))}; lock GPTQ/AWQ "
            "with --stack gptq|awq into their own environment"
        )
    torch_locked = dict(packages).get("torch", "")
    if not torch_locked.startswith(str(plan.torch.version)):
        raise LockfileError(
            f"{group.name}: uv resolved torch {torch_locked}, not the planned {plan.torch.version}"
        )
    header = _render(
        "lock-header.txt.tmpl",
        tool_version=__version__,
        db_version=db.version,
        torch=str(plan.torch.version),
        variant=plan.torch.variant,
        bnb=str(plan.bitsandbytes.version),
        python=plan.python,
        platform=plan.target.platform,
        machines=", ".join(group.machines),
        regenerate=opts.regenerate,
    )
    index_lines = [] if opts.offline else [f"--index-url {opts.default_index}"]
    if torch_index:
        # pip has no per-package index: the exact local version and the hashes pin torch
        # to the file resolved from the PyTorch index
        index_lines.append(f"--extra-index-url {torch_index}")
    requirements = pylock_to_requirements(data, header, index_lines)
    out = opts.output
    req_path = out / f"{group.name}.requirements.txt"
    pylock_path = out / f"pylock.{group.name}.toml"
    old = _old_packages(pylock_path)
    for path, content in ((pylock_path, final), (req_path, requirements)):
        write_atomic(path, content, force=opts.force)
    extra: list[Path] = []
    if opts.dockerfile and plan.target.os == "linux":
        dockerfile = out / f"Dockerfile.{group.name}"
        write_atomic(
            dockerfile,
            _render(
                "Dockerfile.tmpl",
                tool_version=__version__,
                lock_name=req_path.name,
                db_version=db.version,
                regenerate=opts.regenerate,
                base_image=f"python:{plan.python}-slim",
            ),
            force=opts.force,
        )
        extra.append(dockerfile)
    if opts.uv_project:
        project = out / f"uv-project.{group.name}.toml"
        write_atomic(project, text, force=opts.force)
        extra.append(project)
    return LockResult(
        group=group,
        requirements=req_path,
        pylock=pylock_path,
        packages=packages,
        changed=_diff(old, packages) if old else (),
        seconds=time.perf_counter() - start,
        extra_files=tuple(extra),
    )


def _validate_pylock(data: dict[str, Any], group: LockGroup) -> None:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise LockfileError(f"{group.name}: uv's pylock.toml does not validate: {exc}") from exc


def _explain_uv_failure(
    exc: ExternalToolError, group: LockGroup, torch_index: str | None, opts: LockOptions
) -> ExternalToolError:
    url = network_failure(exc.output)
    if url is not None:
        return ExternalToolError(
            f"{group.name}: could not reach {url} (index {opts.default_index}"
            + (f", PyTorch index {torch_index}" if torch_index else "")
            + "). On a machine without network, lock from a wheelhouse: "
            "--offline --find-links DIR (bnb-provision bundle fills one).",
            command=exc.command,
            returncode=exc.returncode,
            output=exc.output,
        )
    if "No solution found" in exc.output or "unsatisfiable" in exc.output:
        reqs = ", ".join(stack_requirements(group.plan, opts.stack))
        return ExternalToolError(
            f"{group.name}: uv found no resolution.\n{exc.output.strip()}\n"
            f"The plan pinned: {reqs} (torch {group.plan.torch.variant} for "
            f"{', '.join(group.machines)}). Relax a pin with --torch/--bnb/--python, or pick "
            "another --stack.",
            command=exc.command,
            returncode=exc.returncode,
            output=exc.output,
        )
    return exc


def _manifest(
    results: Sequence[LockResult], db: CompatDB, unplanned: Sequence[tuple[str, str]]
) -> str:
    doc = tomlkit.document()
    doc["schema"] = MANIFEST_SCHEMA
    doc["generator"] = f"bnb-provision {__version__}"
    doc["db-version"] = db.version
    classes = tomlkit.aot()
    for r in results:
        p = r.group.plan
        floor, _ = db.min_driver(p.torch.cuda, p.target.os) if p.torch.cuda else (None, "")
        t = tomlkit.table()
        t["name"] = r.group.name
        t["requirements"] = r.requirements.name
        t["pylock"] = r.pylock.name
        t["os"] = p.target.os
        t["arch"] = p.target.arch
        t["python"] = p.python
        t["driver-floor"] = str(floor) if floor else ""
        t["gpu-archs"] = sorted({f"{a}.{b}" for _, (a, b) in p.target.gpus})
        t["torch"] = str(p.torch.version)
        t["variant"] = p.torch.variant
        t["bitsandbytes"] = str(p.bitsandbytes.version)
        t["lock-sha256"] = hashlib.sha256(r.pylock.read_bytes()).hexdigest()
        t["machines"] = list(r.group.machines)
        classes.append(t)
    doc["class"] = classes
    if unplanned:
        doc["unplanned"] = [f"{m}: {why}" for m, why in unplanned]
    return tomlkit.dumps(doc)


def lock_machines(
    machines: Sequence[Machine],
    db: CompatDB,
    constraints: Constraints,
    opts: LockOptions,
    log: Log = lambda _m: None,
) -> LockSet:
    """Plan, group and lock ``machines``; groups compile in parallel."""
    if opts.stack not in STACKS:
        raise LockfileError(f"--stack {opts.stack}: expected one of {', '.join(STACKS)}")
    groups, unplanned = group_machines(machines, db, constraints, opts.stack)
    if not groups:
        why = "; ".join(f"{m}: {w}" for m, w in unplanned)
        raise NoPlanError(f"no machine could be planned, so nothing was locked ({why})")
    log(f"{len(machines)} machine(s) -> {len(groups)} lock group(s)")
    find_uv()  # resolve the binary once, before the worker threads
    workers = max(1, min(opts.jobs, len(groups)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(compile_group, g, db, opts) for g in groups]
        results = [f.result() for f in futures]
    results.sort(key=lambda r: r.group.name)
    manifest = opts.output / MANIFEST_FILE
    write_atomic(manifest, _manifest(results, db, unplanned), force=True)
    return LockSet(results=tuple(results), manifest=manifest, unplanned=tuple(unplanned))


def lock_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)
