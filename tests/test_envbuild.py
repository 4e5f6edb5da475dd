"""init and rebuild: real environments created with uv from a local wheelhouse of valid wheels."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnb_provision.db.load import load_db
from bnb_provision.detect.host import OSInfo, PythonInfo
from bnb_provision.detect.machine import Machine
from bnb_provision.env.build import BuildOptions, init_env, rebuild_env
from bnb_provision.env.stamp import read_stamp
from bnb_provision.errors import FindingsError, LockfileError, TargetEnvError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.vocab import Profile
from tests.support.index import make_wheel

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}-cp{sys.version_info[0]}{sys.version_info[1]}"
ROOT = Path(__file__).parent.parent
CPU = Machine(
    os=OSInfo(system="linux", arch="x86_64", libc="glibc 2.36"),
    python=PythonInfo(version=PY),
    nvidia=None,
    gpus=(),
)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid stand-in wheels for exactly what the plans of these tests pin, on this Python."""
    from bnb_provision.plan.inputs import plan_for

    d = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(
        d,
        "torch",
        "2.13.0+cpu",
        {
            "torch/__init__.py": b"__version__ = '2.13.0+cpu'\n",
            "torch/version.py": b"__version__ = '2.13.0+cpu'\ncuda = None\n",
        },
        tag=f"{TAG}-manylinux_2_28_x86_64",
    )
    made: set[tuple[str, str]] = set()
    for bnb in ("0.50", "0.48"):
        plan = plan_for(CPU, load_db(), Constraints(torch="2.13.0", python=PY, cuda="cpu", bnb=bnb))
        for name, version in plan.packages:
            if (name, version) in made or name == "torch":
                continue
            made.add((name, version))
            module = name.replace("-", "_")
            make_wheel(
                d,
                name,
                version,
                {f"{module}/__init__.py": f"__version__ = '{version}'\n".encode()},
                requires=("torch>=2.0",) if name in ("bitsandbytes", "accelerate") else (),
            )
    return d


def _opts(
    tmp: Path,
    house: Path,
    *,
    bnb: str | None = None,
    dry_run: bool = False,
    keep: int = 2,
    verify: bool = False,
) -> BuildOptions:
    cons = Constraints(torch="2.13.0", python=PY, cuda="cpu", bnb=bnb)
    return BuildOptions(
        env=tmp / ".venv-bnb",
        constraints=cons,
        offline=True,
        find_links=(house,),
        verify=verify,
        dry_run=dry_run,
        keep=keep,
    )


def _import_version(env: Path) -> str:
    done = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            "import bitsandbytes, torch; print(bitsandbytes.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_init_creates_a_linked_stamped_environment(tmp_path: Path, wheelhouse: Path) -> None:
    res = init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    assert res.action == "created" and env.is_symlink()
    assert env.resolve() == res.real and res.real.parent.name == ".venv-bnb.d"
    assert _import_version(env) == "0.50.2"
    stamp = read_stamp(env)
    assert stamp is not None and stamp.torch == "2.13.0+cpu" and stamp.bitsandbytes == "0.50.2"
    assert stamp.lock_sha256 is not None and stamp.verified is False
    with pytest.raises(TargetEnvError, match="already exists: use bnb-provision rebuild"):
        init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)


def test_rebuild_swaps_and_keeps_a_backup(tmp_path: Path, wheelhouse: Path) -> None:
    init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    first = env.resolve()
    same = rebuild_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    assert same.action == "unchanged" and env.resolve() == first
    dry = rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.48", dry_run=True), load_db(), machine=CPU)
    assert dry.action == "would-rebuild" and dry.reasons == ("bitsandbytes 0.50.2 -> 0.48.2",)
    assert env.resolve() == first
    res = rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.48"), load_db(), machine=CPU)
    assert res.action == "rebuilt" and env.resolve() == res.real != first
    assert _import_version(env) == "0.48.2"
    assert res.backups == (first,) and _import_version(first) == "0.50.2"
    # the --bnb 0.48 pin stays (the stamp records it) until a rebuild pins another
    assert rebuild_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU).action == "unchanged"
    pruned = rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.50", keep=0), load_db(), machine=CPU)
    assert pruned.action == "rebuilt" and not first.exists() and not res.real.exists()


