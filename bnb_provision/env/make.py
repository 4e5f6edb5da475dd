"""Building one environment in the store: install (uv), verify, stamp.

With a requirements lock whose Python is known, uv starts at once and the plan (the
machine, the DB, the resolver) is worked out while it installs; a plan that rejects the
lock cancels uv. Otherwise the plan comes first, then uv installs it, or the missing
part of it around an adopted system torch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bnb_provision.core import process, uv
from bnb_provision.core.files import write_atomic
from bnb_provision.env import store
from bnb_provision.env.options import BuildOptions, Log, PlanSummary
from bnb_provision.env.planning import Context
from bnb_provision.errors import ExternalToolError, FindingsError, TargetEnvError

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.env.stamp import Request, Stamp
    from bnb_provision.env.verify import VerifyReport
    from bnb_provision.lock.pins import LockPins
    from bnb_provision.plan.model import Plan

__all__ = ["Made", "env_python", "installed", "make_env"]


def env_python(env: Path) -> Path:
    from bnb_provision.detect.target import find_env_python

    return find_env_python(env).absolute()


def interpreter_for(python: str) -> str:
    """An interpreter of Python ``X.Y`` on this machine, for ``uv venv``."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        return sys.executable
    found = process.find_program(f"python{python}")
    if found:
        return found
    try:
        done = uv.run_uv(["python", "find", python, "--no-python-downloads"])
        return done.stdout.strip().splitlines()[-1]
    except ExternalToolError as exc:
        raise TargetEnvError(
            f"no Python {python} interpreter on this machine (the plan needs "
            "it): install it, or plan for an installed one with --python X.Y"
        ) from exc


def installed(env: Path, system: Path | None) -> tuple[str | None, str | None, dict[str, str]]:
    """(torch version, bitsandbytes version, all packages) of an environment.

    Read from its files; an environment that adopts a system torch is asked through its
    interpreter, since its torch lives in the system's site-packages.
    """
    from bnb_provision.detect.target import inspect_env, installed_from_files, site_packages

    site = site_packages(env)
    if system is None and site is not None:
        packages, torch = installed_from_files(site)
        return (
            torch.version if torch else packages.get("torch"),
            packages.get("bitsandbytes"),
            packages,
        )
    info = inspect_env(str(env_python(env)), [], read_binaries=False)
    return (
        info.torch.version if info.torch else info.version_of("torch"),
        info.version_of("bitsandbytes"),
        dict(info.packages),
    )


def _sync_step(real: Path, req: Path, opts: BuildOptions) -> list[str]:
    sources = uv.source_args(offline=opts.offline, find_links=opts.find_links)
    return uv.sync_step(real, req, sources=sources, quiet=not opts.progress)


def _lock_for_plan(real: Path, plan: Plan, opts: BuildOptions, db: CompatDB, log: Log) -> Path:
    """No lock given: compile one for this machine's plan into the new environment."""
    from bnb_provision.lock.lockset import LockOptions, as_stack, compile_spec, spec_for

    workdir = real / ".bnb-provision"
    workdir.mkdir(parents=True, exist_ok=True)
    lock_opts = LockOptions(
        output=workdir,
        stack=as_stack(opts.stack),
        default_index=opts.index_url,
        torch_index_template=opts.torch_index_template,
        offline=opts.offline,
        find_links=opts.find_links,
        regenerate="bnb-provision init",
    )
    spec = spec_for(plan, ("this machine",), None, db, lock_opts)
    for warning in spec.warnings:  # what the stack's library needs or is (nvcc, archived)
        log(f"warning: {warning}")
    return compile_spec(spec, lock_opts).requirements


def _install_while_planning(
    slot: store.Slot,
    req: Path,
    interpreter: str,
    context: Callable[[], Context],
    opts: BuildOptions,
    log: Log,
) -> Context:
    """uv creates the environment and syncs the lock while ``context`` plans."""
    log(f"installing {req.name} into {slot.real}")
    steps = process.start_steps(
        [uv.venv_step(interpreter, slot.partial), _sync_step(slot.partial, req, opts)],
        timeout=uv.UV_TIMEOUT,
        capture=not opts.progress,
    )
    try:
        ctx = context()
    except BaseException:
        steps.cancel()
        raise
    steps.finish()
    return ctx


