"""Every bnb-provision command that doctor or explain prints as a fix runs (issue 12).

The fixes are collected from where they are written, not from a list kept by hand: each
``fix=`` expression in ``bnb_provision/doctor/*.py`` (both branches of a conditional),
evaluated with the values of a fixture machine, and each variant of each cause's fix in
``compat_db/explain.toml`` filled with the fixture machine's facts. Each ``bnb-provision ...`` command
in them is parsed with the command's own click options, its placeholder values (``PATH``,
``X.Y``, ``VERSION``, ``N``) filled from the fixture machine, and run through the CLI:
none may be a usage error (exit 2) or end in a traceback, and a plan must be made. init and rebuild run with
``--dry-run``: the test checks the command line, not a build.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.detect.snapshot import load_machine
from bnb_provision.explain import load_catalog
from bnb_provision.explain.names import DERIVED, FACTS
from bnb_provision.explain.values import fill, plan_command

ROOT = Path(__file__).parent.parent
DOCTOR = ROOT / "bnb_provision" / "doctor"
SNAP = ROOT / "tests" / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json"
MACHINE = load_machine(SNAP)
assert MACHINE.env is not None and MACHINE.env.torch is not None and MACHINE.nvidia is not None

# the values a fix expression's free names take on the fixture machine
FIXTURE_NAMES: dict[str, Any] = {
    "m": MACHINE,
    "env": MACHINE.env,
    "gpu": MACHINE.gpus[0],
    "torch": MACHINE.env.torch,
    "py": MACHINE.env.python.minor,
    "floor": "0.45.0",
    "name": "transformers",
    "spec": ">=4.45",
    "need": ">=1.0",
    "others": [("auto-gptq", "0.7.1")],
    "config_fix": "BitsAndBytesConfig(llm_int8_enable_fp32_cpu_offload=True)",
    "split": True,
    "advice": "a max_memory map of 20GiB per GPU",
}
# the facts an error text about the fixture machine gives explain; any other name a fix
# uses gets a neutral word (it never sits inside a bnb-provision command)
FIXTURE_FACTS = {
    "os": "linux",
    "compute_capability": MACHINE.gpus[0].cc_text or "9.0",
    "driver": MACHINE.nvidia.driver,
    "python": MACHINE.env.python.minor,
}
# placeholder values in fix texts, by the option they follow
FIXTURE_VALUES: dict[tuple[str, str], str] = {
    ("--python", "PATH"): sys.executable,
    ("--python", "X.Y"): MACHINE.env.python.minor,
    ("--gpu", "X.Y"): MACHINE.gpus[0].cc_text or "9.0",
    ("--driver", "VERSION"): MACHINE.nvidia.driver,
    ("--model-params", "N"): "7e9",
}
_BUILDS = {"init", "rebuild"}
# how each command may end when run as printed, here: rebuild finds no environment to
# rebuild (3) and doctor finds this test's interpreter without torch (9); a plan must be made
EXPECTED_EXITS = {"detect": {0}, "plan": {0}, "explain": {0}, "init": {0}, "doctor": {0, 9},
                  "rebuild": {0, 3}}  # fmt: skip


def _alternatives(node: ast.expr) -> Iterator[ast.expr]:
    """The expressions a fix can take: both branches of ``a if c else b``."""
    if isinstance(node, ast.IfExp):
        yield from _alternatives(node.body)
        yield from _alternatives(node.orelse)
    else:
        yield node


def doctor_fixes() -> list[tuple[str, str]]:
    """(where, text) of every fix written in bnb_provision/doctor, evaluated on the fixture."""
    out = []
    for path in sorted(DOCTOR.glob("*.py")):
        module = importlib.import_module(f"bnb_provision.doctor.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.keyword) and node.arg == "fix"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id == "fix":
                continue  # a fix passed through: collected where it is written
            for expr in _alternatives(node.value):
                where = f"{path.name}:{expr.lineno}"
                try:
                    text = eval(  # the project's own source, in a test
                        compile(ast.Expression(expr), where, "eval"),
                        {**vars(module), **FIXTURE_NAMES},
                    )
                except NameError as exc:
                    pytest.fail(f"{where}: give {exc.name!r} a fixture value in FIXTURE_NAMES")
                out.append((where, str(text)))
    return out


def explain_fixes() -> list[tuple[str, str]]:
    """Every variant of every curated fix, filled as explain fills it: with the fixture's
    facts, and without the driver (plan's ladder) or any fact at all."""
    out = []
    neutral = dict.fromkeys([*FACTS, *DERIVED], "x")
    partial = {k: v for k, v in FIXTURE_FACTS.items() if k != "driver"}
    for cause in load_catalog().curated.causes.values():
        for i, variant in enumerate(cause.fix):
            for facts in (FIXTURE_FACTS, partial, {}):
                values = {**neutral, **facts, "plan_command": plan_command(facts)}
                out.append((f"explain.toml {cause.id} fix[{i}]", fill((variant,), values)))
    return out


def _clean(word: str) -> tuple[str, bool]:
    """A word of prose without its trailing punctuation, and whether that ended a clause."""
    bare = word.rstrip(",;.)'")
    return bare, bare != word


def _command_line(words: list[str]) -> list[str]:
    """The arguments of one ``bnb-provision NAME ...`` in prose: its options and their
    values (placeholders filled), up to the first word that is neither."""
    name, ended = _clean(words[0])
    command = cli.all_commands().get(name)
    assert command is not None, f"bnb-provision {name}: no such command"
    options = {o: p for p in command.params if isinstance(p, click.Option) for o in p.opts}
    args, rest = [name], iter(words[1:])
    while not ended:
        flag, ended = _clean(next(rest, ""))
        if not flag.startswith("-"):
            break
        param = options.get(flag)
        assert param is not None, f"bnb-provision {name}: no option {flag}"
        args.append(flag)
        if not (param.is_flag or ended):
            value, ended = _clean(next(rest, ""))
            args.append(FIXTURE_VALUES.get((flag, value), value))
    if name in _BUILDS:
        args.append("--dry-run")
    return args


def commands_in(text: str) -> list[list[str]]:
    return [
        _command_line(m["rest"].replace("(", " ").split())
        for m in re.finditer(r"bnb-provision\s+(?P<rest>[a-z](?:(?!bnb-provision)[^\n])*)", text)
    ]


def all_fix_commands() -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for where, text in doctor_fixes() + explain_fixes():
        for args in commands_in(text):
            found.setdefault(tuple(args), where)
    return found


FIX_COMMANDS = all_fix_commands()


def test_the_collection_finds_the_fixes_the_issue_names() -> None:
    lines = {" ".join(a) for a in FIX_COMMANDS}
    driver = MACHINE.nvidia.driver  # type: ignore[union-attr]
    assert f"plan --gpu 9.0 --driver {driver}" in lines  # was `plan --gpu 6.1`, no driver
    assert "doctor" in lines  # explain: "bnb-provision doctor names the missing architecture"
    assert f"plan --gpu 9.0 --python {MACHINE.env.python.minor}" in lines  # type: ignore[union-attr]
    assert "rebuild --dry-run" in lines
    assert f"init --python {MACHINE.env.python.minor} --dry-run" in lines  # type: ignore[union-attr]
    assert len(FIX_COMMANDS) >= 8, FIX_COMMANDS


@pytest.mark.parametrize("args", sorted(FIX_COMMANDS), ids=" ".join)
def test_each_fix_command_runs(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UV_OFFLINE", "1")
    result = CliRunner().invoke(cli, list(args))
    where = FIX_COMMANDS[args]
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        where,
        result.exc_info,
    )
    assert result.exit_code in EXPECTED_EXITS[args[0]], (where, result.output)
    assert "Traceback" not in result.output