def test_a_new_environment_that_fails_verify_is_never_swapped_in(
    tmp_path: Path, wheelhouse: Path
) -> None:
    init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    before = env.resolve()
    # the wheelhouse's torch is a stand-in without kernels: verify of the new env fails
    failing = _opts(tmp_path, wheelhouse, bnb="0.48", verify=True, keep=1)
    with pytest.raises(FindingsError, match=r"\.failed \(left there; the usual path is unchanged"):
        rebuild_env(failing, load_db(), machine=CPU)
    assert env.resolve() == before and _import_version(env) == "0.50.2"
    # failed builds are kept for inspection, at most --keep of them, and never as backups
    with pytest.raises(FindingsError):
        rebuild_env(failing, load_db(), machine=CPU)
    store = tmp_path / ".venv-bnb.d"
    failed = [p for p in store.iterdir() if p.name.endswith(".failed")]
    assert len(failed) == 1 and read_stamp(failed[0]) is not None
    res = rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.48", keep=1), load_db(), machine=CPU)
    assert res.backups == (before,)


def test_init_removes_what_a_killed_build_left(tmp_path: Path, wheelhouse: Path) -> None:
    store = tmp_path / ".venv-bnb.d"
    (store / "20250101T000000000000Z.partial" / "bin").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (store / "20250101T000000000000Z.partial.pid").write_text(f"{dead.pid}\n")
    res = init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    assert sorted(p.name for p in store.iterdir()) == [res.real.name]


def test_rebuild_refuses_a_plain_folder(tmp_path: Path, wheelhouse: Path) -> None:
    (tmp_path / ".venv-bnb" / "bin").mkdir(parents=True)
    with pytest.raises(TargetEnvError, match="plain folder"):
        rebuild_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)


def test_sigkill_during_rebuild_leaves_a_working_environment(
    tmp_path: Path, wheelhouse: Path
) -> None:
    init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    cmd = [
        sys.executable,
        "-m",
        "bnb_provision",
        "rebuild",
        "--env",
        str(env),
        "--torch",
        "2.13.0",
        "--python",
        PY,
        "--cuda",
        "cpu",
        "--offline",
        "--find-links",
        str(wheelhouse),
        "--no-verify",
    ]
    versions = ["0.48", "0.50"]
    seen_partial = False
    for i, delay in enumerate((0.05, 0.3, 0.6, 0.9, 1.2, 1.6, 2.5)):
        bnb = versions[i % 2]
        proc = subprocess.Popen(
            [*cmd, "--bnb", bnb],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            seen_partial |= any(
                p.name.endswith(".partial") for p in (tmp_path / ".venv-bnb.d").iterdir()
            )
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # whatever moment it died at, the usual path is a complete, importable environment
        assert env.is_symlink() and not env.resolve().name.endswith(".partial")
        assert _import_version(env) in ("0.50.2", "0.48.2")
        assert read_stamp(env) is not None
    assert seen_partial  # at least one kill landed mid-build
    # the next rebuild that completes removes what the killed ones left behind
    res = rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.48"), load_db(), machine=CPU)
    res = (
        res
        if res.action == "rebuilt"
        else rebuild_env(_opts(tmp_path, wheelhouse, bnb="0.50"), load_db(), machine=CPU)
    )
    assert res.action == "rebuilt"
    left = [p.name for p in (tmp_path / ".venv-bnb.d").iterdir() if ".partial" in p.name]
    assert left == []


def test_init_from_a_manifest_picks_this_machines_lock(tmp_path: Path, wheelhouse: Path) -> None:
    from bnb_provision.lock.lockset import LockOptions, lock_machines

    lock_machines(
        [CPU],
        load_db(),
        Constraints(torch="2.13.0", python=PY, cuda="cpu"),
        LockOptions(output=tmp_path / "locks", offline=True, find_links=(wheelhouse,)),
    )
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb",
        constraints=Constraints(),
        lock=tmp_path / "locks",
        offline=True,
        find_links=(wheelhouse,),
        verify=False,
    )
    res = init_env(opts, load_db(), machine=CPU)
    assert res.action == "created" and _import_version(tmp_path / ".venv-bnb") == "0.50.2"


