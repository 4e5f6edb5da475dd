"""A team's machines: a folder of snapshots (Pascal, Ampere, Hopper, Blackwell on Linux, a
Windows and a macOS machine, one without GPU) locked against real HTTP indexes on
127.0.0.1; init on each machine picks the lock meant for it; ``lock --check`` passes on the
fresh set and fails with a diff after a snapshot or a DB change.

The Hopper snapshot is a real one (``detect --json`` on an H100); the others are
hand-written partial snapshots in the documented schema, with GPU names and drivers from
the real ``nvidia-smi`` outputs under ``tests/fixtures``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.load import load_db, read_db_files
from bnb_provision.db.parse import parse_db
from bnb_provision.detect.snapshot import load_machine, machine_from_dict
from bnb_provision.env.build import BuildOptions, init_env
from bnb_provision.errors import NoPlanError
from bnb_provision.lock.check import check_lock_set
from bnb_provision.lock.lockset import LockOptions, LockRequest, LockSet, lock_request
from bnb_provision.lock.manifest import read_manifest
from bnb_provision.plan.constraints import Constraints, MachineFlags
from tests.support.index import make_wheel, serve_index

ROOT = Path(__file__).parent.parent
TEAM = Path(__file__).parent / "fixtures" / "team"
TAG = "cp312-cp312"
LINUX = f"{TAG}-manylinux_2_28_x86_64"
# each machine of the team and the lock group its plan puts it in
EXPECTED = {
    "pascal-tesla-p4": "bnb-linux-x86_64-py3_12-torch2_14_1-cu126-bnb0_50_2",
    "ampere-a100": "bnb-linux-x86_64-py3_12-torch2_14_1-cu126-bnb0_50_2",
    "ampere-rtx3090": "bnb-linux-x86_64-py3_12-torch2_14_1-cu126-bnb0_50_2",
    "hopper-h100": "bnb-linux-x86_64-py3_12-torch2_15_0-cu132-bnb0_50_2",
    "blackwell-rtx5090": "bnb-linux-x86_64-py3_12-torch2_11_0-cu128-bnb0_50_2",
    "windows-rtx4090": "bnb-windows-x86_64-py3_12-torch2_14_1-cu126-bnb0_50_2",
    "macos-m2": "bnb-macos-arm64-py3_12-torch2_15_0-cpu-bnb0_50_2",
    "linux-no-gpu": "bnb-linux-x86_64-py3_12-torch2_15_0-cpu-bnb0_50_2",
}


def _wheels(root: Path) -> tuple[list[Path], list[Path]]:
    """Stand-in wheels: (the PyPI index's, the PyTorch index's)."""
    pypi, pt = root / "pypi", root / "pt"
    pypi.mkdir()
    pt.mkdir()
    deps = ("filelock",)
    for version, tag in (
        ("2.14.1+cu126", LINUX),
        ("2.14.1+cu126", f"{TAG}-win_amd64"),
        ("2.11.0+cu128", LINUX),
        ("2.15.0+cpu", LINUX),
        ("2.7.1+cu118", LINUX),  # Pascal's torch once the DB no longer gives it cu126
    ):
        make_wheel(
            pt, "torch", version, {"torch/__init__.py": tag.encode()}, tag=tag, requires=deps
        )
    for version, tag in (
        ("2.11.0", LINUX),
        ("2.15.0", LINUX),  # PyPI's own CUDA 13.2 build: the newest safe torch on Hopper
        ("2.15.0", f"{TAG}-macosx_11_0_arm64"),
    ):
        make_wheel(pypi, "torch", version, {"torch/__init__.py": b""}, tag=tag, requires=deps)
    make_wheel(pypi, "filelock", "3.16.1", {"filelock/__init__.py": b""})
    make_wheel(
        pypi, "bitsandbytes", "0.50.2", {"bitsandbytes/__init__.py": b""}, requires=("torch",)
    )
    make_wheel(pypi, "transformers", "5.24.0", {"transformers/__init__.py": b""})
    make_wheel(pypi, "accelerate", "1.15.0", {"accelerate/__init__.py": b""})
    return sorted(pypi.iterdir()), sorted(pt.iterdir())


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    pypi, pt = _wheels(tmp_path_factory.mktemp("idx"))
    with serve_index(pypi) as (pypi_url, _), serve_index(pt) as (pt_url, _):
        yield f"{pypi_url}/simple", f"{pt_url}/simple"


def _request(snapshots: Path) -> LockRequest:
    return LockRequest(machine_files=(snapshots,), flags=MachineFlags(), constraints=Constraints())


def _options(out: Path, indexes: tuple[str, str], cache: Path, **kw: object) -> LockOptions:
    return LockOptions(
        output=out,
        default_index=indexes[0],
        torch_index_template=indexes[1],
        cache_dir=cache,
        regenerate="bnb-provision lock --machine snapshots -o locks",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory, indexes: tuple[str, str]
) -> tuple[Path, LockSet]:
    """The team's snapshots in ``snapshots/`` and their locks in ``locks/``."""
    root = tmp_path_factory.mktemp("team")
    shutil.copytree(TEAM, root / "snapshots")
    opts = _options(root / "locks", indexes, root / "uv-cache")
    return root, lock_request(_request(root / "snapshots"), opts)


