"""``detect`` (what this machine and an environment have) and ``plan`` (the combination
that runs on a machine, and why)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bnb_provision.cli.app import emit_json, json_option, machine_and_pin_options, python_option
from bnb_provision.cli.params import UserPath

if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.plan.analysis import BnbLoadReport
    from bnb_provision.plan.constraints import Constraints, MachineFlags

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
@machine_and_pin_options
@click.option("--all-rejected", is_flag=True, help="List every rejected alternative.")
@json_option
def plan(
    machine_file: Path | None,
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
    """
    from bnb_provision.db.load import load_db
    from bnb_provision.plan.inputs import plan_for
    from bnb_provision.plan.model import plan_to_dict

    db = load_db()
    result = plan_for(_plan_machine(machine_file, flags, db), db, constraints)
    if as_json:
        emit_json(plan_to_dict(result))
        return
    from bnb_provision.cli.render import render_plan

    click.echo(render_plan(result, all_rejected=all_rejected))


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