def test_rebuild_after_a_changed_snapshot_swaps(tmp_path: Path, wheelhouse: Path) -> None:
    """The machine changed under the environment (a GPU and its driver appeared): the stamp
    no longer matches, so rebuild builds beside, swaps, and keeps the old one."""
    from bnb_provision.detect.snapshot import machine_from_dict

    init_env(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    before = env.resolve()
    changed = machine_from_dict(
        {
            "os": {"system": "linux", "arch": "x86_64", "libc": "glibc 2.36"},
            "python": {"version": PY},
            "nvidia": {"driver": "580.95.05"},
            "gpus": [{"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}],
        }
    )
    dry = rebuild_env(_opts(tmp_path, wheelhouse, dry_run=True), load_db(), machine=changed)
    assert dry.action == "would-rebuild" and env.resolve() == before
    assert dry.reasons == (
        "driver none -> 580.95.05",
        "GPUs none -> NVIDIA A100-SXM4-80GB (8.0)",
    )
    res = rebuild_env(_opts(tmp_path, wheelhouse), load_db(), machine=changed)
    assert res.action == "rebuilt" and env.resolve() == res.real != before
    assert res.backups == (before,) and _import_version(before) == "0.50.2"
    stamp = read_stamp(env)
    assert stamp is not None and stamp.driver == "580.95.05"
    assert stamp.gpus == (("NVIDIA A100-SXM4-80GB", "8.0"),)
    assert rebuild_env(_opts(tmp_path, wheelhouse), load_db(), machine=changed).action == (
        "unchanged"
    )


def test_a_lock_that_cannot_run_here_is_refused_and_nothing_is_left(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """A CUDA 13.0 lock on a machine whose driver is too old: uv is started at once and
    cancelled when the plan rejects the lock; the half-built environment is removed."""
    from bnb_provision.detect.snapshot import machine_from_dict
    from bnb_provision.errors import NoPlanError

    old_driver = machine_from_dict(
        {
            "os": {"system": "linux", "arch": "x86_64", "libc": "glibc 2.36"},
            "python": {"version": PY},
            "nvidia": {"driver": "470.82.01"},
            "gpus": [{"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}],
        }
    )
    lock = tmp_path / "cu130.requirements.txt"
    lock.write_text(
        f"# Plan: torch 2.13.0+cu130, bitsandbytes 0.50.2, Python {PY}, linux-x86_64\n"
        "torch==2.13.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    )
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb",
        constraints=Constraints(cuda="13.0"),
        lock=lock,
        offline=True,
        find_links=(wheelhouse,),
        verify=False,
    )
    with pytest.raises(NoPlanError, match="the lock does not run on this machine"):
        init_env(opts, load_db(), machine=old_driver)
    assert not (tmp_path / ".venv-bnb").exists() and not (tmp_path / ".venv-bnb.d").exists()


def _pip_wheelhouse(house: Path, pins: list[str]) -> None:
    """Download real wheels with pip as this machine configures it (its index, mirrors and
    find-links: nothing here names where any machine keeps wheels). Unreachable sources fail
    fast; when pip cannot get the wheels at all the test is skipped, naming pip's reason."""
    env = dict(os.environ, PIP_RETRIES="0", PIP_TIMEOUT="20", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary",
            ":all:",
            "-d",
            str(house),
            *pins,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"pip could not fetch real wheels for {' '.join(pins)}: {done.stderr.strip()[-600:]}"
        )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bnb_provision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=1800,
        check=False,
    )


@pytest.mark.slow
def test_cpu_end_to_end_with_real_wheels(tmp_path: Path) -> None:
    """Offline, from real wheels: torch's CPU build, bitsandbytes, transformers, accelerate,
    peft, trl and their dependencies in a wheelhouse. lock -> init (from the lock folder's
    manifest) -> verify on the CPU backend -> stamp; rebuild after the plan changed swaps
    atomically and keeps the old environment."""
    from bnb_provision.plan.inputs import plan_for

    house = tmp_path / "wheelhouse"
    pinned = Constraints(torch="2.13.0", python=PY, cuda="cpu", profile="qlora")
    plan = plan_for(CPU, load_db(), pinned)
    _pip_wheelhouse(
        house,
        [f"{n}=={v}+cpu" if n == "torch" else f"{n}=={v}" for n, v in plan.packages],
    )
    snapshot = tmp_path / "cpu.json"
    snapshot.write_text(json.dumps(CPU.to_dict()), encoding="utf-8")
    offline = ("--offline", "--find-links", str(house))
    pins = ("--torch", "2.13.0", "--cuda", "cpu", "--python", PY)
    lock = _cli("lock", "--machine", str(snapshot), *pins, *offline, "-o", "locks", cwd=tmp_path)
    assert lock.returncode == 0, lock.stderr
    env = tmp_path / ".venv-bnb"
    init = _cli("init", "--lock", "locks", *offline, "--env", str(env), "--json", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    report = json.loads(init.stdout)
    assert report["schema"] == "bnb-provision.env/1" and report["action"] == "created"
    assert report["verify"]["ok"] is True
    assert report["torch"] == "2.13.0+cpu" and report["bitsandbytes"] == "0.50.2"
    verify = _cli("verify", "--env", str(env), "--json", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    data = json.loads(verify.stdout)
    assert data["ok"] is True and data["import"]["library"] == "libbitsandbytes_cpu.so"
    assert [d["device"] for d in data["devices"]] == ["cpu"]
    assert all(c["ok"] for c in data["devices"][0]["checks"])
    stamp = read_stamp(env)
    assert stamp is not None and stamp.verified and stamp.bitsandbytes == "0.50.2"
    assert stamp.torch == "2.13.0+cpu" and stamp.lock_sha256 is not None
    old = env.resolve()

    def opts(profile: Profile) -> BuildOptions:
        return BuildOptions(
            env=env,
            offline=True,
            find_links=(house,),
            constraints=Constraints(torch="2.13.0", python=PY, cuda="cpu", profile=profile),
        )

    # the plan changed (the qlora profile adds peft and trl): built beside, verified, swapped
    res = rebuild_env(opts("qlora"), load_db(), machine=CPU)
    assert res.action == "rebuilt" and res.report is not None and res.report.ok
    assert any(r.startswith("peft missing") for r in res.reasons)
    assert env.resolve() == res.real and res.backups == (old,)
    assert _import_version(old) == "0.50.2"  # the old one is kept whole, as the backup
    assert rebuild_env(opts("qlora"), load_db(), machine=CPU).action == "unchanged"


def test_torch_system_adopts_the_installed_torch(tmp_path: Path, wheelhouse: Path) -> None:
    """--torch system: the new environment sees the system's torch through a .pth file and
    gets only what the system lacks; its own site-packages holds no torch."""
    from bnb_provision.core.uv import find_uv
    from bnb_provision.env.adopt import SYSTEM_PTH

    system = tmp_path / "system"
    subprocess.run([find_uv(), "venv", "-q", "--python", sys.executable, str(system)], check=True)
    system_python = system / "bin" / "python"
    subprocess.run(
        [find_uv(), "pip", "install", "-q", "--python", str(system_python), "--offline",
         "--no-index", "--find-links", str(wheelhouse), "torch==2.13.0+cpu"],
        check=True,
    )  # fmt: skip
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb",
        constraints=Constraints(python=PY),
        torch_system=system_python,
        offline=True,
        find_links=(wheelhouse,),
        verify=False,
    )
    res = init_env(opts, load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    assert res.action == "created" and _import_version(env) == "0.50.2"
    assert res.summary is not None and res.summary.torch == "2.13.0"
    own = list(env.resolve().glob("lib/python*/site-packages"))
    assert len(own) == 1 and (own[0] / SYSTEM_PTH).is_file()
    assert not (own[0] / "torch").exists() and (own[0] / "bitsandbytes").is_dir()
    stamp = read_stamp(env)
    assert stamp is not None and stamp.torch == "2.13.0+cpu" and stamp.lock_sha256 is None
    assert rebuild_env(opts, load_db(), machine=CPU).action == "unchanged"


def test_a_system_package_stays_only_where_the_db_floors_allow() -> None:
    """The floors come from the DB: transformers 5 needs bitsandbytes >= 0.46.1 and
    accelerate >= 1.1.0; a system transformers 4.x needs accelerate >= 0.26.0."""
    import dataclasses

    from bnb_provision.env.adopt import satisfies_floors
    from bnb_provision.plan.inputs import plan_for

    db = load_db()
    plan = plan_for(CPU, db, Constraints(torch="2.13.0", python=PY, cuda="cpu"))
    assert satisfies_floors(db, plan, "transformers", "5.0.0")
    old_bnb = dataclasses.replace(
        plan, packages=tuple((n, "0.45.5" if n == "bitsandbytes" else v) for n, v in plan.packages)
    )
    assert not satisfies_floors(db, old_bnb, "transformers", "5.0.0")
    assert satisfies_floors(db, old_bnb, "transformers", "4.57.0")
    assert not satisfies_floors(db, plan, "accelerate", "0.20.0")  # below every floor


def test_env_paths_that_cannot_hold_an_environment(tmp_path: Path, wheelhouse: Path) -> None:
    """A file at --env, or a place nothing can be written: the project's errors, no OSError."""
    from bnb_provision.errors import LockfileError

    (tmp_path / ".venv-bnb").write_text("not an environment")
    for make in (init_env, rebuild_env):
        with pytest.raises(TargetEnvError, match="is a file, not an environment"):
            make(_opts(tmp_path, wheelhouse), load_db(), machine=CPU)
    unwritable = BuildOptions(
        env=Path("/proc/bnb-provision-test/.venv-bnb"),
        constraints=Constraints(torch="2.13.0", python=PY, cuda="cpu"),
        offline=True,
        find_links=(wheelhouse,),
        verify=False,
    )
    with pytest.raises(LockfileError, match="cannot write the environment there") as info:
        init_env(unwritable, load_db(), machine=CPU)
    assert info.value.exit_code == 8


def test_an_environment_whose_verify_cannot_run_is_set_aside(
    tmp_path: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not verified, not a backup: a verify that crashes leaves the build as .failed."""
    import bnb_provision.env.verify

    def crash(python: str) -> None:
        raise TargetEnvError(f"verify: {python} crashed before reporting (exit -11)")

    monkeypatch.setattr(bnb_provision.env.verify, "run_verify", crash)
    with pytest.raises(TargetEnvError, match="crashed before reporting"):
        init_env(_opts(tmp_path, wheelhouse, verify=True), load_db(), machine=CPU)
    (left,) = (tmp_path / ".venv-bnb.d").iterdir()
    assert left.name.endswith(".failed") and not (tmp_path / ".venv-bnb").is_symlink()


@pytest.fixture(scope="module")
def newer_torch(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A second folder with torch 2.15.0+cpu and what its plan adds: a plan without a torch
    pin takes it, offline as online."""
    from bnb_provision.plan.inputs import plan_for

    d = tmp_path_factory.mktemp("newer")
    version = "2.15.0+cpu"
    make_wheel(
        d,
        "torch",
        version,
        {
            "torch/__init__.py": f"__version__ = '{version}'\n".encode(),
            "torch/version.py": f"__version__ = '{version}'\ncuda = None\n".encode(),
        },
        tag=f"{TAG}-manylinux_2_28_x86_64",
    )
    plan = plan_for(CPU, load_db(), Constraints(torch="2.15.0", python=PY, cuda="cpu"))
    held = {p.name for p in wheelhouse.iterdir()}
    for name, v in plan.packages:
        module = name.replace("-", "_")
        if name != "torch" and not any(h.startswith(f"{module}-{v}-") for h in held):
            make_wheel(d, name, v, {f"{module}/__init__.py": f"__version__ = '{v}'\n".encode()})
    return d


def _torch_of(env: Path) -> str | None:
    stamp = read_stamp(env)
    return stamp.torch if stamp else None


def test_rebuild_keeps_the_torch_pin_init_was_given(
    tmp_path: Path, wheelhouse: Path, newer_torch: Path
) -> None:
    """init --torch 2.13 with torch 2.15 in the wheelhouse too: a plain rebuild keeps 2.13
    (the stamp records the request), a rebuild given --torch 2.15 moves."""
    house = (wheelhouse, newer_torch)

    def opts(cons: Constraints, **kw: object) -> BuildOptions:
        return BuildOptions(
            env=tmp_path / ".venv-bnb",
            constraints=cons,
            offline=True,
            find_links=house,
            verify=False,
            **kw,  # type: ignore[arg-type]
        )

    # offline, the plan takes the newest torch the wheelhouse holds
    fresh = init_env(opts(Constraints(cuda="cpu"), dry_run=True), load_db(), machine=CPU)
    assert fresh.summary is not None and fresh.summary.torch == "2.15.0"
    init_env(opts(Constraints(torch="2.13", cuda="cpu")), load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    stamp = read_stamp(env)
    assert stamp is not None and stamp.request is not None
    assert stamp.request.constraints.torch == "2.13" and stamp.request.lock is None
    said: list[str] = []
    same = rebuild_env(opts(Constraints()), load_db(), machine=CPU, log=said.append)
    assert same.action == "unchanged" and _torch_of(env) == "2.13.0+cpu"
    assert "as init was asked: --torch 2.13 --cuda cpu --stack bnb" in said
    moved = rebuild_env(opts(Constraints(torch="2.15")), load_db(), machine=CPU)
    assert moved.action == "rebuilt" and moved.reasons[0] == "torch 2.13.0+cpu -> 2.15.0+cpu"
    assert _torch_of(env) == "2.15.0+cpu"


def test_rebuild_of_an_environment_made_from_the_team_lock_uses_that_lock(
    tmp_path: Path, wheelhouse: Path, newer_torch: Path
) -> None:
    """init --lock locks/: a plain rebuild rebuilds from the same lock folder (not a fresh
    plan, which would take torch 2.15), and says when the lock changed since."""
    from bnb_provision.lock.lockset import LockOptions, lock_machines

    house = (wheelhouse, newer_torch)
    locks = tmp_path / "locks"

    def lock(bnb: str, regenerate: str = "bnb-provision lock") -> None:
        lock_machines(
            [CPU],
            load_db(),
            Constraints(torch="2.13.0", python=PY, cuda="cpu", bnb=bnb),
            LockOptions(
                output=locks, offline=True, find_links=house, force=True, regenerate=regenerate
            ),
        )

    lock("0.50")
    (req,) = locks.glob("*.requirements.txt")
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb",
        constraints=Constraints(),
        lock=locks,
        offline=True,
        find_links=house,
        verify=False,
    )
    init_env(opts, load_db(), machine=CPU)
    env = tmp_path / ".venv-bnb"
    stamp = read_stamp(env)
    assert stamp is not None and stamp.request is not None
    assert stamp.request.lock == str(locks) and stamp.request.lock_file == str(req.resolve())
    plain = dataclasses.replace(opts, lock=None)
    same = rebuild_env(plain, load_db(), machine=CPU)
    assert same.action == "unchanged" and same.lock == req.resolve()
    assert _torch_of(env) == "2.13.0+cpu"
    # the team re-locks with another bitsandbytes: rebuild follows the lock, and says why
    lock("0.48")
    (relocked,) = locks.glob("*.requirements.txt")  # the 0.50 one retired as a .bak
    assert relocked.name.endswith("-bnb0_48_2.requirements.txt")
    assert list(locks.glob(f"{req.name}.*.bak"))
    res = rebuild_env(plain, load_db(), machine=CPU)
    assert res.action == "rebuilt" and res.lock == relocked.resolve()
    assert res.reasons[0].startswith("the lock picked is now " + relocked.name)
    assert "bitsandbytes 0.50.2 -> 0.48.2" in res.reasons
    assert _import_version(env) == "0.48.2" and _torch_of(env) == "2.13.0+cpu"
    # the same lock file written again with other contents (here only its header): said
    lock("0.48", regenerate="make locks")
    again = rebuild_env(plain, load_db(), machine=CPU)
    assert again.action == "rebuilt" and again.reasons[0].startswith(
        f"the lock changed since this environment was built: {relocked.name} (sha256 "
    )
    assert rebuild_env(plain, load_db(), machine=CPU).action == "unchanged"
    # a file edited behind the manifest's back is refused, as by init
    relocked.write_text(relocked.read_text() + "# an edit\n")
    with pytest.raises(LockfileError, match="not the file its manifest recorded"):
        rebuild_env(plain, load_db(), machine=CPU)


def test_a_cuda_lock_file_on_a_machine_without_gpu_is_refused_unless_asked(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """Issue 16: a GPU-less machine never installs a CUDA lock by mistake (gigabytes of CUDA
    libraries, then torch on the CPU); --cuda-without-gpu plans for the machines the lock's
    header names instead."""
    from bnb_provision.errors import NoPlanError

    lock = tmp_path / "cu126.requirements.txt"
    lock.write_text(
        f"# Plan: torch 2.13.0+cu126, bitsandbytes 0.50.2, Python {PY}, linux-x86_64\n"
        "# Needs: NVIDIA driver >= 525.60.13; GPU architectures 8.0\n"
        "torch==2.13.0+cu126 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    )
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb",
        constraints=Constraints(),
        lock=lock,
        offline=True,
        find_links=(wheelhouse,),
        verify=False,
    )
    with pytest.raises(NoPlanError, match=r"this machine has no NVIDIA GPU: it would install"):
        init_env(opts, load_db(), machine=CPU)
    assert not (tmp_path / ".venv-bnb").exists() and not (tmp_path / ".venv-bnb.d").exists()
    asked = dataclasses.replace(opts, dry_run=True, cuda_without_gpu=True)
    res = init_env(asked, load_db(), machine=CPU)
    assert res.summary is not None and (res.summary.torch, res.summary.variant) == (
        "2.13.0",
        "cu126",
    )