def test_the_manifest_names_every_machine_and_every_architecture(
    team: tuple[Path, LockSet],
) -> None:
    root, result = team
    manifest = read_manifest(root / "locks" / "bnb-provision-locks.toml")
    by_machine = {m: c for c in manifest.classes for m in c.machines}
    assert {m: c.name for m, c in by_machine.items()} == EXPECTED
    shared = by_machine["ampere-a100"]
    # a shared class lists every architecture of the machines it serves, not the first's
    assert shared.gpu_archs == ("6.1", "8.0", "8.6") and shared.driver_floor == "525.60.13"
    assert by_machine["hopper-h100"].gpu_archs == ("9.0",)
    assert by_machine["blackwell-rtx5090"].gpu_archs == ("12.0",)
    assert (
        by_machine["linux-no-gpu"].variant == "cpu" and by_machine["linux-no-gpu"].gpu_archs == ()
    )
    assert len(result.results) == 6
    # the lock's own header and its PEP 751 tool table say the same
    req = (root / "locks" / shared.requirements).read_text()
    assert "# Needs: NVIDIA driver >= 525.60.13; GPU architectures 6.1 8.0 8.6\n" in req
    assert "# Regenerate: bnb-provision lock --machine snapshots -o locks\n" in req
    tool = toml_loads((root / "locks" / shared.pylock).read_text())["tool"]["bnb-provision"]
    assert tool["driver-floor"] == "525.60.13" and tool["gpu-archs"] == ["6.1", "8.0", "8.6"]
    assert tool["machines"] == ["ampere-a100", "ampere-rtx3090", "pascal-tesla-p4"]
    assert tool["db-version"] == load_db().version
    assert tool["regenerate"] == "bnb-provision lock --machine snapshots -o locks"


@pytest.mark.parametrize("machine", sorted(EXPECTED))
def test_init_on_each_machine_takes_the_lock_meant_for_it(
    team: tuple[Path, LockSet], machine: str, tmp_path: Path
) -> None:
    root, _ = team
    said: list[str] = []
    opts = BuildOptions(
        env=tmp_path / ".venv-bnb", constraints=Constraints(), lock=root / "locks", dry_run=True
    )
    snapshot = load_machine(root / "snapshots" / f"{machine}.json")
    res = init_env(opts, load_db(), machine=snapshot, log=said.append)
    assert res.action == "would-create"
    assert res.lock == (root / "locks" / f"{EXPECTED[machine]}.requirements.txt").resolve()
    (why,) = [s for s in said if s.startswith("manifest:")]
    assert f"takes {EXPECTED[machine]}: " in why
    assert res.summary is not None and res.summary.variant == EXPECTED[machine].split("-")[-2]


def _snapshot(gpu: str | None, driver: str | None) -> dict[str, object]:
    snap: dict[str, object] = {
        "os": {"system": "linux", "arch": "x86_64"},
        "python": {"version": "3.12"},
    }
    if gpu:
        snap |= {"nvidia": {"driver": driver}, "gpus": [{"name": gpu}]}
    return snap


