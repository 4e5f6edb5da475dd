"""The fault matrix (issue 12): read-only and full file systems, an unreachable index, a
hung helper, a corrupt cache. Each row runs the real command line and checks three things:
a clear error, its documented exit code, and the user's existing files byte-identical.

The file-system rows mount a small tmpfs, which needs root; elsewhere they are skipped
with the reason.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_envbuild import PY, wheelhouse  # noqa: F401 - the fixture, reused

ROOT = Path(__file__).parent.parent


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bnb_provision", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _fails_cleanly(stderr: str) -> bool:
    """No traceback, and the run ends with the one ``Error:`` line (progress lines may come
    before it)."""
    lines = stderr.strip().splitlines()
    return "Traceback" not in stderr and bool(lines) and lines[-1].startswith("Error:")


def _digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as their targets' names) and its sha256."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = f"-> {p.readlink()}"
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _lock_args(house: Path, out: str = "locks") -> list[str]:
    return [
        "lock", "--os", "linux", "--arch", "x86_64", "--python", PY, "--cuda", "cpu",
        "--torch", "2.13.0", "--offline", "--find-links", str(house), "-o", out,
    ]  # fmt: skip


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or 'mount failed'}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> None:
    """Leave no free block on the file system at ``mnt`` (unbuffered: a buffered file
    would retry its pending bytes on close and raise there)."""
    with (mnt / "filler").open("wb", buffering=0) as f:
        for chunk in (b"\0" * 65536, b"\0"):
            try:
                while f.write(chunk):
                    pass
            except OSError:
                pass


def _read_only(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_lock_force_on_a_broken_file_system_keeps_the_old_locks(
    small_fs: Path,
    wheelhouse: Path,  # noqa: F811 - the fixture imported above
    fault: str,
) -> None:
    first = _run(_lock_args(wheelhouse), small_fs)
    assert first.returncode == 0, first.stderr
    before = _digests(small_fs / "locks")
    (_read_only if fault == "read-only" else _fill)(small_fs)
    # another bitsandbytes: every file of the set changes, so the run must write
    again = _run([*_lock_args(wheelhouse), "--force", "--bnb", "0.48"], small_fs)
    assert again.returncode == 8, again.stderr
    assert _fails_cleanly(again.stderr), again.stderr
    assert _digests(small_fs / "locks") == before


@pytest.mark.slow
def test_lock_with_an_unreachable_index_keeps_the_old_locks(
    tmp_path: Path,
    wheelhouse: Path,  # noqa: F811
) -> None:
    assert _run(_lock_args(wheelhouse), tmp_path).returncode == 0
    before = _digests(tmp_path / "locks")
    online = [a for a in _lock_args(wheelhouse) if a != "--offline"]
    i = online.index("--find-links")
    del online[i : i + 2]
    done = _run(
        [*online, "--force", "--index-url", "http://127.0.0.1:9/simple"],
        tmp_path,
        env={"UV_CACHE_DIR": str(tmp_path / "empty-cache")},
    )
    assert done.returncode == 7, done.stderr
    assert "127.0.0.1:9" in done.stderr and "--offline --find-links" in done.stderr
    assert _digests(tmp_path / "locks") == before


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_init_and_rebuild_on_a_broken_file_system(
    small_fs: Path,
    wheelhouse: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    fault: str,
) -> None:
    """init refuses cleanly; rebuild leaves the working environment and its link as they were."""
    assert _run(_lock_args(wheelhouse, str(tmp_path / "locks")), tmp_path).returncode == 0
    (req,) = (tmp_path / "locks").glob("*.requirements.txt")
    source = ["--offline", "--find-links", str(wheelhouse), "--no-verify"]
    made = _run(["init", "--lock", str(req), "--env", "env", *source], small_fs)
    assert made.returncode == 0, made.stderr
    before = _digests(small_fs)
    (_read_only if fault == "read-only" else _fill)(small_fs)
    if fault == "full":
        before = _digests(small_fs)
    fresh = _run(["init", "--lock", str(req), "--env", "other", *source], small_fs)
    assert fresh.returncode in (7, 8), fresh.stderr
    assert _fails_cleanly(fresh.stderr), fresh.stderr
    again = _run(
        ["rebuild", "--env", "env", "--torch", "2.13.0", "--bnb", "0.48", *source], small_fs
    )
    assert again.returncode in (7, 8), again.stderr
    assert _fails_cleanly(again.stderr), again.stderr
    assert _digests(small_fs) == before


def test_a_hung_nvidia_smi_costs_its_bound_not_its_lifetime(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\nsleep 120 &\nsleep 120\n")
    smi.chmod(0o755)
    start = time.monotonic()
    done = _run(
        ["detect", "--json"],
        tmp_path,
        env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 30
    assert "did not finish within" in done.stdout


@pytest.mark.parametrize(
    "garbage",
    [b"\x80 not json", b"[" * 100000, b"{}" + b" " * (70 << 20)],
    ids=["not-json", "deep", "oversized"],
)
def test_a_corrupt_cache_is_recomputed(tmp_path: Path, garbage: bytes) -> None:
    cache = tmp_path / "xdg" / "bnb-provision" / "compat-db"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    args = ["plan", "--gpu", "A100", "--driver", "580.95.05", "--python", "3.12", "--json"]
    assert _run(args, tmp_path, env=env).returncode == 0
    for entry in cache.glob("*.json"):
        entry.write_bytes(garbage)
    done = _run(args, tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert '"torch"' in done.stdout


@pytest.mark.slow
def test_symlinks_planted_at_every_lock_output_are_never_followed(
    tmp_path: Path,
    wheelhouse: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """A link at any output (pylock, requirements, manifest) is replaced, not written
    through, and what it points at is never printed."""
    assert _run(_lock_args(wheelhouse), tmp_path).returncode == 0
    outputs = sorted(p for p in (tmp_path / "locks").iterdir() if p.is_file())
    assert {p.suffix for p in outputs} >= {".toml", ".txt"}
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = SECRET-TOKEN\n")
    for p in outputs:
        p.unlink()
        p.symlink_to(secret)
    done = _run([*_lock_args(wheelhouse), "--force", "--upgrade"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SECRET-TOKEN" not in done.stdout + done.stderr
    assert secret.read_text() == "aws_secret_access_key = SECRET-TOKEN\n"
    for p in outputs:
        assert not p.is_symlink() and "SECRET" not in p.read_text(), p
