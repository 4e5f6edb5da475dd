"""``verify``: prove bitsandbytes' kernels run inside an environment."""

from __future__ import annotations

import sys

import click

from bnb_provision.cli.app import emit_json, json_option, python_option
from bnb_provision.cli.params import UserPath

__all__ = ["verify"]


@click.command(short_help="prove bitsandbytes' kernels run in an environment")
@python_option("The environment's interpreter: a path, or a version (3.12) to find.")
@click.option(
    "--env", "env_dir", metavar="DIR", type=UserPath(), help="The virtual environment's folder."
)
@json_option
def verify(python: str | None, env_dir: str | None, as_json: bool) -> None:
    """Prove bitsandbytes' kernels run: NF4/FP4, Linear4bit, LLM.int8(), 8-bit Adam.

    Runs inside the environment on every visible GPU (or the CPU backend); exits 9
    when a check fails.

    \b
    Example:
        bnb-provision verify --env .venv-bnb
        bnb-provision verify --python /opt/conda/bin/python --json
    """
    from bnb_provision.cli.render import render_verify
    from bnb_provision.detect.interpreter import interpreter_for_request
    from bnb_provision.detect.target import find_env_python
    from bnb_provision.env.verify import run_verify
    from bnb_provision.errors import FindingsError

    if python and env_dir:
        raise click.UsageError("give --python or --env, not both")
    if env_dir:
        exe = str(find_env_python(env_dir))
    else:
        exe = interpreter_for_request(python) if python is not None else sys.executable
    report = run_verify(exe)
    if as_json:
        emit_json(report.data)
    else:
        click.echo(render_verify(report.data))
    if not report.ok:
        raise FindingsError("verify failed: " + "; ".join(report.failures()[:3]))