def test_a_machine_no_class_fits_is_refused_with_the_nearest(
    team: tuple[Path, LockSet], tmp_path: Path
) -> None:
    root, _ = team
    turing = machine_from_dict(_snapshot("NVIDIA GeForce RTX 2080 Ti", "550.54.14"))
    opts = BuildOptions(env=tmp_path / "env", constraints=Constraints(), lock=root / "locks")
    with pytest.raises(NoPlanError) as info:
        init_env(opts, load_db(), machine=turing)
    text = str(info.value)
    assert "no lock class fits this machine (linux-x86_64, Python 3.12, driver 550.54.14" in text
    assert f"Nearest: {EXPECTED['ampere-a100']}" in text
    assert "this machine's 7.5 is not among them" in text
    assert not (tmp_path / "env").exists()


def test_a_gpu_less_machine_takes_a_cuda_lock_only_when_asked(
    team: tuple[Path, LockSet], tmp_path: Path
) -> None:
    """Only the CUDA classes of the team (the CPU ones removed from a copy of the set)."""
    root, _ = team
    cuda_only = tmp_path / "locks"
    shutil.copytree(root / "locks", cuda_only)
    manifest = cuda_only / "bnb-provision-locks.toml"
    data = manifest.read_text()
    head, *classes = data.split("[[class]]\n")
    kept = [c for c in classes if 'variant = "cpu"' not in c]
    manifest.write_text(head + "".join("[[class]]\n" + c for c in kept))
    bare = machine_from_dict(_snapshot(None, None))
    opts = BuildOptions(
        env=tmp_path / "env", constraints=Constraints(), lock=cuda_only, dry_run=True
    )
    with pytest.raises(NoPlanError, match=r"has no NVIDIA GPU; pass --cuda-without-gpu"):
        init_env(opts, load_db(), machine=bare)
    asked = BuildOptions(
        env=tmp_path / "env",
        constraints=Constraints(),
        lock=cuda_only,
        dry_run=True,
        cuda_without_gpu=True,
    )
    res = init_env(asked, load_db(), machine=bare)
    # the newest driver floor among the CUDA classes for Linux: Hopper's cu132 build
    assert res.lock is not None and res.lock.name == f"{EXPECTED['hopper-h100']}.requirements.txt"
    assert res.summary is not None and res.summary.variant == "cu132"


def test_lock_check_passes_on_fresh_locks_and_fails_after_a_snapshot_change(
    team: tuple[Path, LockSet], indexes: tuple[str, str], tmp_path: Path
) -> None:
    root, _ = team
    opts = _options(root / "locks", indexes, tmp_path / "uv-cache")
    fresh = check_lock_set(_request(root / "snapshots"), opts)
    assert fresh.ok, [d.diff or d.status for d in fresh.differences]
    assert len(fresh.files) == 13  # 6 pylocks, 6 requirements files, the manifest
    snaps = tmp_path / "snapshots"
    shutil.copytree(root / "snapshots", snaps)
    # the Blackwell box leaves the team; a new Ampere one (an A40) joins
    (snaps / "blackwell-rtx5090.json").unlink()
    (snaps / "ampere-a40.json").write_text(json.dumps(_snapshot("NVIDIA A40", "535.54.03")))
    before = {p.name: p.read_bytes() for p in (root / "locks").iterdir()}
    changed = check_lock_set(_request(snaps), opts)
    assert not changed.ok
    status = {d.name: d.status for d in changed.differences}
    cu126 = EXPECTED["ampere-a100"]
    assert status == {
        "bnb-provision-locks.toml": "changed",
        f"{cu126}.requirements.txt": "changed",
        f"pylock.{cu126}.toml": "changed",
        f"{EXPECTED['blackwell-rtx5090']}.requirements.txt": "stale",
        f"pylock.{EXPECTED['blackwell-rtx5090']}.toml": "stale",
    }
    diff = next(d.diff for d in changed.differences if d.name == "bnb-provision-locks.toml")
    assert '+machines = ["ampere-a100", "ampere-a40", "ampere-rtx3090", "pascal-tesla-p4"]' in diff
    assert f'-name = "{EXPECTED["blackwell-rtx5090"]}"' in diff
    # nothing of the committed set was written
    assert {p.name: p.read_bytes() for p in (root / "locks").iterdir()} == before


