"""init and rebuild: a verified, isolated environment per stack, swapped in atomically.

``init`` creates the environment behind the usual path (``.venv-bnb``); ``rebuild``
re-plans and, when the plan changed, the machine drifted or verify fails, builds the new
environment beside the old one, verifies it, then swaps the link and keeps the old one
as a backup (``--keep N``). The store's layout is in :mod:`bnb_provision.env.store`,
``--torch system`` in :mod:`bnb_provision.env.adopt`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnb_provision.env import store
from bnb_provision.env.make import env_python, installed, make_env
from bnb_provision.env.options import BuildOptions, BuildResult, Log, default_env_path
from bnb_provision.env.planning import Context, Inputs, context_for, resolve_lock
from bnb_provision.errors import LockfileError, TargetEnvError
from bnb_provision.lock.pins import LockPins, read_lock_pins

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.env.stamp import Stamp

__all__ = [
    "BuildOptions",
    "BuildResult",
    "default_env_path",
    "describe",
    "init_env",
    "rebuild_env",
]


def _quiet(_message: str) -> None:
    pass


def init_env(
    opts: BuildOptions,
    db: CompatDB | None = None,
    *,
    machine: Machine | None = None,
    log: Log = _quiet,
) -> BuildResult:
    """Create the environment at ``opts.env`` (refuses to touch an existing one).

    ``db`` and ``machine`` default to the shipped DB and this machine, loaded while uv
    installs when a lock is given.
    """
    opts = dataclasses.replace(opts, env=opts.env.absolute())
    env = opts.env
    _refuse_a_file(
        env,
        "init makes a new environment at a path where nothing is yet; give --env another "
        "path, or move the file away",
    )
    if env.exists() or env.is_symlink():
        raise TargetEnvError(
            f"{env} already exists: use bnb-provision rebuild --env {env} "
            "(it builds beside it and swaps only after verify passes)"
        )
    inputs = Inputs(machine, db)
    req = resolve_lock(opts, inputs, log)
    pins = read_lock_pins(req) if req is not None else None
    if opts.dry_run:
        ctx = context_for(inputs, opts, pins)
        return BuildResult(
            env=env,
            real=store.store_of(env) / "(new)",
            summary=ctx.summary,
            plan=ctx.plan,
            report=None,
            stamp=None,
            action="would-create",
            reasons=(ctx.summary.describe(),),
            lock=req,
        )
    with _writing(env):
        made = make_env(opts, req, pins, lambda: context_for(inputs, opts, pins), log)
        store.point(env, made.real)
    return BuildResult(
        env=env,
        real=made.real,
        summary=made.context.summary,
        plan=made.context.plan,
        report=made.report,
        stamp=made.stamp,
        action="created",
        lock=req,
    )


def _refuse_a_file(env: Path, need: str) -> None:
    """``--env`` at a file: what the command needs there instead (init and rebuild differ)."""
    if env.is_file() and not env.is_symlink():
        raise TargetEnvError(f"--env {env} is a file, not an environment: {need}")


@contextlib.contextmanager
def _writing(env: Path) -> Iterator[None]:
    """A store that cannot be written (read-only, full, a system folder) is the user's to
    fix: the project's error and its exit code, not an OSError."""
    try:
        yield
    except OSError as exc:
        raise LockfileError(
            f"{env}: cannot write the environment there ({exc}); choose another --env, "
            "or free space there and run again"
        ) from exc


def _check_managed(env: Path) -> None:
    _refuse_a_file(
        env,
        "rebuild needs an environment bnb-provision init made (the --env path given to "
        "init); give that path",
    )
    if not (env.exists() or env.is_symlink()):
        raise TargetEnvError(f"{env} does not exist: create it with bnb-provision init")
    if not env.is_symlink():
        raise TargetEnvError(
            f"{env} is a plain folder, not an environment bnb-provision created: it cannot be "
            "swapped atomically. Create a managed one beside it with bnb-provision init --env "
            f"{env}-managed, check it, then remove the old one yourself."
        )


