"""``doctor`` (what is wrong with an environment) and ``explain`` (the cause of an error
message); both print findings, as a table, a pasteable report or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from bnb_provision.cli.app import emit_json, from_option, json_option, options, python_option
from bnb_provision.cli.params import MODEL_SIZE, UserFile, UserPath
from bnb_provision.vocab import QUANTS, Quant

if TYPE_CHECKING:
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.reports import Report
    from bnb_provision.doctor.findings import Finding
    from bnb_provision.doctor.redact import Redactor
    from bnb_provision.fit.model import ModelSpec

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
    from_option,
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
    from_file: str | None,
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
        bnb-provision doctor --from issue.txt    # a pasted collect_env, pip list...
    """
    from bnb_provision.db.load import load_db
    from bnb_provision.doctor.diagnose import DoctorOptions, diagnose
    from bnb_provision.env.stamp import read_stamp
    from bnb_provision.errors import FindingsError

    if sum(x is not None for x in (python, env_dir, machine_file, from_file)) > 1:
        raise click.UsageError("give one of --python, --env, --machine, --from")
    pasted = _report(from_file) if from_file is not None else None
    machine = pasted.machine() if pasted else _target_machine(python, env_dir, machine_file)
    if machine.env is None:
        raise click.UsageError(
            "doctor needs an environment: --python PATH, --env DIR, or a "
            "--machine snapshot taken with --python"
        )
    model = _model_shape(config_path, model_params)
    stamp = read_stamp(machine.env.prefix) if machine.env.prefix and machine_file is None else None
    findings = diagnose(machine, load_db(), DoctorOptions(model=model, quant=quant, stamp=stamp))
    what = f"report {pasted.label}" if pasted else machine.env.python.executable or "snapshot"
    _emit_findings(
        findings,
        machine=machine,
        as_json=as_json,
        report=report,
        header=f"bnb-provision doctor: {what}",
        pasted=pasted,
    )
    if any(f.severity == "error" for f in findings):
        raise FindingsError(f"{sum(f.severity == 'error' for f in findings)} error(s) found")


def _report(from_file: str) -> Report:
    """The pasted report; one without any Python environment is refused (exit 4)."""
    from bnb_provision.detect.host import detect_python
    from bnb_provision.detect.reports import load_report
    from bnb_provision.errors import SnapshotError

    pasted = load_report(from_file, python=detect_python().minor)
    if pasted.snapshot.get("env") is None:
        raise SnapshotError(
            f"{pasted.label}: the report shows no Python environment (no torch, "
            "bitsandbytes or package versions) for doctor to check; paste the output of "
            "pip list or python -m torch.utils.collect_env too"
        )
    return pasted


def _target_machine(python: str | None, env_dir: str | None, machine_file: Path | None) -> Machine:
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine

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


def _model_shape(config_path: Path | None, model_params: float | None) -> ModelSpec | None:
    """The model for the memory check, read as ``fit`` reads it (errors exit 10)."""
    from bnb_provision.fit import model_from_params, read_model

    if config_path is not None:
        return read_model(config_path)
    if model_params is not None:
        return model_from_params(model_params)
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
    pasted: Report | None = None,
) -> None:
    """The findings as JSON or a table; with ``--report``, both redacted the same way."""
    from bnb_provision.cli.render import render_findings, render_report
    from bnb_provision.doctor.findings import findings_to_dict

    redactor = _redactor(machine) if report else None
    if as_json:
        subject: dict[str, Any] = {} if machine is None else {"machine": machine.to_dict()}
        data = findings_to_dict(findings, subject=subject)
        if pasted is not None:
            data["assumptions"] = list(pasted.assumptions)
            subject["report"] = pasted.summary()
        emit_json(data if redactor is None else cast("dict[str, Any]", redactor.data(data)))
        return
    text = render_findings(findings, header)
    if pasted is not None:
        text = render_report(pasted) + "\n" + text
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
