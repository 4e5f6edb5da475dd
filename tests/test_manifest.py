"""The lock manifest: typed, checked where it is read, written from the same types; a bad
manifest is a LockfileError (exit 8) naming the file and the field, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.errors import LockfileError
from bnb_provision.lock.manifest import (
    MANIFEST_FILE,
    LockClass,
    Manifest,
    parse_manifest,
    read_manifest,
)

NAME = "bnb-linux-x86_64-py3_11-torch2_13_0-cpu-bnb0_50_2"


def _class(**changes: object) -> LockClass:
    values: dict[str, object] = {
        "name": NAME,
        "requirements": f"{NAME}.requirements.txt",
        "pylock": f"pylock.{NAME}.toml",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.11",
        "driver_floor": "",
        "gpu_archs": (),
        "torch": "2.13.0",
        "variant": "cpu",
        "bitsandbytes": "0.50.2",
        "lock_sha256": "a" * 64,
        "machines": ("laptop",),
    }
    values.update(changes)
    return LockClass(**values)  # type: ignore[arg-type]


def _manifest(folder: Path, *classes: LockClass) -> Manifest:
    return Manifest(
        folder=folder,
        generator="bnb-provision 0.1.0",
        db_version="2026.11.24",
        classes=classes or (_class(),),
        unplanned=("old-box: no torch build runs on it",),
    )


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_FILE
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip(tmp_path: Path) -> None:
    m = _manifest(
        tmp_path, _class(), _class(name="b", gpu_archs=("8.0", "9.0"), driver_floor="525.60.13")
    )
    path = _write(tmp_path, m.to_toml())
    assert read_manifest(path) == m
    assert m.requirements_of(m.classes[0]) == tmp_path / f"{NAME}.requirements.txt"


def _without(text: str, key: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ="))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: _without(t, "torch"), r"class\[0\]\.torch: required field is missing"),
        (lambda t: _without(t, "requirements"), r"class\[0\]\.requirements: required field"),
        (lambda t: _without(t, "schema"), r"schema: required field is missing"),
        (lambda t: t.replace("locks/1", "locks/9"), r"schema: expected 'bnb-provision.locks/1'"),
        (
            lambda t: t.replace('torch = "2.13.0"', "torch = 2"),
            r"class\[0\]\.torch: expected a string",
        ),
        (lambda t: t.replace('torch = "2.13.0"', 'torch = "two"'), r"torch: expected a version"),
        (lambda t: t.replace('python = "3.11"', 'python = "3"'), r"python: expected X\.Y"),
        (lambda t: t.replace("a" * 64, "zz"), r"lock-sha256: expected 64 hex digits"),
        (lambda t: t.replace(f'"{NAME}.requirements.txt"', '"../../etc/passwd"'), r"a file name"),
        (lambda t: t.split("[[class]]")[0], r"class: required field is missing"),
        (lambda t: t.replace("[[class]]", "[[klass]]"), r"class: required field is missing"),
        (lambda t: t + "\n[[class]]\n", r"class\[1\]\.name: required field is missing"),
        (lambda t: t.replace("schema =", "schema = = "), r"cannot read it as a lock manifest"),
        (lambda t: "class = 1\n" + t, r"cannot read it as a lock manifest"),
    ],
)
def test_a_bad_manifest_names_the_file_and_field(
    tmp_path: Path, edit: Callable[[str], str], message: str
) -> None:
    path = _write(tmp_path, edit(_manifest(tmp_path).to_toml()))
    with pytest.raises(LockfileError, match=message) as info:
        read_manifest(path)
    assert str(info.value).startswith(str(path)) and info.value.exit_code == 8


def test_not_utf8_or_missing(tmp_path: Path) -> None:
    path = tmp_path / MANIFEST_FILE
    path.write_bytes(b'schema = "\xff\xfe"\n')
    with pytest.raises(LockfileError, match="cannot read it as a lock manifest"):
        read_manifest(path)
    with pytest.raises(LockfileError, match="cannot read it"):
        read_manifest(tmp_path / "nowhere" / MANIFEST_FILE)


def test_unknown_fields_are_ignored(tmp_path: Path) -> None:
    text = _manifest(tmp_path).to_toml().replace("[[class]]\n", '[[class]]\nnew-field = "x"\n')
    assert read_manifest(_write(tmp_path, text)).classes[0].torch == "2.13.0"


def test_parse_is_pure(tmp_path: Path) -> None:
    data = {"schema": "bnb-provision.locks/1", "class": [_class().to_dict()]}
    m = parse_manifest(data, tmp_path)
    assert m.classes == (_class(),) and m.generator == "" and m.unplanned == ()


def test_init_with_a_class_without_torch_is_a_lockfile_error(tmp_path: Path) -> None:
    """Regression (issue 11): a manifest class without ``torch`` gave ``KeyError: 'torch'``."""
    locks = tmp_path / "locks"
    _write(locks, _without(_manifest(locks).to_toml(), "torch"))
    result = CliRunner().invoke(cli, ["init", "--lock", str(locks), "--env", str(tmp_path / "env")])
    assert result.exit_code == 8, result.output
    assert "class[0].torch: required field is missing" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "env").exists()


def _lock_set(folder: Path, **changes: object) -> tuple[Manifest, Path, Path]:
    """A consistent set on disk (a pylock and a requirements file) and its manifest."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    pylock = folder / f"pylock.{NAME}.toml"
    pylock.write_text('lock-version = "1.0"\n')
    req = folder / f"{NAME}.requirements.txt"
    req.write_text("torch==2.13.0+cpu --hash=sha256:" + "0" * 64 + "\n")
    shas: dict[str, object] = {
        "lock_sha256": hashlib.sha256(pylock.read_bytes()).hexdigest(),
        "requirements_sha256": hashlib.sha256(req.read_bytes()).hexdigest(),
    }
    m = _manifest(folder, _class(**(shas | changes)))
    _write(folder, m.to_toml())
    return m, pylock, req


