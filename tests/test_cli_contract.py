"""What every command promises (issue 12): JSON errors with the same exit code, the tool
and schema in every JSON output, one meaning per flag (``--python`` a version or an
interpreter everywhere, pins and sizes checked where parsed), OS errors as exit 8, and a
help text for every option."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from bnb_provision import __version__
from bnb_provision.cli import cli

SNAP = Path(__file__).parent / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json"
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
TOOL = {"name": "bnb-provision", "version": __version__}
GPU = ["--gpu", "8.6", "--driver", "580.95.05"]


def run(*args: str, input_text: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input_text)


def _error_object(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    assert set(data) == {"schema", "tool", "code", "error", "message"}, data
    assert data["schema"] == "bnb-provision.error/1" and data["tool"] == TOOL
    assert data["code"] == result.exit_code
    assert any(line.startswith("Error:") for line in result.stderr.splitlines())
    return data


def _snapshot(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads(SNAP.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(data))
    return path


# -- --json on failure ----------------------------------------------------------------


def test_json_errors_carry_the_exit_code_and_the_class(tmp_path: Path) -> None:
    missing = run("detect", "--python", str(tmp_path / "nope"), "--json")
    assert missing.exit_code == 3
    assert _error_object(missing)["error"] == "TargetEnvError"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    snapshot = run("plan", "--machine", str(bad), "--json")
    assert snapshot.exit_code == 4
    data = _error_object(snapshot)
    assert data["error"] == "SnapshotError" and "not valid JSON" in data["message"]


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--torch", "~", "--json"],
        ["plan", "--json", "--no-such-flag"],  # refused before --json is parsed
        ["init", "--json", "--cuda", "foo"],
    ],
    ids=["bad-value", "unknown-option", "init"],
)
def test_usage_errors_under_json_are_error_objects_too(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert _error_object(result)["error"] in {"BadParameter", "NoSuchOption"}


def test_findings_under_json_stay_one_document(tmp_path: Path) -> None:
    """doctor's exit 9 follows its findings JSON: no second document after it."""
    snap = json.loads(SNAP.read_text())
    snap["env"]["variables"]["BNB_CUDA_VERSION"] = "118"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(snap))
    result = run("doctor", "--machine", str(bad), "--json")
    assert result.exit_code == 9
    assert json.loads(result.stdout)["schema"] == "bnb-provision.doctor/1"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "write to a folder you own"),
    ],
)
def test_an_os_error_escaping_the_library_is_exit_8_naming_the_path(
    monkeypatch: pytest.MonkeyPatch, code: int, expected: str
) -> None:
    import bnb_provision.db.load

    def refuse(*_a: object, **_k: object) -> None:
        raise OSError(code, "refused", "/data/out/pylock.x.toml")

    monkeypatch.setattr(bnb_provision.db.load, "load_db", refuse)
    result = run("plan", *GPU)
    assert result.exit_code == 8
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: cannot write /data/out/pylock.x.toml: refused; ")
    assert expected in line
    as_json = run("plan", *GPU, "--json")
    assert _error_object(as_json)["error"] == "LockfileError"


# -- every JSON output names the tool and its schema -------------------------------------


