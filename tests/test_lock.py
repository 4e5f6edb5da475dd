"""lock against real HTTP indexes on 127.0.0.1 (a PyPI stand-in and a PyTorch-index stand-in)
serving valid wheel files, and (network) against real PyPI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.pylock import Pylock

from bnb_provision.cli import cli
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.core.uv import find_uv
from bnb_provision.db.load import load_db
from bnb_provision.detect.snapshot import machine_from_dict
from bnb_provision.errors import ExternalToolError, LockfileError, NoPlanError
from bnb_provision.lock.bundle import bundle_lock
from bnb_provision.lock.lockset import LockOptions, lock_machines
from bnb_provision.lock.writers import write_files
from bnb_provision.plan.constraints import Constraints
from tests.support.index import make_wheel, serve_index

# the machines' Python (locks target it; no interpreter of it is needed)
PY = "3.12"
TAG = "cp312-cp312"
HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _snapshot(
    system: str, gpu: str | None, driver: str | None, arch: str = "x86_64"
) -> dict[str, Any]:
    snap: dict[str, Any] = {"os": {"system": system, "arch": arch}, "python": {"version": PY}}
    if gpu:
        snap["nvidia"] = {"driver": driver}
        snap["gpus"] = [{"name": gpu}]
    return snap


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[str]]]:
    """(pypi url, pytorch url, requests seen by the pytorch index)."""
    root = tmp_path_factory.mktemp("idx")
    pypi, pt = root / "pypi", root / "pt"
    pypi.mkdir()
    pt.mkdir()
    deps = ("filelock",)
    # the PyTorch index: local-version CUDA builds, plus a decoy filelock that must not be used
    make_wheel(
        pt,
        "torch",
        "2.14.1+cu126",
        {"torch/__init__.py": b"cu126"},
        tag=f"{TAG}-manylinux_2_28_x86_64",
        requires=deps,
    )
    make_wheel(
        pt,
        "torch",
        "2.14.1+cu126",
        {"torch/__init__.py": b"cu126 win"},
        tag=f"{TAG}-win_amd64",
        requires=deps,
    )
    make_wheel(
        pt,
        "torch",
        "2.11.0+cu128",
        {"torch/__init__.py": b"cu128"},
        tag=f"{TAG}-manylinux_2_28_x86_64",
        requires=deps,
    )
    make_wheel(pt, "filelock", "99.0.0", {"filelock/__init__.py": b"decoy"})
    make_wheel(  # a companion built for the index's torch, as download.pytorch.org has them
        pt,
        "torchvision",
        "0.29.2+cu126",
        {"torchvision/__init__.py": b"cu126"},
        tag="py3-none-manylinux_2_28_x86_64",
        requires=("torch>=2.14.0",),
    )
    # the PyPI stand-in: PyPI's own builds, decoys of the index builds, and everything else
    make_wheel(
        pypi,
        "torch",
        "2.15.0",
        {"torch/__init__.py": b"pypi"},
        tag=f"{TAG}-manylinux_2_28_x86_64",
        requires=deps,
    )
    make_wheel(
        pypi,
        "torch",
        "2.15.0",
        {"torch/__init__.py": b"mac"},
        tag=f"{TAG}-macosx_11_0_arm64",
        requires=deps,
    )
    make_wheel(
        pypi,
        "torch",
        "2.14.1",
        {"torch/__init__.py": b"decoy"},
        tag=f"{TAG}-manylinux_2_28_x86_64",
        requires=deps,
    )
    make_wheel(pypi, "filelock", "3.16.1", {"filelock/__init__.py": b""})
    make_wheel(  # PyPI's torchvision: a decoy for a plan whose torch is an index build
        pypi,
        "torchvision",
        "0.29.2",
        {"torchvision/__init__.py": b"pypi"},
        tag="py3-none-manylinux_2_28_x86_64",
        requires=("torch>=2.14.0",),
    )
    make_wheel(
        pypi,
        "bitsandbytes",
        "0.50.2",
        {"bitsandbytes/__init__.py": b""},
        requires=("torch<3,>=2.4",),
    )
    make_wheel(pypi, "transformers", "5.24.0", {"transformers/__init__.py": b""})
    make_wheel(
        pypi, "accelerate", "1.15.0", {"accelerate/__init__.py": b""}, requires=("torch>=2.0.0",)
    )
    wheels = [*pypi.iterdir(), *pt.iterdir()]
    with (
        serve_index([w for w in wheels if w.parent == pypi]) as (pypi_url, _),
        serve_index([w for w in wheels if w.parent == pt]) as (pt_url, seen),
    ):
        yield f"{pypi_url}/simple", f"{pt_url}/simple", seen


def _opts(tmp: Path, indexes: tuple[str, str, list[str]], *, force: bool = False) -> LockOptions:
    return LockOptions(
        output=tmp / "locks",
        default_index=indexes[0],
        torch_index_template=indexes[1],
        cache_dir=tmp / "uv-cache",
        force=force,
    )


def test_torch_comes_from_the_pytorch_index_and_nothing_else(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    pascal = machine_from_dict(_snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"))
    result = lock_machines([pascal], load_db(), Constraints(), _opts(tmp_path, indexes))
    (r,) = result.results
    lock = toml_loads(r.pylock.read_text())
    Pylock.from_dict(lock)  # PEP 751 validation
    by_name = {p["name"]: p for p in lock["packages"]}
    assert by_name["torch"]["version"] == "2.14.1+cu126"
    pt_host = indexes[1].rsplit("/simple", 1)[0]
    assert by_name["torch"]["wheels"][0]["url"].startswith(pt_host)
    for name, pkg in by_name.items():
        if name != "torch":
            assert not pkg["wheels"][0]["url"].startswith(pt_host), name
    assert by_name["filelock"]["version"] == "3.16.1"  # not the index's decoy
    req = r.requirements.read_text()
    assert f"--index-url {indexes[0]}" in req and f"--find-links {indexes[1]}/torch/" in req
    assert "--extra-index-url" not in req
    assert "torch==2.14.1+cu126 \\\n    --hash=sha256:" in req
    assert lock["tool"]["bnb-provision"]["machines"] == ["machine0-linux-sm_61"]


def _uv_dry_run(env: Path, cache: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_uv(), "pip", "install", "--dry-run", "--python", str(env / "bin" / "python"),
         "--cache-dir", str(cache), "-r", str(lock)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_lock_installs_with_pip_dry_run(tmp_path: Path) -> None:
    """A lock for this interpreter's Python installs with uv's pip interface (dry run), both
    its requirements.txt and its pylock.<name>.toml (PEP 751: no dots in <name>)."""
    from bnb_provision.plan.inputs import plan_for

    snap = _snapshot("linux", "NVIDIA A100", "580.95.05")
    snap["python"] = {"version": HERE}
    ampere = machine_from_dict(snap)
    plan = plan_for(ampere, load_db(), Constraints())
    house = tmp_path / "pypi"
    house.mkdir()
    tag = f"cp{HERE.replace('.', '')}-cp{HERE.replace('.', '')}-manylinux_2_28_x86_64"
    for name, version in plan.packages:
        make_wheel(
            house,
            name,
            version,
            {f"{name}/__init__.py": b""},
            tag=tag if name == "torch" else "py3-none-any",
        )
    with serve_index(list(house.iterdir())) as (url, _):
        opts = LockOptions(
            output=tmp_path / "locks", default_index=f"{url}/simple", cache_dir=tmp_path / "c"
        )
        (result,) = lock_machines([ampere], load_db(), Constraints(), opts).results
        env = tmp_path / "venv"
        venv.EnvBuilder(with_pip=False).create(env)
        by_requirements = _uv_dry_run(env, tmp_path / "c", result.requirements)
        by_pylock = _uv_dry_run(env, tmp_path / "c2", result.pylock)
        # the same lock under a dotted name, as locks were named before: uv refuses it
        dotted = result.pylock.with_name("pylock.bnb-py3.11.toml")
        dotted.write_bytes(result.pylock.read_bytes())
        refused = _uv_dry_run(env, tmp_path / "c2", dotted)
    assert "." not in result.spec.name and result.pylock.name == f"pylock.{result.spec.name}.toml"
    for done in (by_requirements, by_pylock):
        assert done.returncode == 0, done.stderr
        assert f"torch=={plan.torch.version}" in done.stderr
    assert refused.returncode != 0 and "not a valid PEP 751 filename" in refused.stderr


def test_five_snapshots_windows_and_macos_with_a_manifest(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    for name, snap in {
        "pascal.json": _snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"),
        "pascal-2.json": _snapshot("linux", "NVIDIA TITAN Xp", "550.120"),
        "ampere.json": _snapshot("linux", "NVIDIA A100-SXM4-80GB", "580.95.05"),
        "blackwell.json": _snapshot("linux", "NVIDIA GeForce RTX 5090", "570.133.07"),
        "windows-4090.json": _snapshot("windows", "NVIDIA GeForce RTX 4090", "572.61"),
        "mac.json": _snapshot("macos", None, None, arch="arm64"),
    }.items():
        (snaps / name).write_text(json.dumps(snap))
    out = tmp_path / "locks"
    res = CliRunner().invoke(
        cli,
        [
            "lock",
            "--machine",
            str(snaps),
            "-o",
            str(out),
            "--index-url",
            indexes[0],
            "--torch-index-url",
            indexes[1],
            "--dockerfile",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    groups = {tuple(sorted(lk["machines"])): lk for lk in data["locks"]}
    assert groups[("pascal", "pascal-2")]["packages"]["torch"] == "2.14.1+cu126"
    assert groups[("ampere",)]["packages"]["torch"] == "2.15.0"
    assert groups[("blackwell",)]["packages"]["torch"] == "2.11.0+cu128"
    assert groups[("windows-4090",)]["packages"]["torch"] == "2.14.1+cu126"
    assert groups[("mac",)]["packages"]["torch"] == "2.15.0"
    manifest = toml_loads((out / "bnb-provision-locks.toml").read_text())
    assert manifest["schema"] == "bnb-provision.locks/1"
    classes = {tuple(sorted(c["machines"])): c for c in manifest["class"]}
    assert classes[("pascal", "pascal-2")]["gpu-archs"] == ["6.1"]
    assert classes[("blackwell",)]["driver-floor"] == "525.60.13"
    assert classes[("windows-4090",)]["driver-floor"] == "528.33"
    assert classes[("mac",)]["os"] == "macos" and classes[("mac",)]["variant"] == "cpu"
    win = toml_loads((out / classes[("windows-4090",)]["pylock"]).read_text())
    torch_wheel = next(p for p in win["packages"] if p["name"] == "torch")["wheels"][0]
    assert torch_wheel["url"].endswith("win_amd64.whl")
    assert len(list(out.glob("Dockerfile.*"))) == 3  # Linux groups only
    for c in manifest["class"]:  # one dot-free name for every file of a group
        name = c["name"]
        assert re.fullmatch(r"[^.]+", name), name
        assert (c["pylock"], c["requirements"]) == (
            f"pylock.{name}.toml",
            f"{name}.requirements.txt",
        )
        if c["os"] == "linux":
            assert f"COPY {name}.requirements.txt" in (out / f"Dockerfile.{name}").read_text()
    assert {lk["name"] for lk in data["locks"]} == {c["name"] for c in manifest["class"]}


def test_existing_locks_are_kept_unless_forced(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    m = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))
    lock_machines([m], load_db(), Constraints(), _opts(tmp_path, indexes))
    req = next((tmp_path / "locks").glob("*.requirements.txt"))
    req.write_text(req.read_text() + "# a local edit\n")
    with pytest.raises(LockfileError, match="exists; pass --force"):
        lock_machines([m], load_db(), Constraints(), _opts(tmp_path, indexes))
    lock_machines([m], load_db(), Constraints(), _opts(tmp_path, indexes, force=True))
    backups = list((tmp_path / "locks").glob("*.requirements.txt.*.bak"))
    assert len(backups) == 1 and backups[0].read_text().endswith("# a local edit\n")


def test_write_files_keeps_the_old_file_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "lock.txt"
    target.write_text("old")
    write_files({target: "old"}, force=False, replace=frozenset())  # unchanged: nothing to do
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(LockfileError, match="exists; pass --force"):
        write_files({target: "new", tmp_path / "other": "x"}, force=False, replace=frozenset())
    assert target.read_text() == "old" and not (tmp_path / "other").exists()
    write_files({target: "new"}, force=True, replace=frozenset())
    (backup,) = tmp_path.glob("lock.txt.*.bak")
    assert target.read_text() == "new" and backup.read_text() == "old"


def test_unreachable_index_names_it_and_the_way_out(tmp_path: Path) -> None:
    m = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))
    opts = LockOptions(
        output=tmp_path / "locks",
        default_index="http://127.0.0.1:9/simple",
        cache_dir=tmp_path / "c",
    )
    with pytest.raises(ExternalToolError, match=r"could not reach .*--offline --find-links DIR"):
        lock_machines([m], load_db(), Constraints(), opts)


def test_bundle_then_lock_offline(tmp_path: Path, indexes: tuple[str, str, list[str]]) -> None:
    m = machine_from_dict(_snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"))
    first = lock_machines([m], load_db(), Constraints(), _opts(tmp_path, indexes))
    house = tmp_path / "wheelhouse"
    got = bundle_lock(first.results[0].pylock, house)
    assert len(got.downloaded) == 5 and not got.present
    again = bundle_lock(first.results[0].pylock, house)
    assert again.present and not again.downloaded
    offline = LockOptions(
        output=tmp_path / "offline",
        offline=True,
        find_links=(house,),
        cache_dir=tmp_path / "uv-cache-2",
    )
    res = lock_machines([m], load_db(), Constraints(), offline)
    lock = toml_loads(res.results[0].pylock.read_text())
    assert {p["name"]: p["version"] for p in lock["packages"]}["torch"] == "2.14.1+cu126"
    req = res.results[0].requirements.read_text()
    assert "--index-url" not in req


def test_bundle_refuses_a_tampered_file(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    m = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))
    res = lock_machines([m], load_db(), Constraints(), _opts(tmp_path, indexes))
    text = res.results[0].pylock.read_text()
    sha = toml_loads(text)["packages"][0]["wheels"][0]["hashes"]["sha256"]
    bad = tmp_path / "pylock.bad.toml"
    bad.write_text(text.replace(sha, "0" * 64))
    with pytest.raises(LockfileError, match="does not match the lock"):
        bundle_lock(bad, tmp_path / "house")
    assert not any((tmp_path / "house").glob(".*"))  # no staged file left behind


def test_gptq_stack_pins_torch_and_excludes_bitsandbytes(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    from bnb_provision.lock.group import stack_requirements
    from bnb_provision.plan.inputs import plan_for

    m = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))
    plan = plan_for(m, load_db(), Constraints())
    reqs = stack_requirements(plan, "gptq")
    # gptqmodel pinned to the newest release whose own requirements accept the plan's
    assert reqs[0] == "torch==2.15.0" and "gptqmodel==7.7.0" in reqs
    assert not any(r.startswith("bitsandbytes") for r in reqs)
    assert not any(r.startswith(("gptqmodel", "autoawq")) for r in stack_requirements(plan, "bnb"))


@pytest.mark.network
def test_real_pypi_lock_installs_and_validates(tmp_path: Path) -> None:
    """Linux x86_64 on PyPI's default torch: hashes, pip-installable, valid pylock."""
    res = CliRunner().invoke(
        cli,
        [
            "lock",
            "--gpu",
            "NVIDIA A100",
            "--driver",
            "580.95.05",
            "--python",
            "3.11",
            "-o",
            str(tmp_path / "locks"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    lk = json.loads(res.stdout)["locks"][0]
    Pylock.from_dict(toml_loads(Path(lk["pylock"]).read_text()))
    req = Path(lk["requirements"]).read_text()
    assert "--hash=sha256:" in req and "--extra-index-url" not in req
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    done = subprocess.run(
        [
            find_uv(),
            "pip",
            "install",
            "--dry-run",
            "--python",
            str(env / "bin" / "python"),
            "-r",
            lk["requirements"],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # issue 12: pip with --require-hashes, and uv from the PEP 751 file, accept it too
    by_pip = _pip_dry_run(Path(lk["requirements"]))
    assert by_pip.returncode == 0, by_pip.stderr
    by_pylock = _uv_dry_run(env, tmp_path / "c", Path(lk["pylock"]))
    assert by_pylock.returncode == 0, by_pylock.stderr


def test_new_lock_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        write_files({tmp_path / "a.txt": "x"}, force=False, replace=frozenset())
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    (tmp_path / "a.txt").chmod(0o600)
    write_files({tmp_path / "a.txt": "y"}, force=True, replace=frozenset())  # keeps its own
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o600


def test_read_lock_pins_from_a_written_header(tmp_path: Path) -> None:
    from bnb_provision.lock.pins import read_lock_pins

    lock = tmp_path / "x.requirements.txt"
    lock.write_text(
        "# Generated by bnb-provision 0.1.0 (compat DB 2026.11.24). Do not edit.\n"
        "# Plan: torch 2.13.0+cpu, bitsandbytes 0.50.2, Python 3.11, linux-x86_64\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n\n"
        "Bitsandbytes==0.50.2 \\\n    --hash=sha256:55\n"
        "torch==2.13.0+cpu \\\n    --hash=sha256:ab\n"
    )
    pins = read_lock_pins(lock)
    assert (pins.python, pins.torch, pins.bitsandbytes) == ("3.11", "2.13.0+cpu", "0.50.2")
    assert pins.torch_variant == "cpu"
    other = tmp_path / "plain.txt"
    other.write_text("torch==2.9.1\n")
    assert read_lock_pins(other).python is None


def test_relock_keeps_the_locked_versions_unless_upgrade(tmp_path: Path) -> None:
    """A newer filelock appears on the index: a re-lock keeps the version already locked
    (uv reads the previous lock as its preferences); --upgrade takes the newer one."""
    house = tmp_path / "wheels"
    house.mkdir()
    make_wheel(
        house,
        "torch",
        "2.15.0",
        {"torch/__init__.py": b""},
        tag=f"{TAG}-manylinux_2_28_x86_64",
        requires=("filelock",),
    )
    make_wheel(
        house, "bitsandbytes", "0.50.2", {"bitsandbytes/__init__.py": b""}, requires=("torch",)
    )
    make_wheel(house, "transformers", "5.24.0", {"transformers/__init__.py": b""})
    make_wheel(house, "accelerate", "1.15.0", {"accelerate/__init__.py": b""})
    old = make_wheel(house, "filelock", "3.16.1", {"filelock/__init__.py": b""})
    newer = make_wheel(tmp_path, "filelock", "3.20.0", {"filelock/__init__.py": b""})
    a100 = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))

    def lock_with(wheels: list[Path], *, upgrade: bool) -> str:
        with serve_index(wheels) as (url, _):
            opts = LockOptions(
                output=tmp_path / "locks",
                default_index=f"{url}/simple",
                cache_dir=tmp_path / "uv-cache",
                force=True,
                upgrade=upgrade,
            )
            res = lock_machines([a100], load_db(), Constraints(), opts)
        return dict(res.results[0].packages)["filelock"]

    first = [*house.iterdir()]
    assert old in first
    assert lock_with(first, upgrade=False) == "3.16.1"
    assert lock_with([*first, newer], upgrade=False) == "3.16.1"
    assert lock_with([*first, newer], upgrade=True) == "3.20.0"


def test_results_build_their_own_json(tmp_path: Path) -> None:
    """lock/1 and bundle/1 as the CLI prints them, field for field."""
    from bnb_provision.lock.bundle import BundleResult
    from bnb_provision.lock.lockset import LockResult, LockSet, LockSpec

    spec = LockSpec(
        name="g", stack="bnb", machines=("a", "b"), python="3.12", platform="linux-x86_64",
        os="linux", arch="x86_64", glibc=None, torch="2.13.0", variant="cpu", torch_index=None,
        index_packages=(), requirements=("torch==2.13.0",), bitsandbytes="0.50.2",
        bitsandbytes_library="", driver_floor="", gpu_archs=(), db_version="1", uv_input="",
    )  # fmt: skip
    result = LockResult(
        spec=spec,
        requirements=tmp_path / "g.requirements.txt",
        pylock=tmp_path / "pylock.g.toml",
        packages=(("torch", "2.13.0"),),
        changed=("~ torch 2.12.0 -> 2.13.0",),
        seconds=1.23456,
    )
    doc = LockSet(results=(result,), manifest=tmp_path / "m.toml", unplanned=(("c", "old"),))
    assert doc.to_dict() == {
        "schema": "bnb-provision.lock/1",
        "manifest": str(tmp_path / "m.toml"),
        "locks": [
            {
                "name": "g",
                "requirements": str(tmp_path / "g.requirements.txt"),
                "pylock": str(tmp_path / "pylock.g.toml"),
                "machines": ["a", "b"],
                "packages": {"torch": "2.13.0"},
                "changed": ["~ torch 2.12.0 -> 2.13.0"],
                "seconds": 1.235,
                "warnings": [],
            }
        ],
        "unplanned": [{"machine": "c", "why": "old"}],
    }
    bundle = BundleResult(directory=tmp_path, downloaded=("a.whl",), present=("b.whl",))
    assert bundle.to_dict() == {
        "schema": "bnb-provision.bundle/1",
        "directory": str(tmp_path),
        "downloaded": ["a.whl"],
        "present": ["b.whl"],
        "skipped": [],
    }


def _pip_dry_run(requirements: Path) -> subprocess.CompletedProcess[str]:
    """Real pip, this interpreter's, told nothing but the requirements file (no pip.conf,
    no PIP_* settings of this machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--no-cache-dir", "--require-hashes", "--retries", "0", "-r", str(requirements)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )  # fmt: skip


def test_requirements_keep_every_other_package_off_the_torch_index(tmp_path: Path) -> None:
    """Issue 12: a requirements lock names no extra index. Real pip and uv install it
    (dry run) from two stand-in indexes, and the PyTorch one is asked for torch only,
    although it also carries a newer filelock and every other locked package."""
    from bnb_provision.plan.inputs import plan_for

    snap = _snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14")
    snap["python"] = {"version": HERE}
    pascal = machine_from_dict(snap)
    plan = plan_for(pascal, load_db(), Constraints())
    assert plan.torch.channel == "index"
    pypi, pt = tmp_path / "pypi", tmp_path / "pt"
    pypi.mkdir()
    pt.mkdir()
    tag = f"cp{HERE.replace('.', '')}-cp{HERE.replace('.', '')}-manylinux_2_28_x86_64"
    local = f"{plan.torch.version}+{plan.torch.variant}"
    make_wheel(pt, "torch", local, {"torch/__init__.py": b""}, tag=tag, requires=("filelock",))
    make_wheel(pypi, "torch", str(plan.torch.version), {"torch/__init__.py": b"decoy"}, tag=tag)
    make_wheel(pypi, "filelock", "3.16.1", {"filelock/__init__.py": b""})
    make_wheel(  # PyPI's torchvision: a decoy for a plan whose torch is an index build
        pypi,
        "torchvision",
        "0.29.2",
        {"torchvision/__init__.py": b"pypi"},
        tag="py3-none-manylinux_2_28_x86_64",
        requires=("torch>=2.14.0",),
    )
    make_wheel(pt, "filelock", "99.0.0", {"filelock/__init__.py": b"decoy"})
    make_wheel(  # a companion built for the index's torch, as download.pytorch.org has them
        pt,
        "torchvision",
        "0.29.2+cu126",
        {"torchvision/__init__.py": b"cu126"},
        tag="py3-none-manylinux_2_28_x86_64",
        requires=("torch>=2.14.0",),
    )
    for name, version in plan.packages:
        if name != "torch":
            make_wheel(pypi, name, version, {f"{name}/__init__.py": b""})
            make_wheel(pt, name, version, {f"{name}/__init__.py": b"decoy"})
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    with (
        serve_index(list(pypi.iterdir())) as (pypi_url, _),
        serve_index(list(pt.iterdir())) as (pt_url, seen),
    ):
        opts = LockOptions(
            output=tmp_path / "locks",
            default_index=f"{pypi_url}/simple",
            torch_index_template=f"{pt_url}/simple",
            cache_dir=tmp_path / "c",
        )
        (result,) = lock_machines([pascal], load_db(), Constraints(), opts).results
        req = result.requirements
        text = req.read_text()
        seen.clear()
        by_pip = _pip_dry_run(req)
        asked_by_pip = list(seen)
        seen.clear()
        by_uv = _uv_dry_run(env, tmp_path / "c2", req)
        asked_by_uv = list(seen)
        # the old form, --extra-index-url: pip asks the PyTorch index for everything
        old = req.with_name("old.txt")
        old.write_text(text.replace("--find-links", "--extra-index-url").replace("/torch/\n", "\n"))
        seen.clear()
        _pip_dry_run(old)
        asked_by_old = list(seen)
    assert "--extra-index-url" not in text
    assert f"--index-url {pypi_url}/simple\n--find-links {pt_url}/simple/torch/\n" in text
    assert by_pip.returncode == 0, by_pip.stderr
    assert f"torch-{local}" in by_pip.stdout and "filelock-3.16.1" in by_pip.stdout
    assert by_uv.returncode == 0, by_uv.stderr
    assert f"torch=={local}" in by_uv.stderr and "filelock==3.16.1" in by_uv.stderr
    for asked in (asked_by_pip, asked_by_uv):
        assert asked, "the PyTorch index was never asked for torch"
        assert all(p == "/simple/torch/" or p.startswith("/files/torch-") for p in asked), asked
    assert "/simple/filelock/" in asked_by_old  # what the test guards against
    # both indexes gone: the same lock installs from a wheelhouse, as init --offline does
    offline = subprocess.run(
        [find_uv(), "pip", "install", "--dry-run", "--python", str(env / "bin" / "python"),
         "--require-hashes", "--offline", "--no-index", "--find-links", str(pypi),
         "--find-links", str(pt), "--cache-dir", str(tmp_path / "c3"), "-r", str(req)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    assert f"torch=={local}" in offline.stderr


def _snapshots(folder: Path, suffix: str) -> Path:
    """Two machines that need two locks; ``suffix`` renames them (their labels), so every
    file of the set changes from one suffix to the next."""
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, snap in {
        "pascal": _snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"),
        "ampere": _snapshot("linux", "NVIDIA A100-SXM4-80GB", "580.95.05"),
    }.items():
        (folder / f"{name}{suffix}.json").write_text(json.dumps(snap))
    return folder


def _lock_cli(snaps: Path, out: Path, indexes: tuple[str, str, list[str]], *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["lock", "--machine", str(snaps), "-o", str(out), "--index-url", indexes[0],
         "--torch-index-url", indexes[1], *extra],
    )  # fmt: skip


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_forced_lock_leaves_the_old_set_byte_identical(
    tmp_path: Path, indexes: tuple[str, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: the disk fills while the third of five files is written: exit 8, and the
    previous set (two pylocks, two requirements files, the manifest) is untouched."""
    from bnb_provision.core import files

    out = tmp_path / "locks"
    first = _lock_cli(_snapshots(tmp_path / "snaps", ""), out, indexes)
    assert first.exit_code == 0, first.output
    before = _contents(out)
    assert len(before) == 5
    staged: list[Path] = []
    real_stage = files._stage

    def full_at_the_third(path: Path, data: files.Data, mode: int | None) -> Path:
        staged.append(path)
        if len(staged) == 3:
            raise OSError(28, "No space left on device", str(path))
        return real_stage(path, data, mode)

    monkeypatch.setattr(files, "_stage", full_at_the_third)
    failed = _lock_cli(_snapshots(tmp_path / "snaps", "-renamed"), out, indexes, "--force")
    assert failed.exit_code == 8, failed.output
    assert "No space left on device" in failed.stderr and "nothing was changed" in failed.stderr
    assert len(staged) == 3 and _contents(out) == before  # no new, half or .bak file either
    monkeypatch.undo()
    again = _lock_cli(_snapshots(tmp_path / "snaps", "-renamed"), out, indexes, "--force")
    assert again.exit_code == 0, again.output
    after = _contents(out)
    backups = {name: body for name, body in after.items() if name.endswith(".bak")}
    assert len(after) == 10 and len(backups) == 5
    for name, body in before.items():  # each file replaced, its old self kept as a .bak
        assert after[name] != body
        assert [b for n, b in backups.items() if n.startswith(f"{name}.")] == [body]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    import shutil

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_real_full_or_read_only_disk_keeps_the_old_set(
    tmp_path: Path, indexes: tuple[str, str, list[str]], small_disk: Path, fault: str
) -> None:
    """The same with a real file system: a tmpfs filled to two free pages, or remounted
    read-only, under a forced lock that would rewrite all five files."""
    out = small_disk / "locks"
    first = _lock_cli(_snapshots(tmp_path / "snaps", ""), out, indexes)
    assert first.exit_code == 0, first.output
    before = _contents(out)
    if fault == "full":
        st = os.statvfs(small_disk)
        with (small_disk / "filler").open("wb") as fh:
            fh.write(b"\0" * (st.f_bavail * st.f_frsize - 2 * st.f_frsize))
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    failed = _lock_cli(_snapshots(tmp_path / "snaps", "-renamed"), out, indexes, "--force")
    assert failed.exit_code == 8, failed.output
    assert "nothing was changed" in failed.stderr and "Traceback" not in failed.output
    why = "No space left on device" if fault == "full" else "Read-only file system"
    assert why in failed.stderr
    assert _contents(out) == before


def test_a_symlink_planted_at_an_output_is_never_read_or_followed(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    """Issue 12: uv printed the first line of a file a planted pylock symlink pointed at."""
    snaps = _snapshots(tmp_path / "snaps", "")
    out = tmp_path / "locks"
    assert _lock_cli(snaps, out, indexes).exit_code == 0
    pylock = next(out.glob("pylock.*.toml"))
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = SECRET-TOKEN\n")
    pylock.unlink()
    pylock.symlink_to(secret)
    refused = _lock_cli(snaps, out, indexes)
    assert refused.exit_code == 8 and "exists; pass --force" in refused.stderr
    assert "SECRET-TOKEN" not in refused.output
    forced = _lock_cli(snaps, out, indexes, "--force")
    assert forced.exit_code == 0 and "SECRET-TOKEN" not in forced.output
    assert not pylock.is_symlink() and "SECRET" not in pylock.read_text()
    assert secret.read_text() == "aws_secret_access_key = SECRET-TOKEN\n"


@pytest.mark.parametrize(
    "text",
    [
        b"packages = 1\n",
        b'packages = ["torch"]\n',
        b'[[packages]]\nname = "torch"\nwheels = [{ url = "http://x/t.whl" }]\n',
        b'[[packages]]\nname = "t"\nwheels = [{ url = "http://x/t.whl", hashes = "abc" }]\n',
        b'[[packages]]\nname = "t"\nwheels = [{ url = 5, hashes = { sha256 = "ab" } }]\n',
        (
            b'[[packages]]\nname = "t"\nwheels = [{ name = "../../evil.whl", '
            b'url = "http://x/t.whl", hashes = { sha256 = "ab" } }]\n'
        ),
        b'[[packages]]\nname = "t"\nsdist = "x"\n',
        b"packages = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        b"\xff\xfe not utf-8\n",
        b"= not toml\n",
    ],
)
def test_bundle_of_a_corrupt_pylock_is_a_lockfile_error(tmp_path: Path, text: bytes) -> None:
    lock = tmp_path / "pylock.bad.toml"
    lock.write_bytes(text)
    with pytest.raises(LockfileError, match=r"cannot read it as a pylock\.toml") as info:
        bundle_lock(lock, tmp_path / "house")
    assert info.value.exit_code == 8 and not (tmp_path / "evil.whl").exists()


def test_companions_come_from_the_index_of_their_torch(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    """--with torchvision: the plan pins the release built for its torch, and the lock takes
    it from the same PyTorch index as torch (PyPI's copy is built for PyPI's torch)."""
    pascal = machine_from_dict(_snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"))
    cons = Constraints(companions=("torchvision",))
    (r,) = lock_machines([pascal], load_db(), cons, _opts(tmp_path, indexes)).results
    by_name = {p["name"]: p for p in toml_loads(r.pylock.read_text())["packages"]}
    pt_host = indexes[1].rsplit("/simple", 1)[0]
    assert by_name["torchvision"]["version"] == "0.29.2+cu126"
    assert by_name["torchvision"]["wheels"][0]["url"].startswith(pt_host)
    assert r.spec.index_packages == ("torch", "torchvision")
    req = r.requirements.read_text()
    assert f"--find-links {indexes[1]}/torchvision/" in req


def test_a_team_lock_keeps_hopper_with_the_rest(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    """The verified Hopper row no longer holds H100s at torch 2.11: they lock with the
    Ampere machines on the newest safe torch, in one group."""
    machines = [
        machine_from_dict(_snapshot("linux", "NVIDIA H100 80GB HBM3", "580.159.04")),
        machine_from_dict(_snapshot("linux", "NVIDIA A100-SXM4-80GB", "580.95.05")),
    ]
    (r,) = lock_machines(machines, load_db(), Constraints(), _opts(tmp_path, indexes)).results
    assert len(r.spec.machines) == 2 and r.spec.torch == "2.15.0"
    assert r.spec.driver_floor == "580"


def test_an_unverified_index_listing_fails_the_lock_clearly(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    """--torch 2.15 on Windows rests on an announced, unverified index listing: the plan
    honours it, and lock, finding no such build on the index, says which fact failed."""
    win = machine_from_dict(_snapshot("windows", "NVIDIA GeForce RTX 3090", "595.79"))
    cons = Constraints(torch="2.15")
    with pytest.raises(ExternalToolError) as info:
        lock_machines([win], load_db(), cons, _opts(tmp_path, indexes))
    message = str(info.value)
    assert "could not lock torch 2.15.0+cu132" in message
    assert "not verified" in message and "issues/190385" in message


def test_the_legacy_windows_index_serves_bitsandbytes_alone() -> None:
    """--allow-legacy-windows-index with --bnb 0.41: uv's input routes bitsandbytes (and
    nothing else) to the third-party index, torch to the PyTorch index; the requirements
    file scopes it the same way with a find-links page."""
    from bnb_provision.lock.group import spec_for
    from bnb_provision.lock.requirements import index_lines
    from bnb_provision.plan.inputs import plan_for

    db = load_db()
    win = machine_from_dict(_snapshot("windows", "NVIDIA GeForce RTX 3090", "595.79"))
    plan = plan_for(win, db, Constraints(bnb="0.41", legacy_windows_index=True))
    opts = LockOptions(output=Path("locks"))
    spec = spec_for(plan, ("win",), None, db, opts)
    legacy = db.bnb_windows_legacy.url
    assert spec.bnb_index == legacy and spec.index_packages == ("torch",)
    sources = toml_loads(spec.uv_input)["tool"]["uv"]["sources"]
    assert sources == {
        "torch": {"index": "pytorch-cu118"},
        "bitsandbytes": {"index": "bitsandbytes-windows-legacy"},
    }
    assert f"--find-links {legacy}/bitsandbytes/" in index_lines(spec, opts)
    official = plan_for(win, db, Constraints(legacy_windows_index=True))
    assert spec_for(official, ("win",), None, db, opts).bnb_index is None


def test_the_manifest_is_replaced_only_with_force_and_unchanged_files_get_no_bak(
    tmp_path: Path, indexes: tuple[str, str, list[str]]
) -> None:
    """Issue 16: the same lock again writes nothing (no .bak, even with --force); another
    machine in the same folder changes the manifest, which then needs --force."""
    snaps = _snapshots(tmp_path / "snaps", "")
    out = tmp_path / "locks"
    assert _lock_cli(snaps, out, indexes).exit_code == 0
    before = _contents(out)
    for extra in ((), ("--force",)):
        again = _lock_cli(snaps, out, indexes, *extra)
        assert again.exit_code == 0, again.output
        assert _contents(out) == before  # byte for byte, and no .bak
    (snaps / "pascal.json").unlink()  # the Pascal box leaves: its locks are retired
    refused = _lock_cli(snaps, out, indexes)
    assert refused.exit_code == 8 and "bnb-provision-locks.toml exists; pass --force" in (
        refused.stderr
    )
    assert _contents(out) == before
    forced = _lock_cli(snaps, out, indexes, "--force")
    assert forced.exit_code == 0, forced.output
    after = _contents(out)
    backups = sorted(n for n in after if n.endswith(".bak"))
    kept = sorted(n for n in after if not n.endswith(".bak"))
    assert len(kept) == 3 and all("cu126" not in n for n in kept)  # Ampere's and the manifest
    # the manifest and the Pascal files, kept aside as dated .bak files
    assert len(backups) == 3 and any(n.startswith("bnb-provision-locks.toml.") for n in backups)


def test_lock_offline_plans_only_what_the_wheelhouse_holds(tmp_path: Path) -> None:
    """Issue 16: offline, the plan takes the newest torch the wheelhouse holds (here the
    older 2.14.1+cu126), never one uv would then fail to find there."""
    m = machine_from_dict(_snapshot("linux", "NVIDIA A100", "580.95.05"))
    house = tmp_path / "wheelhouse"
    house.mkdir()
    tag = f"{TAG}-manylinux_2_28_x86_64"
    make_wheel(house, "torch", "2.14.1+cu126", {"torch/__init__.py": b""}, tag=tag)
    for name, version in (("bitsandbytes", "0.50.2"), ("transformers", "5.24.0"),
                          ("accelerate", "1.15.0")):  # fmt: skip
        make_wheel(house, name, version, {f"{name}/__init__.py": b""})
    from bnb_provision.plan.inputs import plan_for

    # online, the plan would take PyPI's torch 2.15.0
    assert str(plan_for(m, load_db(), Constraints()).torch.version) == "2.15.0"
    opts = LockOptions(
        output=tmp_path / "locks", offline=True, find_links=(house,), cache_dir=tmp_path / "c"
    )
    (r,) = lock_machines([m], load_db(), Constraints(), opts).results
    assert dict(r.packages)["torch"] == "2.14.1+cu126" and r.spec.variant == "cu126"
    (house / f"torch-2.14.1+cu126-{tag}.whl").unlink()
    with pytest.raises(NoPlanError, match=r"planning offline from the wheelhouse .*no torch"):
        lock_machines([m], load_db(), Constraints(), opts)


def test_an_unreachable_pytorch_index_names_torch_index_url(tmp_path: Path) -> None:
    m = machine_from_dict(_snapshot("linux", "NVIDIA GeForce GTX 1080 Ti", "550.54.14"))
    opts = LockOptions(
        output=tmp_path / "locks",
        default_index="http://127.0.0.1:9/simple",
        torch_index_template="http://127.0.0.1:9/whl/{variant}",
        cache_dir=tmp_path / "c",
    )
    with pytest.raises(ExternalToolError) as info:
        lock_machines([m], load_db(), Constraints(), opts)
    text = str(info.value)
    assert "PyTorch index http://127.0.0.1:9/whl/cu126" in text
    assert "--torch-index-url URL" in text and "--index-url URL" in text


def test_bundle_fetches_only_what_the_lock_installs(tmp_path: Path) -> None:
    """A package's sdist beside a wheel that fits, and a wheel for another platform: neither
    is fetched (nothing would install them); an sdist-only package's sdist is."""
    files = tmp_path / "files"
    files.mkdir()
    whl = make_wheel(files, "a", "1.0", {"a/__init__.py": b""})
    win = make_wheel(files, "b", "1.0", {"b/__init__.py": b""}, tag=f"{TAG}-win_amd64")
    lin = make_wheel(files, "b", "1.0", {"b/__init__.py": b"l"}, tag=f"{TAG}-manylinux_2_28_x86_64")
    sdist = files / "a-1.0.tar.gz"
    sdist.write_bytes(b"not needed")
    only = files / "c-2.0.tar.gz"
    only.write_bytes(b"needed")

    def entry(p: Path) -> str:
        import hashlib

        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        return f'{{ name = "{p.name}", path = "{p}", hashes = {{ sha256 = "{sha}" }} }}'

    lock = tmp_path / "pylock.x.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "t"\n'
        f'[[packages]]\nname = "a"\nversion = "1.0"\nwheels = [{entry(whl)}]\nsdist = {entry(sdist)}\n'
        f'[[packages]]\nname = "b"\nversion = "1.0"\nwheels = [{entry(win)}, {entry(lin)}]\n'
        f'[[packages]]\nname = "c"\nversion = "2.0"\nsdist = {entry(only)}\n'
        '[tool.bnb-provision]\nplatform = "linux-x86_64"\npython = "3.12"\n'
    )
    got = bundle_lock(lock, tmp_path / "house")
    assert sorted(got.downloaded) == sorted([whl.name, lin.name, only.name])
    assert sorted(got.skipped) == sorted([sdist.name, win.name])
    assert sorted(p.name for p in (tmp_path / "house").iterdir()) == sorted(got.downloaded)