def _plan_then_install(
    slot: store.Slot, req: Path | None, ctx: Context, opts: BuildOptions, log: Log
) -> Path:
    """Install what ``ctx`` planned; returns the requirements file installed."""
    from bnb_provision.env.adopt import adopt_system_torch

    if opts.torch_system is not None:
        assert ctx.system_env is not None
        return adopt_system_torch(slot.partial, ctx.plan, opts, ctx.db, log, ctx.system_env)
    process.run(uv.venv_step(interpreter_for(ctx.plan.python), slot.partial), timeout=600)
    if req is None:
        req = _lock_for_plan(slot.partial, ctx.plan, opts, ctx.db, log)
    log(f"installing {req.name} into {slot.real}")
    process.run(
        _sync_step(slot.partial, req, opts), timeout=uv.UV_TIMEOUT, capture=not opts.progress
    )
    return req


def _write_stamp(
    real: Path,
    machine: Machine,
    summary: PlanSummary,
    report: VerifyReport | None,
    req: Path | None,
    request: Request,
) -> Stamp:
    from bnb_provision.env.stamp import STAMP_FILE, Stamp, gpu_ids

    system = Path(request.torch_system) if request.torch_system else None
    torch, bnb, _ = installed(real, system)
    stamp = Stamp(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        driver=machine.nvidia.driver if machine.nvidia else None,
        gpus=gpu_ids(machine),
        torch=torch,
        bitsandbytes=bnb,
        library=report.library if report else summary.library,
        lock_sha256=hashlib.sha256(req.read_bytes()).hexdigest() if req and req.exists() else None,
        db_version=summary.db_version,
        verified=bool(report and report.ok),
        request=request,
    )
    write_atomic(real / STAMP_FILE, json.dumps(stamp.to_dict(), indent=2))
    return stamp


@dataclass(frozen=True, kw_only=True, slots=True)
class Made:
    """A finished, stamped environment (verified, unless verify was turned off)."""

    real: Path
    context: Context
    report: VerifyReport | None
    stamp: Stamp


def _verify_and_stamp(
    real: Path, req: Path, ctx: Context, opts: BuildOptions, log: Log
) -> tuple[VerifyReport | None, Stamp]:
    report = None
    if opts.verify:
        from bnb_provision.env.verify import run_verify

        log("verifying")
        report = run_verify(str(env_python(real)))
    from bnb_provision.env.request import request_of

    lock = req if req.suffix == ".txt" else None
    request = request_of(opts, req)
    stamp = _write_stamp(real, ctx.machine, ctx.summary, report, lock, request)
    return report, stamp


def _set_aside(real: Path, keep: int) -> Path:
    """An environment that is not verified: never a backup, at most ``keep`` of them."""
    failed = store.mark_failed(real)
    store.prune_failed(failed.parent, keep)
    return failed


def make_env(
    opts: BuildOptions,
    req: Path | None,
    pins: LockPins | None,
    context: Callable[[], Context],
    log: Log,
) -> Made:
    """Build a new environment in the store, verify and stamp it.

    A build that fails is removed; one that fails verify, or whose verify or stamp could
    not run, is kept as ``<name>.failed`` (at most ``opts.keep`` of them); failing verify
    raises :class:`FindingsError`.
    """
    python = pins.python if req and pins and opts.torch_system is None else None
    interpreter = interpreter_for(python) if python else None
    with store.new_build(opts.env) as slot:
        if req is not None and interpreter is not None:
            ctx = _install_while_planning(slot, req, interpreter, context, opts, log)
        else:
            ctx = context()
            req = _plan_then_install(slot, req, ctx, opts, log)
    try:
        report, stamp = _verify_and_stamp(slot.real, slot.moved(req), ctx, opts, log)
    except BaseException:
        with contextlib.suppress(OSError):
            _set_aside(slot.real, opts.keep)
        raise
    if report is not None and not report.ok:
        failed = _set_aside(slot.real, opts.keep)
        raise FindingsError(
            f"verify failed in the new environment {failed} (left there; the "
            "usual path is unchanged): " + "; ".join(report.failures()[:3])
        )
    return Made(real=slot.real, context=ctx, report=report, stamp=stamp)
