"""init and rebuild: a verified, isolated environment per stack, swapped in atomically.

Layout: the usual path (``.venv-bnb``) is a symbolic link to a real environment in
``.venv-bnb.d/<timestamp>``. ``rebuild`` builds the new environment beside the old
one, verifies it, then replaces the link with ``os.replace`` (atomic), so a kill at
any moment leaves a working environment at the usual path; old environments stay
as backups (``--keep N``).

``--torch system`` adopts a torch that is already installed (NGC containers,
cluster modules): the new environment gets a ``.pth`` file that puts the system
environment's site-packages after its own, and only bitsandbytes and the Hugging
Face packages that are missing or too old are installed into it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bnb_provision.core import process, uv
from bnb_provision.core.cuda import cuda_option
from bnb_provision.core.files import write_atomic
from bnb_provision.core.uv import find_uv, run_uv
from bnb_provision.errors import (
    ExternalToolError,
    FindingsError,
    LockfileError,
    NoPlanError,
    TargetEnvError,
)
from bnb_provision.lock.pins import MANIFEST_FILE, LockPins, read_lock_pins, requirements_for

# The resolver, the DB, the machine, the lock writer, the verifier and the environment
# reader load inside the functions that use them: with a lock given, init starts uv
# first and loads them while uv installs.
if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.target import EnvInfo
    from bnb_provision.env.stamp import Stamp
    from bnb_provision.env.verify import VerifyReport
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.model import Plan

__all__ = [
    "BuildOptions",
    "BuildResult",
    "PlanSummary",
    "default_env_path",
    "init_env",
    "rebuild_env",
]

Log = Callable[[str], None]
SYSTEM_PTH: Final = "bnb_provision_system_site.pth"


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOptions:
    env: Path
    constraints: Constraints
    stack: str = "bnb"
    lock: Path | None = None  # a requirements.txt, a pylock.toml or a manifest
    torch_system: Path | None = None  # the interpreter whose torch is adopted
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    index_url: str = "https://pypi.org/simple"
    torch_index_template: str | None = None
    verify: bool = True
    keep: int = 2
    dry_run: bool = False
    progress: bool = False  # let uv draw its progress on this terminal


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanSummary:
    """What an environment is built for: the part of a plan that init reports and stamps."""

    python: str
    torch: str  # public version
    variant: str
    bitsandbytes: str
    library: str | None  # the native library bitsandbytes' loader will pick
    db_version: str

    @classmethod
    def of(cls, plan: Plan) -> PlanSummary:
        return cls(
            python=plan.python,
            torch=str(plan.torch.version),
            variant=plan.torch.variant,
            bitsandbytes=str(plan.bitsandbytes.version),
            library=plan.bitsandbytes.library,
            db_version=plan.db_version,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildResult:
    env: Path  # the usual path
    real: Path  # the environment it points to
    summary: PlanSummary | None
    plan: Plan | None  # the full plan, when it was computed (not taken from the cache)
    report: VerifyReport | None
    stamp: Stamp | None
    action: str  # created | rebuilt | unchanged | would-rebuild | would-create
    reasons: tuple[str, ...] = ()
    backups: tuple[Path, ...] = ()


def default_env_path(stack: str) -> Path:
    return Path(f".venv-{stack}")


def _now() -> str:
    """A build folder's name: the UTC time to the microsecond, sortable."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _store(env: Path) -> Path:
    return env.parent / f"{env.name}.d"


def _python_in(env: Path) -> Path:
    from bnb_provision.detect.target import find_env_python

    return find_env_python(env).absolute()


# -- the lock to install ------------------------------------------------------------