def test_a_consistent_set_passes(tmp_path: Path) -> None:
    from bnb_provision.lock.manifest import check_lock_file
    from bnb_provision.lock.pins import requirements_for

    m, pylock, req = _lock_set(tmp_path)
    m.verify(m.classes[0])
    assert requirements_for(req) == req and requirements_for(pylock) == req
    check_lock_file(tmp_path / "not-listed.requirements.txt")  # not in the manifest: no check


@pytest.mark.parametrize("which", ["pylock", "requirements"])
def test_a_file_the_manifest_did_not_record_is_refused(tmp_path: Path, which: str) -> None:
    """Issue 12: a lock set left half-written (or edited) is never installed."""
    from bnb_provision.lock.pins import requirements_for

    m, pylock, req = _lock_set(tmp_path)
    changed = pylock if which == "pylock" else req
    changed.write_text(changed.read_text() + "# stale\n")
    with pytest.raises(LockfileError, match="not the file its manifest recorded") as info:
        m.verify(m.classes[0])
    assert info.value.exit_code == 8 and str(info.value).startswith(str(changed))
    for given in (req, pylock):
        with pytest.raises(LockfileError, match="lock set is inconsistent"):
            requirements_for(given)


def test_a_missing_file_is_refused_and_old_manifests_check_the_pylock(tmp_path: Path) -> None:
    m, pylock, req = _lock_set(tmp_path, requirements_sha256=None)
    assert "requirements-sha256" not in (tmp_path / MANIFEST_FILE).read_text()
    req.write_text("edited, but this manifest never recorded it\n")
    read_manifest(tmp_path / MANIFEST_FILE).verify(m.classes[0])
    pylock.unlink()
    with pytest.raises(LockfileError, match="the lock manifest lists it, but it cannot be read"):
        m.verify(m.classes[0])


def test_init_refuses_a_stale_lock_file(tmp_path: Path) -> None:
    _, _, req = _lock_set(tmp_path / "locks")
    req.write_text(req.read_text().replace("0" * 64, "1" * 64))
    result = CliRunner().invoke(cli, ["init", "--lock", str(req), "--env", str(tmp_path / "env")])
    assert result.exit_code == 8, result.output
    assert "not the file its manifest recorded" in result.stderr
    assert not (tmp_path / "env").exists() and not (tmp_path / "env.d").exists()
