"""CLI-level fuzz (issue 12): command lines built from each command's own click options,
with values that are right, wrong and hostile, and files of garbage. Whatever the input,
a command ends with a documented exit code and an ``Error:`` line, never a traceback.

Heavy commands are kept offline (``--offline --find-links`` an empty folder) and write
under a temporary folder. Quick by default; ``--hypothesis-profile=long`` runs >= 10^4.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.cli import cli

pytestmark = pytest.mark.fuzz

SNAP = Path(__file__).parent / "fixtures" / "snapshots"
DOCUMENTED_EXIT_CODES = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
# commands that install or download: only fuzzed offline, against an empty wheelhouse
_HEAVY = {"lock", "init", "rebuild", "bundle", "fleet"}


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files of every kind of wrong a user can hand over."""
    d = tmp_path_factory.mktemp("garbage")
    (d / "empty.json").write_bytes(b"")
    (d / "binary.json").write_bytes(bytes(range(256)))
    (d / "utf16.json").write_bytes("\ufeff{}".encode("utf-16-le"))
    (d / "deep.json").write_bytes(b"[" * 3000 + b"]" * 3000)
    (d / "number.json").write_bytes(b'{"python": {"version": 3' + b"1" * 5000 + b"}}")
    (d / "partial.json").write_text('{"os": {"system": "linux"}, "python": {"version": "3.11"}}')
    (d / "pins.requirements.txt").write_text("torch==\n--hash=sha256:zz\n\x00\n")
    (d / "pylock.x.toml").write_text('lock-version = "9"\n[[packages]]\nname = 3\n')
    (d / "bnb-provision-locks.toml").write_text('[[class]]\nname = "a"\n')
    (d / "config.json").write_text('{"hidden_size": -1, "num_hidden_layers": "x"}')
    (d / "log.txt").write_text("CUDA Setup failed " * 50 + "sm_5 " + "x" * 20000)
    (d / "wheelhouse").mkdir()
    return d


def _values(garbage: Path) -> st.SearchStrategy[str]:
    files = [str(p) for p in sorted(garbage.iterdir())] + [str(p) for p in SNAP.glob("*.json")]
    return st.one_of(
        st.sampled_from(files),
        st.sampled_from(
            [
                "",
                "-1",
                "0",
                "7B",
                "7e9",
                "70b",
                "inf",
                "nan",
                "1e400",
                "3.11",
                "2.7",
                "99.9",
                "8.6",
                "sm_5",
                "cu126",
                "12.6",
                "rocm7.2",
                "xpu",
                "cpu",
                "mps",
                "RTX 4090",
                "4090",
                "580.159.04",
                "x" * 300,
                "../" * 20,
                "/sys/kernel",
                "/dev/null",
                "~",
                "-",
                "--",
            ]
        ),
        st.text(max_size=20),
    )


def _option_args(param: click.Option, value: st.DrawFn, garbage: Path) -> list[str]:
    name = max(param.opts, key=len)
    if param.is_flag:
        return [name]
    if isinstance(param.type, click.Choice):
        choice = value(st.one_of(st.sampled_from(list(param.type.choices)), st.just("bogus")))
        return [name, str(choice)]
    return [name, value(_values(garbage))]


@st.composite
def command_lines(draw: st.DrawFn, garbage: Path) -> list[str]:
    names = sorted(cli.all_commands())
    path = [draw(st.sampled_from(names))]
    command = cli.all_commands()[path[0]]
    while isinstance(command, click.Group):
        sub = draw(st.sampled_from(sorted(command.commands)))
        path.append(sub)
        command = command.commands[sub]
    args = list(path)
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    for param in draw(st.lists(st.sampled_from(options), max_size=5)) if options else []:
        args += _option_args(param, draw, garbage)
    for _ in range(draw(st.integers(0, 1))):
        if any(isinstance(p, click.Argument) for p in command.params):
            args.append(draw(_values(garbage)))
    if path[0] in _HEAVY:
        args += ["--offline", "--find-links", str(garbage / "wheelhouse")]
    return args


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return tmp_path


def test_every_command_line_ends_with_a_documented_exit_code(garbage: Path, sandbox: Path) -> None:
    runner = CliRunner()
    ran: Counter[str] = Counter()

    @given(command_lines(garbage))
    def run(args: list[str]) -> None:
        ran[args[0]] += 1
        result = runner.invoke(cli, args, catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exc_info,
        )
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (args, result.output)
        assert "Traceback" not in result.output, args
        if result.exit_code not in (0, 2, 9):
            assert any(line.startswith("Error:") for line in result.stderr.splitlines()), (
                args,
                result.stderr,
            )

    run()
    assert Path.cwd() == sandbox
    # the count behind the figures of a long run (seen with -s)
    counts = ", ".join(f"{n} {c}" for n, c in ran.most_common())
    sys.stderr.write(f"\n{sum(ran.values())} command lines: {counts}\n")
