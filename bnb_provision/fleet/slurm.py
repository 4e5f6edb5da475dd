"""A fleet run through Slurm: the shipped batch script, rendered for a partition and nodes.

The script (``templates/fleet/bnb-fleet.sbatch``) starts one ``srun`` step per node of its
allocation, each writing its own files into the results folder, which every node must see
(a shared file system, as Slurm jobs assume). This module renders its ``#SBATCH`` lines
and settings, submits it with ``sbatch --wait`` through :mod:`bnb_provision.core.process`,
and reads the folder.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.core import process
from bnb_provision.errors import ExternalToolError, LockfileError
from bnb_provision.fleet.job import (
    DEFAULT_NODE_COMMAND,
    DEFAULT_WORKDIR,
    NODES_FILE,
    FleetJob,
    prepare_output,
    template,
)
from bnb_provision.fleet.report import FleetReport, read_results

__all__ = ["SCRIPT", "SlurmTarget", "render_script", "run_slurm", "sbatch_command"]

SCRIPT: Final = "bnb-fleet.sbatch"
_SBATCH_MARKS: Final = ("#BNB-FLEET-SBATCH-BEGIN\n", "#BNB-FLEET-SBATCH-END\n")
_SETTINGS_MARKS: Final = ("#BNB-FLEET-SETTINGS-BEGIN\n", "#BNB-FLEET-SETTINGS-END\n")
_NO_SBATCH: Final = (
    "sbatch was not found: run this on a node that can submit Slurm jobs "
    "(Slurm is the site's own; there is nothing to pip install)"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SlurmTarget:
    """Which nodes: an allocation of ``nodes`` nodes (or ``nodelist``) in ``partition``.

    What is left as None is the site's default. ``sbatch_args`` are more ``#SBATCH``
    options (``--account=ml``, ``--constraint=a100``).
    """

    nodes: int | None = None
    partition: str | None = None
    nodelist: str | None = None
    time_limit: str | None = None
    sbatch_args: tuple[str, ...] = ()


def _sbatch_lines(job: FleetJob, target: SlurmTarget) -> list[str]:
    if target.nodes is not None and target.nodes < 1:
        raise LockfileError(f"--nodes {target.nodes}: a fleet run needs at least one node")
    options = [
        f"--partition={target.partition}" if target.partition else "",
        f"--nodes={target.nodes}" if target.nodes else "",
        f"--nodelist={target.nodelist}" if target.nodelist else "",
        f"--time={target.time_limit}" if target.time_limit else "",
        f"--output={job.output / 'slurm-%j.out'}",
        *target.sbatch_args,
    ]
    for option in options:
        if any(c.isspace() for c in option):
            raise LockfileError(
                f"{option!r}: an #SBATCH line cannot hold spaces; give values without them"
            )
    return [f"#SBATCH {option}\n" for option in options if option]


def _array(values: tuple[str, ...]) -> str:
    return "(" + " ".join(shlex.quote(v) for v in values) + ")"


def _settings(job: FleetJob) -> list[str]:
    command = job.node_command if job.node_command is not None else DEFAULT_NODE_COMMAND
    settings = {
        "BNB_FLEET_MODE": shlex.quote(job.mode),
        "BNB_FLEET_OUT": shlex.quote(str(job.output)),
        "BNB_FLEET_COMMAND": _array(command),
        "BNB_FLEET_WORKDIR": shlex.quote(job.workdir or DEFAULT_WORKDIR),
        "BNB_FLEET_LOCKS": shlex.quote(str(job.locks) if job.locks else ""),
        "BNB_FLEET_ARGS": _array(job.args),
    }
    return [f"{name}={value}\n" for name, value in settings.items()]


def _replace_between(text: str, marks: tuple[str, str], lines: list[str]) -> str:
    begin, end = marks
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "".join(lines) + text[stop:]


def render_script(job: FleetJob, target: SlurmTarget) -> str:
    """The batch script for ``job`` on ``target``: #SBATCH lines and settings filled in."""
    job = job.checked()
    text = template(SCRIPT).read_text(encoding="utf-8")
    text = _replace_between(text, _SBATCH_MARKS, _sbatch_lines(job, target))
    return _replace_between(text, _SETTINGS_MARKS, _settings(job))


def sbatch_command(script: Path, program: str = "sbatch") -> tuple[str, ...]:
    """Submit ``script`` and wait for the job to end (``sbatch --wait``), printing its id."""
    return (program, "--wait", "--parsable", str(script))


def _job_id(stdout: str) -> str | None:
    lines = stdout.strip().splitlines()
    return (lines[0].split(";")[0].strip() or None) if lines else None


def _submit(argv: tuple[str, ...], job: FleetJob) -> process.Completed:
    try:
        return process.run(argv, check=False, timeout=job.timeout, cwd=job.output)
    except ExternalToolError as exc:
        raise ExternalToolError(
            f"{exc}; the job may still be queued or running (squeue --name bnb-fleet): "
            f"scancel it, or wait and read its results with "
            f"bnb-provision fleet report {job.output}",
            command=argv,
        ) from exc


def run_slurm(job: FleetJob, target: SlurmTarget) -> FleetReport:
    """Submit the rendered script, wait for the job, and read what the nodes wrote.

    Node failures are in the report, not raised. Raises ExternalToolError when sbatch is
    missing, refuses the job (a bad partition, say) or the job ends before naming its
    nodes; LockfileError for an output folder that is not empty (without ``force``).
    """
    job = job.checked()
    program = process.find_program("sbatch")
    if program is None:
        raise ExternalToolError(_NO_SBATCH)
    text = render_script(job, target)
    prepare_output(job.output, force=job.force)
    script = job.output / SCRIPT
    try:
        script.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LockfileError(f"{script}: cannot write the batch script ({exc})") from exc
    argv = sbatch_command(script, program)
    done = _submit(argv, job)
    job_id = _job_id(done.stdout)
    log = job.output / f"slurm-{job_id}.out" if job_id else None
    if not (job.output / NODES_FILE).is_file():
        said = done.stderr + (log.read_text(errors="replace") if log and log.is_file() else "")
        raise ExternalToolError.exited(argv, done.returncode, said or done.stdout)
    return read_results(job.output, engine="slurm", command=argv, log=log, job_id=job_id)