def test_lock_check_fails_after_a_db_change(
    team: tuple[Path, LockSet], indexes: tuple[str, str], tmp_path: Path
) -> None:
    """The DB learns that torch's cu126 builds hold no Pascal kernels (sm_60, which runs on
    sm_61, taken out of their [[build]] row): the Pascal box leaves the cu126 lock, and the
    check says so."""
    root, _ = team
    files = read_db_files(ROOT / "compat_db")
    builds = files["torch.toml"]["build"]
    edited = 0
    for row in builds:
        if row["variant"] == "cu126" and 60 in row.get("sass", []):
            row["sass"] = [a for a in row["sass"] if a not in (50, 60)]
            edited += 1
    assert edited
    db = parse_db(files)
    opts = _options(root / "locks", indexes, tmp_path / "uv-cache")
    report = check_lock_set(_request(root / "snapshots"), opts, db=db)
    assert not report.ok
    status = {d.name: d.status for d in report.differences}
    assert status["bnb-provision-locks.toml"] == "changed"
    assert status["bnb-linux-x86_64-py3_12-torch2_7_1-cu118-bnb0_50_2.requirements.txt"] == (
        "missing"
    )
    manifest = next(d for d in report.differences if d.name == "bnb-provision-locks.toml")
    assert '-machines = ["ampere-a100", "ampere-rtx3090", "pascal-tesla-p4"]' in manifest.diff
    assert '+machines = ["ampere-a100", "ampere-rtx3090"]' in manifest.diff


def test_the_ci_template_runs_lock_check(
    team: tuple[Path, LockSet],
    indexes: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command of templates/ci/github-actions-lock-check.yml, run in a repository laid
    out as it expects (snapshots/, locks/): exit 0 when the locks are fresh, exit 11 with
    the diff when a snapshot changed."""
    workflow = (ROOT / "templates" / "ci" / "github-actions-lock-check.yml").read_text()
    # the step's command, as YAML reads its plain scalar (no YAML parser is a dependency)
    (command,) = re.findall(r"^\s+run: (bnb-provision lock .*--check.*)$", workflow, re.MULTILINE)
    argv = shlex.split(command)
    assert argv[:2] == ["bnb-provision", "lock"]
    root, _ = team
    repo = tmp_path / "repo"
    shutil.copytree(root / "snapshots", repo / "snapshots")
    monkeypatch.chdir(repo)
    # the stand-in indexes; the locks written first by the same command without --check
    extra = ["--index-url", indexes[0], "--torch-index-url", indexes[1]]
    lock = [a for a in argv[1:] if a != "--check"] + extra
    check = [*argv[1:], *extra]
    monkeypatch.setattr(sys, "argv", ["bnb-provision", *lock])  # as a shell would set it
    written = CliRunner().invoke(cli, lock)
    assert written.exit_code == 0, written.output
    assert (
        "--index-url" in (repo / "locks" / f"{EXPECTED['macos-m2']}.requirements.txt").read_text()
    )
    monkeypatch.setattr(sys, "argv", ["bnb-provision", *check])
    ok = CliRunner().invoke(cli, check)
    assert ok.exit_code == 0, ok.output
    assert "locks: the 13 lock files are up to date" in ok.stdout
    hopper = repo / "snapshots" / "hopper-h100.json"
    snap = json.loads(hopper.read_text())
    snap["nvidia"]["driver"] = "570.133.07"  # an older driver: CUDA 13 no longer runs
    hopper.write_text(json.dumps(snap))
    failed = CliRunner().invoke(cli, check)
    assert failed.exit_code == 11, failed.output
    assert "locks/bnb-provision-locks.toml: differs from a fresh lock" in failed.stdout
    assert "--- committed/bnb-provision-locks.toml" in failed.stdout
    assert "differ from what the DB and the snapshots give now" in failed.stderr
