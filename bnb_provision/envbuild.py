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

import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from packaging.version import Version

from bnb_provision import _subprocess
from bnb_provision.compat import CompatDB, toml_loads
from bnb_provision.environment import EnvInfo, find_env_python, inspect_env
from bnb_provision.errors import (
    ExternalToolError,
    FindingsError,
    LockfileError,
    NoPlanError,
    TargetEnvError,
)
from bnb_provision.lock import (
    MANIFEST_FILE,
    LockGroup,
    LockOptions,
    compile_group,
)
from bnb_provision.machine import Machine, detect_machine
from bnb_provision.planning import plan_for
from bnb_provision.resolve import Constraints, Plan
from bnb_provision.stamp import STAMP_FILE, Stamp, read_stamp
from bnb_provision.uv import run_uv
from bnb_provision.verify import VerifyReport, run_verify

__all__ = ["BuildOptions", "BuildResult", "default_env_path", "init_env", "rebuild_env"]

Log = Callable[[str], None]
SYSTEM_PTH: Final = "bnb_provision_system_site.pth"


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOptions:
    env: Path
    stack: str = "bnb"
    constraints: Constraints = dataclasses.field(default_factory=Constraints)
    lock: Path | None = None  # a requirements.txt, a pylock.toml or a manifest
    torch_system: Path | None = None  # the interpreter whose torch is adopted
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    index_url: str = "https://pypi.org/simple"
    torch_index_template: str | None = None
    verify: bool = True
    keep: int = 2
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildResult:
    env: Path  # the usual path
    real: Path  # the environment it points to
    plan: Plan | None
    report: VerifyReport | None
    stamp: Stamp | None
    action: str  # created | rebuilt | unchanged | would-rebuild | would-create
    reasons: tuple[str, ...] = ()
    backups: tuple[Path, ...] = ()