def _package_reasons(
    current: Path, ctx: Context, opts: BuildOptions, pins: LockPins | None
) -> list[str]:
    """Where the installed packages differ from the lock's pins (every one), or else from
    the plan."""
    plan = ctx.plan
    have_torch, have_bnb, packages = installed(current, opts.torch_system)
    if pins is not None and pins.packages and opts.torch_system is None:
        return [
            f"{name} {packages.get(name) or 'missing'} -> {version}"
            for name, version in pins.packages
            if packages.get(name) != version and not (name == "torch" and have_torch == version)
        ]
    reasons = []
    if have_torch is None or not have_torch.startswith(str(plan.torch.version)):
        reasons.append(
            f"torch {have_torch or 'missing'} -> {plan.torch.version}+{plan.torch.variant}"
        )
    if have_bnb != str(plan.bitsandbytes.version):
        reasons.append(f"bitsandbytes {have_bnb} -> {plan.bitsandbytes.version}")
    if opts.torch_system is None:
        for name, version in plan.packages:
            have = packages.get(name)
            if name not in ("torch", "bitsandbytes") and have != version:
                reasons.append(f"{name} {have or 'missing'} -> {version}")
    return reasons


def _rebuild_reasons(
    current: Path, stamp: Stamp | None, ctx: Context, opts: BuildOptions, pins: LockPins | None
) -> list[str]:
    """Why the environment at ``current`` must be rebuilt; empty when it need not be."""
    from bnb_provision.env.stamp import machine_drift

    reasons = _package_reasons(current, ctx, opts, pins)
    if stamp is not None:
        reasons += machine_drift(stamp, ctx.machine)
    if not reasons and opts.verify:
        from bnb_provision.env.verify import run_verify

        check = run_verify(str(env_python(current)))
        if not check.ok:
            reasons.append("verify fails: " + "; ".join(check.failures()[:2]))
    return reasons


def rebuild_env(
    opts: BuildOptions,
    db: CompatDB | None = None,
    *,
    machine: Machine | None = None,
    log: Log = _quiet,
) -> BuildResult:
    """Re-plan; if the plan changed or verify fails, build beside, verify, swap atomically."""
    from bnb_provision.env.request import honour_request, lock_changes
    from bnb_provision.env.stamp import read_stamp

    opts = dataclasses.replace(opts, env=opts.env.absolute())
    env = opts.env
    _check_managed(env)
    inputs = Inputs(machine, db)
    current = env.resolve()
    stamp = read_stamp(current)
    opts, notes = honour_request(opts, stamp)
    for note in notes:
        log(note)
    req = resolve_lock(opts, inputs, log)
    pins = read_lock_pins(req) if req is not None else None
    ctx = context_for(inputs, opts, pins)
    reasons = tuple(lock_changes(stamp, req) + _rebuild_reasons(current, stamp, ctx, opts, pins))
    if not reasons or opts.dry_run:
        return BuildResult(
            env=env,
            real=current,
            summary=ctx.summary,
            plan=ctx.plan,
            report=None,
            stamp=stamp,
            action="would-rebuild" if reasons else "unchanged",
            reasons=reasons,
            lock=req,
        )
    log("rebuilding: " + "; ".join(reasons))
    with _writing(env):
        made = make_env(opts, req, pins, lambda: ctx, log)
        store.point(env, made.real)
        backups = store.prune(env, opts.keep, made.real)
    return BuildResult(
        env=env,
        real=made.real,
        summary=ctx.summary,
        plan=ctx.plan,
        report=made.report,
        stamp=made.stamp,
        action="rebuilt",
        reasons=reasons,
        backups=backups,
        lock=req,
    )


def describe(result: BuildResult) -> dict[str, Any]:
    """The ``bnb-provision.env/1`` JSON of a build: :meth:`BuildResult.to_dict`."""
    return result.to_dict()
