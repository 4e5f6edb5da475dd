"""lock: hash-pinned lock files for one machine or a whole team's machines.

The stages, each in its own module: machines are planned and grouped into lock specs
(``group.py``); uv resolves every spec in parallel (``compile.py``); the output table
renders each group's files and the set's manifest (``writers.py``, ``manifest.py``),
and they are written together, all or none. This module runs them in that order and
hands back what was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bnb_provision.core.uv import find_uv
from bnb_provision.lock import writers
from bnb_provision.lock.compile import Compiled, compile_pylock
from bnb_provision.lock.group import plan_specs, spec_for, stack_requirements
from bnb_provision.lock.names import MANIFEST_FILE, MANIFEST_SCHEMA, pylock_file
from bnb_provision.lock.spec import LockOptions, LockSpec, Log, as_stack

# The DB, the machines and the resolver load only when a plan must be computed.
if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.plan.constraints import Constraints, MachineFlags

__all__ = [
    "LOCK_SCHEMA",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "LockOptions",
    "LockRequest",
    "LockResult",
    "LockSet",
    "LockSpec",
    "as_stack",
    "compile_spec",
    "lock_machines",
    "lock_request",
    "plan_specs",
    "render_set",
    "spec_for",
    "stack_requirements",
]

LOCK_SCHEMA: Final = "bnb-provision.lock/1"
Packages = tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockResult:
    """One lock group, written: its files, what it locked, what changed since the last."""

    spec: LockSpec
    requirements: Path
    pylock: Path
    packages: Packages
    changed: tuple[str, ...]
    seconds: float
    extra_files: tuple[Path, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "requirements": str(self.requirements),
            "pylock": str(self.pylock),
            "machines": list(self.spec.machines),
            "packages": dict(self.packages),
            "changed": list(self.changed),
            "seconds": round(self.seconds, 3),
            "warnings": list(self.spec.warnings),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class LockSet:
    """A lock run's result: every group, the manifest, the machines left out and why."""

    results: tuple[LockResult, ...]
    manifest: Path
    unplanned: tuple[tuple[str, str], ...] = field(default=())  # (machine, why)

    def to_dict(self) -> dict[str, Any]:
        """The ``bnb-provision.lock/1`` JSON document."""
        return {
            "schema": LOCK_SCHEMA,
            "manifest": str(self.manifest),
            "locks": [r.to_dict() for r in self.results],
            "unplanned": [{"machine": m, "why": w} for m, w in self.unplanned],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class LockRequest:
    """lock's inputs as the user gave them: snapshot files or folders, machine flags
    (alone, or on top of each snapshot; with neither, this machine), plan constraints."""

    machine_files: tuple[Path, ...]
    flags: MachineFlags
    constraints: Constraints


def _diff(old: Packages, new: Packages) -> tuple[str, ...]:
    o, n = dict(old), dict(new)
    out = [f"+ {k} {n[k]}" for k in sorted(n.keys() - o.keys())]
    out += [f"- {k} {o[k]}" for k in sorted(o.keys() - n.keys())]
    out += [f"~ {k} {o[k]} -> {n[k]}" for k in sorted(n.keys() & o.keys()) if o[k] != n[k]]
    return tuple(out)


def _compile(spec: LockSpec, opts: LockOptions) -> Compiled:
    return compile_pylock(spec, opts, opts.output / pylock_file(spec.name))


def _result(c: Compiled, files: dict[str, tuple[Path, str]]) -> LockResult:
    main = ("pylock", "requirements")
    extra = tuple(path for kind, (path, _) in files.items() if kind not in main)
    return LockResult(
        spec=c.spec,
        requirements=files["requirements"][0],
        pylock=files["pylock"][0],
        packages=c.packages,
        changed=_diff(c.previous, c.packages) if c.previous else (),
        seconds=c.seconds,
        extra_files=extra,
    )


def compile_spec(spec: LockSpec, opts: LockOptions) -> LockResult:
    """Resolve one spec with uv and write its lock files (no manifest)."""
    compiled = _compile(spec, opts)
    files = writers.render_group(compiled, opts)
    writers.write_files(dict(files.values()), force=opts.force, replace=frozenset())
    return _result(compiled, files)


def _in_parallel(specs: Sequence[LockSpec], opts: LockOptions) -> list[Compiled]:
    """uv for every spec, at most ``opts.jobs`` at a time; the first failure is raised
    once all have stopped."""
    from concurrent.futures import ThreadPoolExecutor

    find_uv()  # resolve the binary once, before the worker threads
    with ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(specs)))) as pool:
        futures = [pool.submit(_compile, spec, opts) for spec in specs]
        # while uv resolves, load what checking its output needs
        import packaging.pylock  # noqa: F401

        return [f.result() for f in futures]


Rendered = list[tuple[Compiled, dict[str, tuple[Path, str]]]]


def render_set(
    specs: Sequence[LockSpec], unplanned: Sequence[tuple[str, str]], opts: LockOptions
) -> tuple[Rendered, Path, dict[Path, str]]:
    """Run uv for every spec (in parallel) and render every file of the set in memory:
    (each group with its files, the manifest's path, {path: text} of them all)."""
    compiled = sorted(_in_parallel(specs, opts), key=lambda c: c.spec.name)
    groups = [(c, writers.render_group(c, opts)) for c in compiled]
    manifest, text = writers.manifest_for(groups, unplanned, opts)
    files = {path: body for _, rendered in groups for path, body in rendered.values()}
    files[manifest] = text
    return groups, manifest, files


def _compile_all(
    specs: Sequence[LockSpec], unplanned: Sequence[tuple[str, str]], opts: LockOptions
) -> LockSet:
    """Run uv for every spec (in parallel), then write every file of the set together."""
    groups, manifest, files = render_set(specs, unplanned, opts)
    stale = writers.stale_outputs(opts.output, files)
    # the manifest too is replaced only with --force (an unchanged file is left alone)
    writers.write_files(files, force=opts.force, replace=frozenset())
    # the old set's files the new one does not write (with --force: the manifest changed)
    writers.retire(stale)
    return LockSet(
        results=tuple(_result(c, rendered) for c, rendered in groups),
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


def lock_request(
    request: LockRequest,
    opts: LockOptions,
    log: Log = lambda _m: None,
    db: CompatDB | None = None,
) -> LockSet:
    """lock as the command line runs it: plan the request's machines, then lock every
    group in parallel (with the shipped DB unless ``db`` is given)."""
    from bnb_provision.db.load import load_db
    from bnb_provision.plan.inputs import load_machines

    db = db or load_db()
    machines = load_machines(request.machine_files, request.flags, db)
    return lock_machines(machines, db, request.constraints, opts, log)