@pytest.mark.parametrize(
    ("args", "schema"),
    [
        (["detect", "--json"], "machine"),
        (["plan", *GPU, "--json"], "plan"),
        (["doctor", "--machine", str(SNAP), "--json"], "doctor"),
        (["explain", "--json"], "doctor"),
        (["verify", "--json"], "verify"),
        (["init", "--python", PY, "--cuda", "cpu", "--dry-run", "--json"], "env"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_every_json_output_names_the_tool_and_its_schema(
    args: list[str], schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*args, input_text="RuntimeError: CUDA error: out of memory\n")
    assert result.exit_code in (0, 9), result.output
    data = json.loads(result.stdout)
    assert list(data)[:2] == ["schema", "tool"]
    assert data["schema"].startswith(f"bnb-provision.{schema}/") and data["tool"] == TOOL


# -- one meaning per flag ----------------------------------------------------------------


def test_python_is_a_version_or_an_interpreter_when_planning(tmp_path: Path) -> None:
    by_path = run("plan", *GPU, "--python", sys.executable, "--json")
    assert by_path.exit_code == 0, by_path.output
    assert json.loads(by_path.stdout)["python"] == PY
    by_version = run("plan", *GPU, "--python", PY, "--json")
    assert json.loads(by_version.stdout)["python"] == PY
    python310 = _fake_python(tmp_path, "3.10")
    init = ["init", "--cuda", "cpu", "--dry-run", "--json", "--python"]
    built = run(*init, str(python310))
    assert built.exit_code == 0, built.output
    assert built.stdout == run(*init, "3.10").stdout != run(*init, "3.13").stdout
    two = run("plan", *GPU, "--python", str(_fake_python(tmp_path, "2.7")))
    assert two.exit_code == 3 and "is Python 2.7" in two.stderr


def _fake_python(folder: Path, version: str) -> Path:
    """An 'interpreter' that answers the version question with ``version``."""
    exe = folder / f"python{version}"
    exe.write_text(f"#!/bin/sh\necho {version}\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize("command", ["plan", "lock", "init", "rebuild", "detect", "doctor"])
def test_python_2_is_refused_clearly_everywhere(command: str) -> None:
    result = run(command, "--python", "2.7")
    assert result.exit_code == 3, result.output
    assert "Python 2 is not supported" in result.stderr


def test_python_is_a_version_or_an_interpreter_when_inspecting() -> None:
    by_version = run("detect", "--python", PY, "--json")
    assert by_version.exit_code == 0, by_version.output
    env = json.loads(by_version.stdout)["env"]
    assert env["python"]["version"].startswith(PY + ".")
    assert run("doctor", "--python", PY, "--json").exit_code in (0, 9)
    absent = run("detect", "--python", "3.99")
    assert absent.exit_code == 3 and "uv python install 3.99" in absent.stderr
    assert run("verify", "--python", "3.99").exit_code == 3
    whole = run("plan", *GPU, "--python", "3")
    assert whole.exit_code == 3 and "minor version" in whole.stderr


def test_a_snapshot_needs_no_python_when_python_is_given(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, python=None, env=None)
    without = run("plan", "--machine", str(snap))
    assert without.exit_code == 4 and "--python X.Y" in without.stderr
    given = run("plan", "--machine", str(snap), "--python", "3.12", "--json")
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["python"] == "3.12"


def test_an_unknown_gpu_in_a_snapshot_is_a_snapshot_error(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, gpus=[{"index": 0, "name": "Mystery GPU 9000"}])
    result = run("plan", "--machine", str(snap))
    assert result.exit_code == 4 and "machine.json: GPU 0 (Mystery GPU 9000)" in result.stderr


@pytest.mark.parametrize("size", ["7B", "7b", "7e9", "350M", "1.5T", "70_000_000_000"])
def test_model_params_take_the_usual_spellings(size: str) -> None:
    result = run("doctor", "--machine", str(SNAP), "--model-params", size, "--json")
    assert result.exit_code in (0, 9), result.output
    assert "oom_on_quant_load" in result.stdout or '"ok": true' in result.stdout


@pytest.mark.parametrize("size", ["-5", "0", "inf", "nan", "1e400", "seven", ""])
def test_model_params_refuse_what_is_not_a_size(size: str) -> None:
    result = run("doctor", "--machine", str(SNAP), "--model-params", size)
    assert result.exit_code == 2 and "'--model-params'" in result.stderr


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("plan", "--torch", "~"),
        ("init", "--torch", "~"),
        ("rebuild", "--bnb", "=>0.45"),
        ("lock", "--torch", "2.8.0+cu128"),
        ("plan", "--cuda", "foo"),
        ("init", "--torch", ""),
        ("lock", "--torch-index-url", "{"),
        ("init", "--torch-index-url", "https://m/{variant:>999999999}"),
        ("rebuild", "--torch-index-url", "https://m/{0}"),
    ],
)
def test_a_bad_value_is_refused_where_it_is_parsed(command: str, flag: str, value: str) -> None:
    result = run(command, flag, value)
    assert result.exit_code == 2 and f"'{flag}'" in result.stderr, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("pin", ["2.8", "2.8.0", ">=2.8,<2.10", "~=2.8.0"])
def test_good_pins_pass(pin: str) -> None:
    result = run("plan", *GPU, "--torch", pin, "--json")
    assert result.exit_code in (0, 6), result.output  # 6: no build of it runs there


@pytest.mark.parametrize("command", ["init", "rebuild"])
def test_env_at_a_file_is_one_clear_error_each(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("x")
    result = run(command, "--env", "afile", "--offline", "--find-links", str(tmp_path))
    assert result.exit_code == 3
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: --env ") and "is a file, not an environment" in line
    need = {"init": "init makes a new environment", "rebuild": "rebuild needs an environment"}
    assert need[command] in line and "for init)" not in line


# -- help -------------------------------------------------------------------------------


def test_help_lists_each_command_once() -> None:
    text = run("--help").stdout
    listed = [line.split()[0] for line in text.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(cli.all_commands())


def test_every_option_has_help_text() -> None:
    missing = [
        f"{name} {p.opts[0]}"
        for name, command in cli.all_commands().items()
        for p in command.params
        if isinstance(p, click.Option) and not p.help
    ]
    assert missing == []


def test_a_script_making_constraints_gets_the_same_refusal() -> None:
    from bnb_provision.errors import NoPlanError
    from bnb_provision.plan.constraints import Constraints

    with pytest.raises(NoPlanError, match="--torch '~': not a version specifier"):
        Constraints(torch="~")
    assert Constraints(bnb=">=0.45,<0.50").bnb == ">=0.45,<0.50"
