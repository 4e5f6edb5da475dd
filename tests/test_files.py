"""core.files: the one atomic writer, alone and for a set of files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bnb_provision.core import files
from bnb_provision.core.files import atomic_output, backup_name, write_all, write_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_new_file_text_and_bytes(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "sub" / "a.txt", "é\nline\n") is None
    assert (tmp_path / "sub" / "a.txt").read_bytes() == "é\nline\n".encode()
    write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_modes(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o640
    (tmp_path / "new").chmod(0o600)
    write_atomic(tmp_path / "new", "y")  # a replaced file keeps its own
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o600
    write_atomic(tmp_path / "private", "z", mode=0o600)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600


def test_backup_is_dated_and_unique(tmp_path: Path) -> None:
    target = tmp_path / "lock.txt"
    target.write_text("v1")
    first = write_atomic(target, "v2", backup=True)
    second = write_atomic(target, "v3", backup=True)
    assert first is not None and second is not None and first != second
    assert (first.read_text(), second.read_text(), target.read_text()) == ("v1", "v2", "v3")
    assert first.name.startswith("lock.txt.") and first.name.endswith(".bak")
    assert backup_name(target) not in (first, second)
    assert write_atomic(tmp_path / "fresh", "x", backup=True) is None  # nothing to keep


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("do not touch")
    link = tmp_path / "out.txt"
    link.symlink_to(secret)
    backup = write_atomic(link, "new", backup=True)
    assert secret.read_text() == "do not touch"
    assert not link.is_symlink() and link.read_text() == "new"
    assert backup is not None and backup.is_symlink()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new", backup=True)
    assert target.read_text() == "old" and _leftovers(tmp_path) == []
    assert list(tmp_path.glob("*.bak")) == []


def test_write_all_is_all_or_nothing_while_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [tmp_path / f"f{i}" for i in range(5)]
    for p in names[:4]:
        p.write_text(f"old {p.name}")
    real = files._stage
    calls = []

    def third_fails(path: Path, data: files.Data, mode: int | None) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(path, data, mode)

    monkeypatch.setattr(files, "_stage", third_fails)
    with pytest.raises(OSError):
        write_all({p: f"new {p.name}" for p in names}, backup=True)
    assert [p.read_text() for p in names[:4]] == [f"old {p.name}" for p in names[:4]]
    assert not names[4].exists() and _leftovers(tmp_path) == []
    assert list(tmp_path.glob("*.bak")) == []


def test_write_all_puts_back_what_it_swapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [tmp_path / f"f{i}" for i in range(4)]
    for p in names[:3]:
        p.write_text(f"old {p.name}")
    real_replace = Path.replace
    swaps = []

    def third_swap_fails(self: Path, target: Path) -> Path:
        if Path(target) in names and self.name.endswith(".tmp"):
            swaps.append(target)
            if len(swaps) == 3:
                raise OSError(5, "Input/output error")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", third_swap_fails)
    with pytest.raises(OSError, match="Input/output"):
        write_all({p: f"new {p.name}" for p in names})
    assert [p.read_text() for p in names[:3]] == [f"old {p.name}" for p in names[:3]]
    assert not names[3].exists() and _leftovers(tmp_path) == []


def test_write_all_writes_every_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old a")
    backups = write_all({tmp_path / "a": "A", tmp_path / "b": b"B"}, backup=True)
    assert (tmp_path / "a").read_text() == "A" and (tmp_path / "b").read_text() == "B"
    bak = backups[tmp_path / "a"]
    assert bak is not None and bak.read_text() == "old a" and backups[tmp_path / "b"] is None


def test_atomic_output_streams_and_drops_on_error(tmp_path: Path) -> None:
    target = tmp_path / "wheel.whl"
    with atomic_output(target) as fh:
        fh.write(b"chunk1")
        fh.write(b"chunk2")
    assert target.read_bytes() == b"chunk1chunk2"

    def bad_download() -> None:
        with atomic_output(target) as fh:
            fh.write(b"evil")
            raise ValueError("bad hash")

    with pytest.raises(ValueError, match="bad hash"):
        bad_download()
    assert target.read_bytes() == b"chunk1chunk2" and _leftovers(tmp_path) == []


def test_a_failed_write_names_the_file_asked_for_not_its_staging_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bnb_provision.errors import LockfileError

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "locks" / "pylock.x.toml"
    with pytest.raises(OSError, match="No space left") as info:
        write_atomic(target, "data")
    assert info.value.filename == str(target)
    assert _leftovers(target.parent) == [] and not target.exists()
    message = str(LockfileError.cannot_write(info.value))
    assert message.startswith(f"cannot write {target}: No space left on device; the disk is full")