def select_from_manifest(
    manifest: Path, machine: Machine, db: CompatDB, constraints: Constraints
) -> Path:
    """The lock of the manifest's class that runs on ``machine``."""
    from bnb_provision.lock.manifest import read_manifest
    from bnb_provision.plan.inputs import plan_for

    locks = read_manifest(manifest)
    reasons = []
    for cls in locks.classes:
        pin = dataclasses.replace(
            constraints,
            torch=cls.torch,
            bnb=cls.bitsandbytes,
            cuda=cuda_option(cls.variant) or constraints.cuda,
            python=cls.python,
        )
        try:
            plan = plan_for(machine, db, pin)
        except NoPlanError as exc:
            reasons.append(f"{cls.name}: {str(exc).splitlines()[0]}")
            continue
        if plan.target.platform.startswith(cls.os) and plan.target.arch == cls.arch:
            return locks.requirements_of(cls)
        reasons.append(f"{cls.name}: for {cls.os}-{cls.arch}")
    raise NoPlanError(f"{manifest}: no lock class fits this machine:\n  " + "\n  ".join(reasons))


# -- uv steps in the background -------------------------------------------------------


class _Steps(threading.Thread):
    """uv commands run one after the other in a worker thread, cancellable.

    init starts them as soon as it knows what to install, and plans (the DB, the
    resolver, the machine) while they run; a plan that rejects the lock cancels them.
    """

    def __init__(self, steps: Sequence[Sequence[str]], *, progress: bool) -> None:
        super().__init__(name="bnb-provision-uv", daemon=True)
        self._steps = [list(a) for a in steps]
        self._progress = progress
        self._lock = threading.Lock()
        self._current: process.Running | None = None
        self._cancelled = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for args in self._steps:
                with self._lock:
                    if self._cancelled:
                        return
                    self._current = process.start(args, timeout=1800.0, capture=not self._progress)
                self._current.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by finish()
            self.error = exc

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._current is not None:
                self._current.cancel()
        self.join()

    def finish(self) -> None:
        """Wait for the steps; re-raise the first failure in the calling thread."""
        self.join()
        if self.error is not None:
            raise self.error


# -- building one environment -----------------------------------------------------------


def _interpreter_for(python: str, hint: Path | None) -> str:
    if hint is not None:
        return str(hint)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        return sys.executable
    found = process.find_program(f"python{python}")
    if found:
        return found
    try:
        done = run_uv(["python", "find", python, "--no-python-downloads"])
        return done.stdout.strip().splitlines()[-1]
    except ExternalToolError as exc:
        raise TargetEnvError(
            f"no Python {python} interpreter on this machine (the plan needs "
            "it): install it, or plan for an installed one with --python X.Y"
        ) from exc


def _uv_index_args(opts: BuildOptions) -> list[str]:
    return uv.source_args(offline=opts.offline, find_links=opts.find_links)


def _venv_step(real: Path, interpreter: str) -> list[str]:
    return uv.venv_step(interpreter, real)


def _sync_step(real: Path, req: Path, opts: BuildOptions) -> list[str]:
    return uv.sync_step(real, req, sources=_uv_index_args(opts), quiet=not opts.progress)


def _system_site_dirs(python: Path) -> list[str]:
    code = (
        "import json, site, sysconfig; p = sysconfig.get_paths(); "
        "print(json.dumps(sorted({p['purelib'], p['platlib']})))"
    )
    done = process.run([str(python), "-c", code], timeout=60)
    return [d for d in json.loads(done.stdout.strip().splitlines()[-1]) if Path(d).is_dir()]


