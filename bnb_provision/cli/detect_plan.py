"""``detect`` (what this machine and an environment have) and ``plan`` (the combination
that runs on a machine, and why)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bnb_provision.cli.app import (
    emit_json,
    from_option,
    json_option,
    machine_and_pin_options,
    python_option,
)
from bnb_provision.cli.params import UserPath

if TYPE_CHECKING:
    from collections.abc import Callable

    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.detect.reports import Report
    from bnb_provision.plan.analysis import BnbLoadReport
    from bnb_provision.plan.constraints import Constraints, MachineFlags
    from bnb_provision.plan.model import Plan

__all__ = ["detect", "plan"]


@click.command(short_help="what this machine and an environment have")
@python_option("Also inspect this interpreter's environment: a path, or a version (3.12) to find.")
@click.option(
    "--env",
    "env_dir",
    metavar="DIR",
    type=UserPath(path_type=str),
    help="Also inspect this virtual environment (DIR/bin/python).",
)
@json_option
def detect(python: str | None, env_dir: str | None, as_json: bool) -> None:
    """Show the driver, GPUs, OS and (optionally) an environment, without importing torch.

    \b
    Example:
        bnb-provision detect --python .venv/bin/python
        bnb-provision detect --json > machine.json   # a snapshot for plan/lock --machine
    """
    from bnb_provision.detect.interpreter import interpreter_for_request
    from bnb_provision.detect.machine import detect_machine

    if python and env_dir:
        raise click.UsageError("give --python or --env, not both")
    exe = interpreter_for_request(python) if python is not None else None
    machine = detect_machine(python=exe, env_dir=env_dir)
    if as_json:
        emit_json(machine.to_dict())
        return
    from bnb_provision.cli.render import render_machine

    click.echo(render_machine(machine, _load_report(machine)))


def _load_report(machine: Machine) -> BnbLoadReport | None:
    """Which bitsandbytes library the environment's loader picks (for the table only)."""
    if machine.env is None or machine.env.bitsandbytes is None:
        return None
    from bnb_provision.db.load import load_db
    from bnb_provision.plan.analysis import bnb_load_report

    return bnb_load_report(machine, load_db())


@click.command(short_help="the combination that runs here, and why")
@click.option(
    "--machine",
    "machine_file",
    metavar="FILE",
    type=UserPath(path_type=Path),
    help="Plan for the machine in this snapshot (bnb-provision detect --json).",
)
@from_option
@machine_and_pin_options
@click.option("--all-rejected", is_flag=True, help="List every rejected alternative.")
@json_option
def plan(
    machine_file: Path | None,
    from_file: str | None,
    flags: MachineFlags,
    constraints: Constraints,
    all_rejected: bool,
    as_json: bool,
) -> None:
    """Choose the torch / CUDA / bitsandbytes / Hugging Face combination, and explain it.

    \b
    Example:
        bnb-provision plan
        bnb-provision plan --gpu "GTX 1080 Ti" --driver 550.54.14 --python 3.11
        bnb-provision plan --machine machine.json --torch 2.8 --json
        bnb-provision plan --from issue.txt      # pasted nvidia-smi, collect_env, pip list...
    """
    from bnb_provision.db.load import load_db
    from bnb_provision.plan.inputs import apply_flags, plan_for
    from bnb_provision.plan.model import plan_to_dict

    if machine_file is not None and from_file is not None:
        raise click.UsageError("give --machine or --from, not both")
    db = load_db()
    if from_file is None:
        result = plan_for(_plan_machine(machine_file, flags, db), db, constraints)
        report = None
    else:
        report = _read_report(from_file, flags)
        result = _explained(
            report, lambda: plan_for(apply_flags(report.machine(), flags, db), db, constraints)
        )
    if as_json:
        data = plan_to_dict(result)
        if report is not None:
            data["assumptions"] = list(report.assumptions)
            data["report"] = report.summary()
        emit_json(data)
        return
    from bnb_provision.cli.render import render_plan, render_report

    if report is not None:
        click.echo(render_report(report))
    click.echo(render_plan(result, all_rejected=all_rejected))


def _read_report(from_file: str, flags: MachineFlags) -> Report:
    """The report, read for the flags' Python and driver (this interpreter's Python when
    neither the report nor --python gives one)."""
    from bnb_provision.detect.host import detect_python
    from bnb_provision.detect.reports import load_report

    python = flags.python or detect_python().minor
    given = flags.python is not None
    return load_report(from_file, python=python, python_given=given, driver=flags.driver)


def _explained(report: Report, make: Callable[[], Plan]) -> Plan:
    """``make()``; when no plan fits, the report's assumptions go to stderr before the
    error, since they may be why (a GPU named without its driver is the usual one)."""
    from bnb_provision.cli.render import render_report
    from bnb_provision.errors import NoPlanError

    try:
        if report.unplaced_gpus:
            raise NoPlanError(
                f"{report.label} names GPU(s) ({', '.join(dict.fromkeys(report.unplaced_gpus))}) "
                "but not the NVIDIA driver, which decides the CUDA builds that run: give "
                "--driver VERSION (the 'Driver Version' nvidia-smi prints), or paste "
                "nvidia-smi's output into the report"
            )
        return make()
    except NoPlanError:
        click.echo(render_report(report), err=True)
        raise


def _plan_machine(machine_file: Path | None, flags: MachineFlags, db: CompatDB) -> Machine:
    """The snapshot, the flags alone, or this machine: each with the flags applied."""
    from bnb_provision.detect.machine import detect_machine
    from bnb_provision.detect.snapshot import load_machine
    from bnb_provision.plan.inputs import apply_flags

    if machine_file is not None:
        return apply_flags(load_machine(machine_file, python=flags.python), flags, db)
    if flags.any_machine_flag:
        return apply_flags(None, flags, db)
    return apply_flags(detect_machine(), flags, db)
