"""``doctor`` (what is wrong with an environment) and ``explain`` (the cause of an error
message); both print findings, as a table, a pasteable report or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from bnb_provision.cli.app import emit_json, json_option, options, python_option
from bnb_provision.cli.params import MODEL_SIZE, UserFile, UserPath
from bnb_provision.vocab import QUANTS, Quant

if TYPE_CHECKING:
    from bnb_provision.detect.machine import Machine
    from bnb_provision.doctor.findings import Finding
    from bnb_provision.doctor.memory import ModelShape
    from bnb_provision.doctor.redact import Redactor

__all__ = ["doctor", "explain"]

_doctor_options = options(
    python_option(
        "The environment's interpreter: a path, or a version (3.12) to find "
        "(default: python on PATH)."
    ),
    click.option(
        "--env", "env_dir", metavar="DIR", type=UserPath(), help="The virtual environment's folder."
    ),
    click.option(
        "--machine",
        "machine_file",
        metavar="FILE",
        type=UserPath(path_type=Path),
        help="A snapshot (detect --json --python ...) taken where the environment is.",
    ),
    click.option(
        "--model-params",
        type=MODEL_SIZE,
        metavar="N",
        help="Model size in parameters: 7e9, 7B, 350M.",
    ),
    click.option(
        "--config",
        "config_path",
        metavar="PATH",
        type=UserPath(path_type=Path),
        help="A model's config.json (or its folder) for the memory check.",
    ),
    click.option(
        "--quant",
        type=click.Choice(QUANTS),
        default="nf4",
        show_default=True,
        help="Quantization for the memory check.",
    ),
    click.option(
        "--report",
        is_flag=True,
        help="Print a block safe to paste into a public issue (paths, user, values redacted).",
    ),
    json_option,
)


@click.command(short_help="what is wrong with an environment, and the fix")
@_doctor_options
def doctor(
    python: str | None,
    env_dir: str | None,
    machine_file: Path | None,
    model_params: float | None,
    config_path: Path | None,
    quant: Quant,
    report: bool,
    as_json: bool,
) -> None:
    """Diagnose a bitsandbytes / torch / CUDA environment: the cause and the fix, in order.

    Exits 9 when an error-severity finding stands.

    \b
    Example:
        bnb-provision doctor --python .venv/bin/python
        bnb-provision doctor --env .venv --model-params 70e9 --quant nf4
        bnb-provision doctor --machine snapshot.json --json
    """
    from bnb_provision.db.load import load_db
    from bnb_provision.doctor.diagnose import DoctorOptions, diagnose
    from bnb_provision.env.stamp import read_stamp
    from bnb_provision.errors import FindingsError

    machine = _target_machine(python, env_dir, machine_file)
    if machine.env is None:
        raise click.UsageError(
            "doctor needs an environment: --python PATH, --env DIR, or a "
            "--machine snapshot taken with --python"
        )
    model = _model_shape(config_path, model_params)
    stamp = read_stamp(machine.env.prefix) if machine.env.prefix and machine_file is None else None
    findings = diagnose(machine, load_db(), DoctorOptions(model=model, quant=quant, stamp=stamp))
    header = f"bnb-provision doctor: {machine.env.python.executable or 'snapshot'}"
    _emit_findings(findings, machine=machine, as_json=as_json, report=report, header=header)
    if any(f.severity == "error" for f in findings):
        raise FindingsError(f"{sum(f.severity == 'error' for f in findings)} error(s) found")


def _target_machine(python: str | None, env_dir: str | None, machine_file: Path | None) -> Machine:
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine

    if sum(x is not None for x in (python, env_dir, machine_file)) > 1:
        raise click.UsageError("give one of --python, --env, --machine")
    if machine_file is not None:
        return load_machine(machine_file)
    if python is not None:
        from bnb_provision.detect.interpreter import interpreter_for_request

        python = interpreter_for_request(python)
    elif env_dir is None:
        # the environment the user is in: an activated venv's python comes first on PATH
        import shutil

        python = shutil.which("python") or shutil.which("python3")
    return detect_machine(python=python, env_dir=env_dir)


def _model_shape(config_path: Path | None, model_params: float | None) -> ModelShape | None:
    from bnb_provision.doctor.memory import read_model_shape, shape_from_params

    if config_path is not None:
        try:
            return read_model_shape(config_path)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {exc.filename or config_path}: {exc.strerror or exc}",
                param_hint="--config",
            ) from exc
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--config") from exc
    if model_params is not None:
        return shape_from_params(model_params)
    return None


@click.command(short_help="the cause of an error message, and the fix")
@click.option(
    "--log",
    "log_file",
    metavar="FILE",
    default="-",
    type=UserFile("r", encoding="utf-8", errors="replace"),
    help="Read the error text from FILE (default: standard input).",
)
@json_option
def explain(log_file: IO[str], as_json: bool) -> None:
    """Explain an error message or a whole traceback: its cause and the fix.

    \b
    Example:
        python train.py 2>&1 | bnb-provision explain
        bnb-provision explain --log error.txt --json
    """
    from bnb_provision.db.load import load_db
    from bnb_provision.doctor.explain import explain_text

    text = log_file.read()
    if not text.strip():
        raise click.UsageError("no error text: pipe it in or give --log FILE")
    findings = explain_text(text, load_db())
    _emit_findings(
        findings, machine=None, as_json=as_json, report=False, header="bnb-provision explain"
    )


def _emit_findings(
    findings: tuple[Finding, ...],
    *,
    machine: Machine | None,
    as_json: bool,
    report: bool,
    header: str,
) -> None:
    """The findings as JSON or a table; with ``--report``, both redacted the same way."""
    from bnb_provision.cli.render import render_findings
    from bnb_provision.doctor.findings import findings_to_dict

    redactor = _redactor(machine) if report else None
    if as_json:
        subject: dict[str, Any] = {} if machine is None else {"machine": machine.to_dict()}
        data = findings_to_dict(findings, subject=subject)
        emit_json(data if redactor is None else cast("dict[str, Any]", redactor.data(data)))
        return
    text = render_findings(findings, header)
    if redactor is not None and machine is not None:
        text = _issue_report(machine, text, redactor)
    click.echo(text)


def _redactor(machine: Machine | None) -> Redactor:
    """What this process knows about the user: home, names, host, secret variables."""
    import getpass
    import os
    import platform
    import socket

    from bnb_provision.doctor.redact import redactor_for

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        user = ""
    return redactor_for(
        machine,
        environ=os.environ,
        home=str(Path.home()),
        user=user,
        hosts=(socket.gethostname(), platform.node()),
    )


def _issue_report(machine: Machine, findings_text: str, redactor: Redactor) -> str:
    """The machine and the findings in a folded block, safe to paste into a public issue."""
    from bnb_provision.cli.render import render_machine

    body = render_machine(machine) + "\n\n" + findings_text
    return (
        "<details><summary>bnb-provision doctor report</summary>\n\n```\n"
        + redactor.text(body)
        + "\n```\n</details>"
    )