def default_env_path(stack: str) -> Path:
    return Path(f".venv-{stack}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _store(env: Path) -> Path:
    return env.parent / f"{env.name}.d"


def _python_in(env: Path) -> Path:
    return find_env_python(env).absolute()


# -- the lock to install ------------------------------------------------------------


def _requirements_from(lock: Path) -> Path:
    if lock.name.endswith(".requirements.txt") or lock.suffix == ".txt":
        return lock
    if lock.name.startswith("pylock.") and lock.suffix == ".toml":
        sibling = lock.with_name(
            lock.name.removeprefix("pylock.").removesuffix(".toml") + ".requirements.txt"
        )
        if sibling.exists():
            return sibling
    raise LockfileError(
        f"{lock}: expected a <group>.requirements.txt, its pylock.<group>.toml, "
        f"or a folder with {MANIFEST_FILE}"
    )


def select_from_manifest(
    manifest: Path, machine: Machine, db: CompatDB, constraints: Constraints
) -> Path:
    """The lock of the manifest's class that runs on ``machine``."""
    data = toml_loads(manifest.read_text(encoding="utf-8"))
    reasons = []
    for cls in data.get("class", []):
        pin = dataclasses.replace(
            constraints,
            torch=cls["torch"],
            bnb=cls["bitsandbytes"],
            cuda="cpu"
            if cls["variant"] == "cpu"
            else f"{cls['variant'][2:-1]}.{cls['variant'][-1]}",
            python=cls["python"],
        )
        try:
            plan = plan_for(machine, db, pin)
        except NoPlanError as exc:
            reasons.append(f"{cls['name']}: {str(exc).splitlines()[0]}")
            continue
        if plan.target.platform.startswith(cls["os"]) and plan.target.arch == cls["arch"]:
            return manifest.parent / str(cls["requirements"])
        reasons.append(f"{cls['name']}: for {cls['os']}-{cls['arch']}")
    raise NoPlanError(f"{manifest}: no lock class fits this machine:\n  " + "\n  ".join(reasons))


# -- building one environment -----------------------------------------------------------


def _interpreter_for(python: str, hint: Path | None) -> str:
    if hint is not None:
        return str(hint)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        return sys.executable
    found = _subprocess.find_program(f"python{python}")
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
    args: list[str] = []
    if opts.offline:
        args += ["--offline", "--no-index"]
    for d in opts.find_links:
        args += ["--find-links", str(d)]
    return args


def _system_site_dirs(python: Path) -> list[str]:
    code = (
        "import json, site, sysconfig; p = sysconfig.get_paths(); "
        "print(json.dumps(sorted({p['purelib'], p['platlib']})))"
    )
    done = _subprocess.run([str(python), "-c", code], timeout=60)
    return [d for d in json.loads(done.stdout.strip().splitlines()[-1]) if Path(d).is_dir()]


def _build(
    real: Path, plan: Plan, opts: BuildOptions, db: CompatDB, log: Log, system_env: EnvInfo | None
) -> Path:
    """Create ``real`` and install into it; returns the requirements file installed."""
    interpreter = _interpreter_for(plan.python, opts.torch_system)
    run_uv(["venv", "--quiet", "--no-python-downloads", "--python", interpreter, str(real)])
    py = _python_in(real)
    workdir = real / ".bnb-provision"
    workdir.mkdir()
    if opts.torch_system is not None:
        assert system_env is not None
        site = json.loads(
            _subprocess.run(
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
        run_uv(
            [
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
            ]
            + ([] if opts.offline else ["--default-index", opts.index_url])
        )
        return reqs
    if opts.lock is not None:
        req = opts.lock
    else:
        group = LockGroup(
            name=f"{opts.stack}-{plan.target.platform}-py{plan.python}",
            plan=plan,
            machines=("this machine",),
        )
        lock_opts = LockOptions(
            output=workdir,
            stack=opts.stack,
            default_index=opts.index_url,
            torch_index_template=opts.torch_index_template,
            offline=opts.offline,
            find_links=opts.find_links,
            regenerate="bnb-provision init",
        )
        req = compile_group(group, db, lock_opts).requirements
    log(f"installing {req.name} into {real}")
    run_uv(
        [
            "pip",
            "sync",
            "--python",
            str(py),
            "--require-hashes",
            "--no-python-downloads",
            *_uv_index_args(opts),
            str(req),
        ]
    )
    return req


def _satisfies_floors(db: CompatDB, plan: Plan, name: str, version: str) -> bool:
    v = Version(version)
    for c in db.hf_constraints:
        for n, spec in c.requires:
            if n == name and not spec.contains(v, prereleases=True):
                return False
    return not (
        name == "transformers"
        and v.major >= 5  # noqa: PLR2004
        and plan.bitsandbytes.version < Version("0.46.1")
    )


def _write_stamp(
    real: Path,
    machine: Machine,
    plan: Plan | None,
    env: EnvInfo,
    report: VerifyReport | None,
    req: Path | None,
    db: CompatDB,
) -> Stamp:
    import hashlib

    stamp = Stamp(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        driver=machine.nvidia.driver if machine.nvidia else None,
        gpus=tuple((g.name, g.cc_text or "?") for g in machine.gpus),
        torch=env.torch.version if env.torch else env.version_of("torch"),
        bitsandbytes=env.version_of("bitsandbytes"),
        library=report.library if report else (plan.bitsandbytes.library if plan else None),
        lock_sha256=hashlib.sha256(req.read_bytes()).hexdigest() if req and req.exists() else None,
        db_version=db.version,
        verified=bool(report and report.ok),
    )
    tmp = real / f".{STAMP_FILE}.tmp"
    tmp.write_text(json.dumps(stamp.to_dict(), indent=2), encoding="utf-8")
    tmp.replace(real / STAMP_FILE)
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
    return tuple(backups)


def _make(
    machine: Machine,
    plan: Plan | None,
    opts: BuildOptions,
    db: CompatDB,
    log: Log,
    system_env: EnvInfo | None,
) -> tuple[Path, VerifyReport | None, Stamp]:
    store = _store(opts.env)
    store.mkdir(parents=True, exist_ok=True)
    stamp_name = _now()
    partial = store / f"{stamp_name}.partial"
    real = store / stamp_name
    try:
        assert plan is not None
        req = _build(partial, plan, opts, db, log, system_env)
        partial.rename(real)  # a finished environment never has .partial in its name
        if req.is_relative_to(partial):
            req = real / req.relative_to(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    py = _python_in(real)
    report = None
    if opts.verify:
        log("verifying")
        report = run_verify(str(py))
    env_info = inspect_env(str(py), [], read_binaries=False)
    stamp = _write_stamp(
        real, machine, plan, env_info, report, req if req.suffix == ".txt" else None, db
    )
    if report is not None and not report.ok:
        raise FindingsError(
            f"verify failed in the new environment {real} (left there; the "
            "usual path is unchanged): " + "; ".join(report.failures()[:3])
        )
    return real, report, stamp


def _plan(machine: Machine, opts: BuildOptions, db: CompatDB, system_env: EnvInfo | None) -> Plan:
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


def init_env(
    opts: BuildOptions, db: CompatDB, *, machine: Machine | None = None, log: Log = lambda _m: None
) -> BuildResult:
    """Create the environment at ``opts.env`` (refuses to touch an existing one)."""
    opts = dataclasses.replace(opts, env=opts.env.absolute())
    env = opts.env
    if env.exists() or env.is_symlink():
        raise TargetEnvError(
            f"{env} already exists: use bnb-provision rebuild --env {env} "
            "(it builds beside it and swaps only after verify passes)"
        )
    machine = machine or detect_machine()
    system_env = inspect_env(str(opts.torch_system), []) if opts.torch_system else None
    lock = opts.lock
    if lock is not None and (lock.is_dir() or lock.name == MANIFEST_FILE):
        manifest = lock / MANIFEST_FILE if lock.is_dir() else lock
        lock = select_from_manifest(manifest, machine, db, opts.constraints)
        log(f"manifest: this machine uses {lock.name}")
    if lock is not None:
        lock = _requirements_from(lock).resolve()
    plan = _plan(machine, opts, db, system_env) if lock is None or opts.torch_system else None
    if plan is None:  # a given lock: plan only for the stamp, and from the lock's own pins
        plan = _plan_for_lock(machine, db, lock, opts)
    if opts.dry_run:
        return BuildResult(
            env=env,
            real=_store(env) / "(new)",
            plan=plan,
            report=None,
            stamp=None,
            action="would-create",
            reasons=(
                (
                    f"torch {plan.torch.version}+{plan.torch.variant}, "
                    f"bitsandbytes {plan.bitsandbytes.version}"
                ),
            ),
        )
    real, report, stamp = _make(
        machine, plan, dataclasses.replace(opts, lock=lock), db, log, system_env
    )
    _point(env, real)
    return BuildResult(env=env, real=real, plan=plan, report=report, stamp=stamp, action="created")


def _plan_for_lock(machine: Machine, db: CompatDB, lock: Path | None, opts: BuildOptions) -> Plan:
    pins = {}
    if lock is not None:
        for line in lock.read_text(encoding="utf-8").splitlines():
            name, sep, ver = line.strip().partition("==")
            if sep and name in ("torch", "bitsandbytes"):
                pins[name] = ver.split()[0].rstrip("\\").strip()
    torch_v = pins.get("torch")
    variant = torch_v.partition("+")[2] if torch_v else ""
    cons = dataclasses.replace(
        opts.constraints,
        torch=Version(torch_v).public if torch_v else None,
        bnb=pins.get("bitsandbytes"),
        cuda=(
            f"{variant[2:-1]}.{variant[-1]}"
            if variant.startswith("cu")
            else "cpu"
            if variant == "cpu"
            else opts.constraints.cuda
        ),
    )
    return plan_for(machine, db, cons)


def rebuild_env(
    opts: BuildOptions, db: CompatDB, *, machine: Machine | None = None, log: Log = lambda _m: None
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
    machine = machine or detect_machine()
    current = env.resolve()
    stamp = read_stamp(current)
    system_env = inspect_env(str(opts.torch_system), []) if opts.torch_system else None
    plan = (
        _plan(machine, opts, db, system_env)
        if opts.lock is None
        else _plan_for_lock(machine, db, _requirements_from(opts.lock), opts)
    )
    reasons = []
    installed = inspect_env(str(_python_in(current)), [], read_binaries=False)
    want_torch = f"{plan.torch.version}"
    if installed.torch is None or not installed.torch.version.startswith(want_torch):
        reasons.append(
            f"torch {installed.torch.version if installed.torch else 'missing'} -> "
            f"{plan.torch.version}+{plan.torch.variant}"
        )
    if installed.version_of("bitsandbytes") != str(plan.bitsandbytes.version):
        reasons.append(
            f"bitsandbytes {installed.version_of('bitsandbytes')} -> {plan.bitsandbytes.version}"
        )
    if opts.torch_system is None:
        for name, version in plan.packages:
            have = installed.version_of(name)
            if name not in ("torch", "bitsandbytes") and have != version:
                reasons.append(f"{name} {have or 'missing'} -> {version}")
    if (
        stamp is not None
        and machine.nvidia
        and stamp.driver
        and stamp.driver != machine.nvidia.driver
    ):
        reasons.append(f"driver {stamp.driver} -> {machine.nvidia.driver}")
    if not reasons and opts.verify:
        check = run_verify(str(_python_in(current)))
        if not check.ok:
            reasons.append("verify fails: " + "; ".join(check.failures()[:2]))
    if not reasons:
        return BuildResult(
            env=env, real=current, plan=plan, report=None, stamp=stamp, action="unchanged"
        )
    if opts.dry_run:
        return BuildResult(
            env=env,
            real=current,
            plan=plan,
            report=None,
            stamp=stamp,
            action="would-rebuild",
            reasons=tuple(reasons),
        )
    log("rebuilding: " + "; ".join(reasons))
    lock = _requirements_from(opts.lock).resolve() if opts.lock else None
    real, report, new_stamp = _make(
        machine, plan, dataclasses.replace(opts, lock=lock), db, log, system_env
    )
    _point(env, real)
    backups = _prune(env, opts.keep, real)
    return BuildResult(
        env=env,
        real=real,
        plan=plan,
        report=report,
        stamp=new_stamp,
        action="rebuilt",
        reasons=tuple(reasons),
        backups=backups,
    )


def describe(result: BuildResult) -> dict[str, Any]:
    p = result.plan
    return {
        "schema": "bnb-provision.env/1",
        "env": str(result.env),
        "real": str(result.real),
        "action": result.action,
        "reasons": list(result.reasons),
        "torch": f"{p.torch.version}+{p.torch.variant}" if p else None,
        "bitsandbytes": str(p.bitsandbytes.version) if p else None,
        "verify": result.report.data if result.report else None,
        "stamp": result.stamp.to_dict() if result.stamp else None,
        "backups": [str(b) for b in result.backups],
    }