def _adopt_system_torch(
    real: Path, plan: Plan, opts: BuildOptions, db: CompatDB, log: Log, system_env: EnvInfo
) -> Path:
    """--torch system: see the system torch through a .pth; add only what is missing."""
    from packaging.version import Version

    assert opts.torch_system is not None
    process.run(_venv_step(real, str(opts.torch_system)), timeout=600)
    py = _python_in(real)
    workdir = real / ".bnb-provision"
    workdir.mkdir(exist_ok=True)
    site = json.loads(
        process.run(
            [
                str(py),
                "-c",
                "import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))",
            ],
            timeout=60,
        ).stdout
    )
    dirs = _system_site_dirs(opts.torch_system)
    Path(site, SYSTEM_PTH).write_text("\n".join(dirs) + "\n", encoding="utf-8")
    have = dict(system_env.packages)
    wanted = []
    for name, version in plan.packages:
        if name == "torch":
            continue
        if (
            name == "bitsandbytes"
            or have.get(name) is None
            or (
                Version(have[name]) < Version(version)
                and not _satisfies_floors(db, plan, name, have[name])
            )
        ):
            wanted.append(f"{name}=={version}")
    overrides = workdir / "provided-by-system.txt"
    keep = {w.split("==")[0] for w in wanted}
    overrides.write_text(
        "".join(f'{n} ; python_version < "0"\n' for n in sorted(have) if n not in keep),
        encoding="utf-8",
    )
    reqs = workdir / "requirements.in"
    reqs.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    log(
        f"adopting {system_env.torch.version if system_env.torch else 'torch'} from "
        f"{opts.torch_system}; installing {', '.join(wanted)}"
    )
    process.run(
        [
            find_uv(),
            "pip",
            "install",
            "--python",
            str(py),
            "--override",
            str(overrides),
            "-r",
            str(reqs),
            "--no-python-downloads",
            *_uv_index_args(opts),
            *([] if opts.offline else ["--default-index", opts.index_url]),
        ],
        timeout=1800.0,
        capture=not opts.progress,
    )
    return reqs


def _lock_for_plan(real: Path, plan: Plan, opts: BuildOptions, db: CompatDB) -> Path:
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
    return compile_spec(spec, lock_opts).requirements


def _satisfies_floors(db: CompatDB, plan: Plan, name: str, version: str) -> bool:
    from packaging.version import Version

    v = Version(version)
    for c in db.hf_constraints:
        for n, spec in c.requires:
            if n == name and not spec.contains(v, prereleases=True):
                return False
    return all(  # what this release asks of bitsandbytes (huggingface.toml)
        spec.contains(plan.bitsandbytes.version, prereleases=True)
        for n, spec in db.hf_requires(name, v)
        if n == "bitsandbytes"
    )


def _installed(env: Path, system: Path | None) -> tuple[str | None, str | None, dict[str, str]]:
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
    info = inspect_env(str(_python_in(env)), [], read_binaries=False)
    return (
        info.torch.version if info.torch else info.version_of("torch"),
        info.version_of("bitsandbytes"),
        dict(info.packages),
    )


def _write_stamp(
    real: Path,
    machine: Machine,
    summary: PlanSummary,
    report: VerifyReport | None,
    req: Path | None,
    system: Path | None,
) -> Stamp:
    import hashlib

    from bnb_provision.env.stamp import STAMP_FILE, Stamp, gpu_ids

    torch, bnb, _ = _installed(real, system)
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
    )
    write_atomic(real / STAMP_FILE, json.dumps(stamp.to_dict(), indent=2))
    return stamp


def _point(env: Path, real: Path) -> None:
    """Make ``env`` a link to ``real`` in one atomic step."""
    tmp = env.parent / f".{env.name}.link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    target = os.path.relpath(real, env.parent)
    tmp.symlink_to(target, target_is_directory=True)
    tmp.replace(env)


def _prune(env: Path, keep: int, current: Path) -> tuple[Path, ...]:
    store = _store(env)
    old = sorted(
        (
            p
            for p in store.iterdir()
            if p.is_dir() and p.resolve() != current.resolve() and not p.name.endswith(".partial")
        ),
        key=lambda p: p.name,
    )
    backups = old[-keep:] if keep > 0 else []
    for p in old:
        if p not in backups:
            shutil.rmtree(p, ignore_errors=True)
    _remove_abandoned(store)
    return tuple(backups)


def _owner_file(partial: Path) -> Path:
    return partial.with_name(f"{partial.name}.pid")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is not ours to signal
        return True
    return True


