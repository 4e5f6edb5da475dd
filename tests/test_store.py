"""The environment store: partial builds, their owners, clean-up, the link swap, pruning."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bnb_provision.env import store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _build(folder: Path, name: str) -> Path:
    (folder / name / "bin").mkdir(parents=True)
    return folder / name


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_finished_build_loses_its_suffix_and_its_pid_file(tmp_path: Path) -> None:
    env = tmp_path / ".venv-bnb"
    with store.new_build(env) as slot:
        assert slot.owner.read_text().split()[0] == str(os.getpid())
        assert slot.partial.name == slot.real.name + ".partial"
        (slot.partial / "lock.txt").parent.mkdir()
        (slot.partial / "lock.txt").write_text("x")
    assert slot.real.is_dir() and not slot.partial.exists() and not slot.owner.exists()
    assert slot.moved(slot.partial / "lock.txt") == slot.real / "lock.txt"
    assert slot.moved(tmp_path / "other.txt") == tmp_path / "other.txt"
    assert _names(store.store_of(env)) == [slot.real.name]


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    env = tmp_path / ".venv-bnb"

    def fail() -> None:
        with store.new_build(env) as slot:
            slot.partial.mkdir()
            raise RuntimeError("uv failed")

    with pytest.raises(RuntimeError, match="uv failed"):
        fail()
    assert not store.store_of(env).exists()  # this build made the store: it goes too
    _build(store.store_of(env), "20250101T000000000000Z")
    with pytest.raises(RuntimeError, match="uv failed"):
        fail()
    assert _names(store.store_of(env)) == ["20250101T000000000000Z"]


def test_what_killed_builds_left_is_removed_and_running_builds_are_not(tmp_path: Path) -> None:
    d = tmp_path / ".venv-bnb.d"
    killed = _build(d, "20250101T000000000001Z.partial")
    (d / f"{killed.name}.pid").write_text(f"{_dead_pid()}\n")  # the old format: a pid alone
    reused = _build(d, "20250101T000000000002Z.partial")  # the pid now names another process
    (d / f"{reused.name}.pid").write_text(f"{os.getpid()} 1 {socket.gethostname()}\n")
    orphan = _build(d, "20250101T000000000003Z.partial")  # no pid file: never a live build
    running = _build(d, "20250101T000000000004Z.partial")
    (d / f"{running.name}.pid").write_text(store._owner_line(os.getpid()))
    remote = _build(d, "20250101T000000000005Z.partial")  # another host: cannot tell
    (d / f"{remote.name}.pid").write_text(f"{_dead_pid()} - elsewhere.example\n")
    stray_pid = d / "20250101T000000000006Z.partial.pid"  # its folder is already gone
    stray_pid.write_text(f"{_dead_pid()}\n")
    foreign = _build(d, "my-notes.partial")  # not a name the store makes
    half_link = tmp_path / f"..venv-bnb.link-{_dead_pid()}"  # as point() names it
    half_link.symlink_to(".venv-bnb.d/x", target_is_directory=True)
    store.remove_abandoned(d)
    assert _names(d) == sorted(
        [running.name, f"{running.name}.pid", remote.name, f"{remote.name}.pid", foreign.name]
    )
    assert not half_link.is_symlink()
    for gone in (killed, reused, orphan):
        assert not gone.exists()


def test_point_swaps_the_link_atomically(tmp_path: Path) -> None:
    env = tmp_path / ".venv-bnb"
    first = _build(tmp_path / ".venv-bnb.d", "20250101T000000000001Z")
    second = _build(tmp_path / ".venv-bnb.d", "20250101T000000000002Z")
    store.point(env, first)
    assert env.resolve() == first and str(env.readlink()) == ".venv-bnb.d/20250101T000000000001Z"
    store.point(env, second)
    assert env.resolve() == second
    assert [p.name for p in tmp_path.iterdir() if ".link-" in p.name] == []


def test_prune_keeps_working_backups_and_bounds_failed_builds(tmp_path: Path) -> None:
    """Failed environments never count as backups, and at most --keep of them stay."""
    env = tmp_path / ".venv-bnb"
    d = store.store_of(env)
    good = [_build(d, f"20250101T00000000000{i}Z") for i in range(1, 4)]
    failed = [store.mark_failed(_build(d, f"20250102T00000000000{i}Z")) for i in range(1, 4)]
    assert failed[0].name == "20250102T000000000001Z.failed"
    current = _build(d, "20250103T000000000000Z")
    store.point(env, current)
    backups = store.prune(env, 2, current)
    assert backups == (good[1], good[2])
    assert _names(d) == sorted(
        [good[1].name, good[2].name, failed[1].name, failed[2].name, current.name]
    )
    store.prune_failed(d, 0)
    assert store.prune(env, 0, current) == () and _names(d) == [current.name]
