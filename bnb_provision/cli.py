"""The command line: each command is a docstring, an example and one library call.

Library errors become ``Error: ...`` on stderr and their own exit code (see
``bnb_provision.errors`` and README.md). Usage errors are click's (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bnb_provision import __version__
from bnb_provision.errors import ProvisionError

JSON_HELP = "Print machine-readable JSON (versioned schema) instead of a table."


class _Group(click.Group):
    """Turn library errors into ``Error: ...`` and their exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnb-provision")
def cli() -> None:
    """Set up, lock and repair bitsandbytes / PyTorch / CUDA stacks.

    \b
    detect  what this machine and an environment have
    plan    the combination that runs here, and why
    """


@cli.command()
@click.option(
    "--python",
    "python",
    metavar="PATH",
    help="Also inspect the environment of this Python interpreter.",
)
@click.option(
    "--env",
    "env_dir",
    metavar="DIR",
    type=click.Path(path_type=str),
    help="Also inspect this virtual environment (DIR/bin/python).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def detect(python: str | None, env_dir: str | None, as_json: bool) -> None:
    """Show the driver, GPUs, OS and (optionally) an environment, without importing torch.

    \b
    Example:
        bnb-provision detect --python .venv/bin/python
        bnb-provision detect --json > machine.json   # a snapshot for plan/lock --machine
    """
    from bnb_provision.machine import detect_machine

    if python and env_dir:
        raise click.UsageError("give --python or --env, not both")
    machine = detect_machine(python=python, env_dir=env_dir)
    if as_json:
        _emit_json(machine.to_dict())
        return
    from bnb_provision.render import render_machine

    report = None
    if machine.env is not None and machine.env.bitsandbytes is not None:
        from bnb_provision.analysis import bnb_load_report
        from bnb_provision.compat import load_db

        report = bnb_load_report(machine, load_db())
    click.echo(render_machine(machine, report))


@cli.command()
@click.option(
    "--machine",
    "machine_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Plan for the machine in this snapshot (bnb-provision detect --json).",
)
@click.option(
    "--os",
    "os_name",
    type=click.Choice(["linux", "windows", "macos"]),
    help="Plan for this OS instead of this machine's.",
)
@click.option("--arch", type=click.Choice(["x86_64", "aarch64"]), help="CPU architecture.")
@click.option("--driver", metavar="VERSION", help="NVIDIA driver version, e.g. 570.133.07.")
@click.option(
    "--gpu",
    "gpus",
    multiple=True,
    metavar="NAME|X.Y",
    help="A GPU by name ('RTX 3090') or compute capability ('8.6'); repeatable.",
)
@click.option("--python", "python", metavar="X.Y", help="Python version of the environment.")
@click.option("--torch", "torch", metavar="VERSION", help="Pin torch (2.8 or 2.8.0).")
@click.option("--bnb", "bnb", metavar="VERSION", help="Pin bitsandbytes (0.45 or 0.45.5).")
@click.option("--cuda", "cuda", metavar="X.Y|cpu", help="Pin the CUDA build (12.6) or cpu.")
@click.option(
    "--profile",
    type=click.Choice(["inference", "qlora"]),
    default="inference",
    show_default=True,
    help="inference, or qlora (adds peft and trl).",
)
@click.option("--all-rejected", is_flag=True, help="List every rejected alternative.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def plan(
    machine_file: Path | None,
    os_name: str | None,
    arch: str | None,
    driver: str | None,
    gpus: tuple[str, ...],
    python: str | None,
    torch: str | None,
    bnb: str | None,
    cuda: str | None,
    profile: str,
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
    from bnb_provision.compat import load_db
    from bnb_provision.machine import detect_machine, load_machine
    from bnb_provision.planning import MachineFlags, apply_flags, plan_for, plan_to_dict
    from bnb_provision.resolve import Constraints

    db = load_db()
    flags = MachineFlags(os=os_name, arch=arch, driver=driver, gpus=gpus, python=python)
    if machine_file is not None:
        machine = apply_flags(load_machine(machine_file), flags, db)
    elif flags.any_machine_flag:
        machine = apply_flags(None, flags, db)
    else:
        machine = apply_flags(detect_machine(), flags, db)
    result = plan_for(
        machine, db, Constraints(torch=torch, bnb=bnb, cuda=cuda, python=python, profile=profile)
    )
    if as_json:
        _emit_json(plan_to_dict(result))
        return
    from bnb_provision.render import render_plan

    click.echo(render_plan(result, all_rejected=all_rejected))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bnb-provision")


if __name__ == "__main__":  # pragma: no cover
    main()