def _remove_abandoned(store: Path) -> None:
    """Remove ``.partial`` environments whose builder is gone (killed mid-build).

    Each build writes ``<name>.partial.pid`` beside its folder; one whose process no
    longer runs on this machine is abandoned. A build still running is left alone.
    """
    for owner in store.glob("*.partial.pid"):
        try:
            pid = int(owner.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(owner.with_name(owner.name.removesuffix(".pid")), ignore_errors=True)
        owner.unlink(missing_ok=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Context:
    """What planning found: the machine, its plan (in full, or only its summary when the
    same lock was checked against the same machine and DB before), an adopted torch."""

    machine: Machine
    summary: PlanSummary
    plan: Plan | None = None
    db: CompatDB | None = None
    system_env: EnvInfo | None = None

    def full(self) -> tuple[Plan, CompatDB]:
        assert self.plan is not None, "only a summary: planned from the cache"
        assert self.db is not None, "only a summary: planned from the cache"
        return self.plan, self.db


def _make(
    opts: BuildOptions,
    req: Path | None,
    pins: LockPins | None,
    context: Callable[[], _Context],
    log: Log,
) -> tuple[Path, _Context, VerifyReport | None, Stamp]:
    """Build a new environment in ``<env>.d/<timestamp>.partial``, verify and stamp it.

    With a requirements lock whose Python is known, uv starts at once and
    ``context`` (the machine, the DB, the plan) is worked out while it installs; a plan
    that rejects the lock cancels uv. Otherwise the plan comes first. Only a finished environment
    loses the ``.partial`` suffix; any failure removes the partial one.
    """
    store = _store(opts.env)
    at_once = bool(req and pins and pins.python and opts.torch_system is None)
    if at_once:
        assert req is not None
        assert pins is not None
        assert pins.python is not None
        interpreter = _interpreter_for(pins.python, None)
        lock = req

        def steps_for(partial: str) -> list[list[str]]:
            return [
                _venv_step(Path(partial), interpreter),
                _sync_step(Path(partial), lock, opts),
            ]

    made_store = not store.is_dir()
    store.mkdir(parents=True, exist_ok=True)
    name = _now()
    partial = store / f"{name}.partial"
    real = store / name
    owner = _owner_file(partial)
    owner.write_text(str(os.getpid()), encoding="utf-8")
    try:
        if at_once:
            assert req is not None
            log(f"installing {req.name} into {real}")
            steps = _Steps(steps_for(str(partial)), progress=opts.progress)
            steps.start()
            try:
                ctx = context()
            except BaseException:
                steps.cancel()
                raise
            steps.finish()
        else:
            ctx = context()
            plan, db = ctx.full()
            if opts.torch_system is not None:
                assert ctx.system_env is not None
                req = _adopt_system_torch(partial, plan, opts, db, log, ctx.system_env)
            else:
                process.run(_venv_step(partial, _interpreter_for(plan.python, None)), timeout=600)
                if req is None:
                    req = _lock_for_plan(partial, plan, opts, db)
                log(f"installing {req.name} into {real}")
                process.run(
                    _sync_step(partial, req, opts), timeout=1800.0, capture=not opts.progress
                )
        partial.rename(real)  # a finished environment never has .partial in its name
        if req.is_relative_to(partial):
            req = real / req.relative_to(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        owner.unlink(missing_ok=True)
        if made_store:
            with contextlib.suppress(OSError):  # empty unless something else is in it
                store.rmdir()
        raise
    finally:
        owner.unlink(missing_ok=True)
    report = None
    if opts.verify:
        from bnb_provision.env.verify import run_verify

        log("verifying")
        report = run_verify(str(_python_in(real)))
    stamp = _write_stamp(
        real,
        ctx.machine,
        ctx.summary,
        report,
        req if req.suffix == ".txt" else None,
        opts.torch_system,
    )
    if report is not None and not report.ok:
        raise FindingsError(
            f"verify failed in the new environment {real} (left there; the "
            "usual path is unchanged): " + "; ".join(report.failures()[:3])
        )
    return real, ctx, report, stamp


def _plan(machine: Machine, opts: BuildOptions, db: CompatDB, system_env: EnvInfo | None) -> Plan:
    from packaging.version import Version

    from bnb_provision.plan.inputs import plan_for

    cons = opts.constraints
    if system_env is not None:
        if system_env.torch is None:
            raise TargetEnvError(f"--torch system: {opts.torch_system} has no torch installed")
        tv = Version(system_env.torch.version)
        cuda = system_env.torch.cuda
        cons = dataclasses.replace(
            cons, torch=str(tv.public), python=system_env.python.minor, cuda=cuda or "cpu"
        )
    return plan_for(machine, db, cons)


def _plan_for_lock(machine: Machine, db: CompatDB, pins: LockPins, opts: BuildOptions) -> Plan:
    """The plan this machine gets under the lock's own pins: it must exist, or the lock
    does not run here (a CUDA build too new for the driver, a GPU its kernels lack)."""
    from packaging.version import Version

    from bnb_provision.plan.inputs import plan_for

    cons = dataclasses.replace(
        opts.constraints,
        torch=Version(pins.torch).public if pins.torch else opts.constraints.torch,
        bnb=pins.bitsandbytes or opts.constraints.bnb,
        cuda=cuda_option(pins.torch_variant) or opts.constraints.cuda,
        python=pins.python or opts.constraints.python,
    )
    try:
        return plan_for(machine, db, cons)
    except NoPlanError as exc:
        raise NoPlanError(f"the lock does not run on this machine: {exc}") from exc


def _resolve_lock(
    opts: BuildOptions, machine: Callable[[], Machine], db: Callable[[], CompatDB], log: Log
) -> Path | None:
    """The requirements file to install: the given one, or this machine's from a manifest."""
    lock = opts.lock
    if lock is None:
        return None
    if lock.is_dir() or lock.name == MANIFEST_FILE:
        manifest = lock / MANIFEST_FILE if lock.is_dir() else lock
        if not manifest.is_file():
            raise LockfileError(f"{lock}: no {MANIFEST_FILE} in it (bnb-provision lock writes one)")
        lock = select_from_manifest(manifest, machine(), db(), opts.constraints)
        log(f"manifest: this machine uses {lock.name}")
    return requirements_for(lock).resolve()


class _Lazy:
    """The machine and the DB, each worked out once, when first needed."""

    def __init__(self, machine: Machine | None, db: CompatDB | None) -> None:
        self._machine = machine
        self._db = db

    def machine(self) -> Machine:
        if self._machine is None:
            from bnb_provision.detect.machine import detect_machine

            self._machine = detect_machine()
        return self._machine

    def db(self) -> CompatDB:
        if self._db is None:
            from bnb_provision.db.load import load_db

            self._db = load_db()
        return self._db


def init_env(
    opts: BuildOptions,
    db: CompatDB | None = None,
    *,
    machine: Machine | None = None,
    log: Log = lambda _m: None,
) -> BuildResult:
    """Create the environment at ``opts.env`` (refuses to touch an existing one).

    ``db`` and ``machine`` default to the shipped DB and this machine, loaded while uv
    installs when a lock is given.
    """
    opts = dataclasses.replace(opts, env=opts.env.absolute())
    env = opts.env
    if env.exists() or env.is_symlink():
        raise TargetEnvError(
            f"{env} already exists: use bnb-provision rebuild --env {env} "
            "(it builds beside it and swaps only after verify passes)"
        )
    lazy = _Lazy(machine, db)
    req = _resolve_lock(opts, lazy.machine, lazy.db, log)
    pins = read_lock_pins(req) if req is not None else None

    def context() -> _Context:
        from bnb_provision.detect.target import inspect_env

        system_env = inspect_env(str(opts.torch_system), []) if opts.torch_system else None
        if pins is not None and system_env is None:
            plan = _plan_for_lock(lazy.machine(), lazy.db(), pins, opts)
        else:
            plan = _plan(lazy.machine(), opts, lazy.db(), system_env)
        return _Context(
            machine=lazy.machine(),
            summary=PlanSummary.of(plan),
            plan=plan,
            db=lazy.db(),
            system_env=system_env,
        )

    if opts.dry_run:
        ctx = context()
        s = ctx.summary
        return BuildResult(
            env=env,
            real=_store(env) / "(new)",
            summary=s,
            plan=ctx.plan,
            report=None,
            stamp=None,
            action="would-create",
            reasons=(f"torch {s.torch}+{s.variant}, bitsandbytes {s.bitsandbytes}",),
        )
    real, ctx, report, stamp = _make(opts, req, pins, context, log)
    _point(env, real)
    return BuildResult(
        env=env,
        real=real,
        summary=ctx.summary,
        plan=ctx.plan,
        report=report,
        stamp=stamp,
        action="created",
    )


def rebuild_env(
    opts: BuildOptions,
    db: CompatDB | None = None,
    *,
    machine: Machine | None = None,
    log: Log = lambda _m: None,
) -> BuildResult:
    """Re-plan; if the plan changed or verify fails, build beside, verify, swap atomically."""
    opts = dataclasses.replace(opts, env=opts.env.absolute())
    env = opts.env
    if not (env.exists() or env.is_symlink()):
        raise TargetEnvError(f"{env} does not exist: create it with bnb-provision init")
    if not env.is_symlink():
        raise TargetEnvError(
            f"{env} is a plain folder, not an environment bnb-provision created: it cannot be "
            "swapped atomically. Create a managed one beside it with bnb-provision init --env "
            f"{env}-managed, check it, then remove the old one yourself."
        )
    from bnb_provision.detect.target import inspect_env
    from bnb_provision.env.stamp import machine_drift, read_stamp

    lazy = _Lazy(machine, db)
    current = env.resolve()
    stamp = read_stamp(current)
    system_env = inspect_env(str(opts.torch_system), []) if opts.torch_system else None
    req = _resolve_lock(opts, lazy.machine, lazy.db, log)
    pins = read_lock_pins(req) if req is not None else None
    plan = (
        _plan_for_lock(lazy.machine(), lazy.db(), pins, opts)
        if pins is not None and system_env is None
        else _plan(lazy.machine(), opts, lazy.db(), system_env)
    )
    ctx = _Context(
        machine=lazy.machine(),
        summary=PlanSummary.of(plan),
        plan=plan,
        db=lazy.db(),
        system_env=system_env,
    )
    reasons = []
    have_torch, have_bnb, packages = _installed(current, opts.torch_system)
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
    if stamp is not None:
        reasons += machine_drift(stamp, ctx.machine)
    if not reasons and opts.verify:
        from bnb_provision.env.verify import run_verify

        check = run_verify(str(_python_in(current)))
        if not check.ok:
            reasons.append("verify fails: " + "; ".join(check.failures()[:2]))
    if not reasons or opts.dry_run:
        return BuildResult(
            env=env,
            real=current,
            summary=ctx.summary,
            plan=plan,
            report=None,
            stamp=stamp,
            action="would-rebuild" if reasons else "unchanged",
            reasons=tuple(reasons),
        )
    log("rebuilding: " + "; ".join(reasons))
    real, _, report, new_stamp = _make(opts, req, pins, lambda: ctx, log)
    _point(env, real)
    backups = _prune(env, opts.keep, real)
    return BuildResult(
        env=env,
        real=real,
        summary=ctx.summary,
        plan=plan,
        report=report,
        stamp=new_stamp,
        action="rebuilt",
        reasons=tuple(reasons),
        backups=backups,
    )


def describe(result: BuildResult) -> dict[str, Any]:
    s = result.summary
    return {
        "schema": "bnb-provision.env/1",
        "env": str(result.env),
        "real": str(result.real),
        "action": result.action,
        "reasons": list(result.reasons),
        "torch": f"{s.torch}+{s.variant}" if s else None,
        "bitsandbytes": s.bitsandbytes if s else None,
        "verify": result.report.data if result.report else None,
        "stamp": result.stamp.to_dict() if result.stamp else None,
        "backups": [str(b) for b in result.backups],
    }
