"""``bnb-provision fleet``: detect or init on every node, through Ansible or Slurm.

Each command is a docstring, an example and one library call (:mod:`bnb_provision.fleet`);
the text it prints is here.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from bnb_provision.cli.app import emit_json
from bnb_provision.errors import FindingsError

__all__ = ["fleet", "render_fleet"]

_NAMED = 5  # nodes named in the closing error line; the table names them all
JSON_HELP = "Print machine-readable JSON (schema bnb-provision.fleet/1) instead of a table."


def render_fleet(report: Any) -> str:
    """The report as a table: one row per node, its status and what it found or why not."""
    from bnb_provision.cli.render import table

    engine = f" through {report.engine}" if report.engine else ""
    job = f" (job {report.job_id})" if report.job_id else ""
    total = len(report.nodes)
    head = (
        f"fleet {report.mode}{engine}{job}: {report.count('ok')} of {total} nodes ok, "
        f"{report.count('unreachable')} unreachable, {report.count('failed')} failed"
    )
    rows = [(n.node, n.status, n.summary if n.status == "ok" else n.why) for n in report.nodes]
    lines = [head, "", table(rows, ("node", "status", "result" if report.ok else "result / why"))]
    lines += ["", f"results: {report.folder}"]
    if report.log is not None:
        lines.append(f"engine log: {report.log}")
    if report.mode == "snapshot" and report.count("ok"):
        lines.append(f"next: bnb-provision lock --machine {report.folder} -o locks")
    return "\n".join(lines)


def _finish(report: Any, as_json: bool) -> None:
    """Print the report; exit 9 when a node is not ok (after printing it)."""
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(render_fleet(report))
    if not report.ok:
        bad = ", ".join(f"{n.node} ({n.status})" for n in report.problems()[:_NAMED])
        more = "" if len(report.problems()) <= _NAMED else ", ..."
        raise FindingsError(
            f"{len(report.problems())} of {len(report.nodes)} nodes did not succeed: {bad}{more}"
        )


def _slurm_options(f: Any) -> Any:
    options = [
        click.option("--partition", metavar="NAME", help="Slurm: the partition."),
        click.option("--nodes", type=click.IntRange(min=1), help="Slurm: how many nodes."),
        click.option("--nodelist", metavar="LIST", help="Slurm: these nodes (node[01-40])."),
        click.option("--time", "time_limit", metavar="LIMIT", help="Slurm: the job's time limit."),
        click.option(
            "--sbatch-arg",
            "sbatch_args",
            multiple=True,
            metavar="OPTION",
            help="Slurm: one more #SBATCH option, e.g. --account=ml; repeatable.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _run_options(f: Any) -> Any:
    options = [
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(path_type=Path, file_okay=False),
            help="The folder the results are gathered in (one <node>.json each).",
        ),
        click.option("--inventory", metavar="FILE", help="Ansible: the inventory of the nodes."),
        click.option("--limit", metavar="PATTERN", help="Ansible: only these hosts."),
        click.option("--slurm", is_flag=True, help="Run as a Slurm job instead of Ansible."),
        click.option(
            "--node-command",
            metavar="CMD",
            help="How nodes run bnb-provision (default: the inventory's, else bnb-provision).",
        ),
        click.option(
            "--workdir",
            metavar="DIR",
            help="Each node's working folder; {node} is its name (default ~/bnb-fleet/{node}).",
        ),
        click.option("--force", is_flag=True, help="Replace the results of a run in --output."),
        click.option("--timeout", type=float, metavar="SECONDS", help="Stop waiting after this."),
        click.option("--json", "as_json", is_flag=True, help=JSON_HELP),
        click.argument("node_args", nargs=-1, metavar="[-- ARGS]"),
    ]
    f = _slurm_options(f)
    for option in reversed(options):
        f = option(f)
    return f


def _job_and_target(mode: str, kw: dict[str, Any], locks: Path | None = None) -> Any:
    from bnb_provision.fleet.ansible import AnsibleTarget
    from bnb_provision.fleet.job import FleetJob
    from bnb_provision.fleet.slurm import SlurmTarget

    slurm_only = [k for k in ("partition", "nodes", "nodelist", "time_limit") if kw[k]]
    slurm_only += ["sbatch_arg"] if kw["sbatch_args"] else []
    if kw["slurm"] == bool(kw["inventory"]):
        raise click.UsageError("give --inventory FILE (Ansible) or --slurm, one of them")
    if kw["slurm"] and kw["limit"]:
        raise click.UsageError("--limit is for Ansible; with --slurm use --nodelist")
    if not kw["slurm"] and slurm_only:
        raise click.UsageError(f"--{slurm_only[0].replace('_', '-')} goes with --slurm")
    command = tuple(shlex.split(kw["node_command"])) if kw["node_command"] else None
    job = FleetJob(
        mode=mode,  # type: ignore[arg-type]
        output=kw["output"],
        locks=locks,
        node_command=command,
        workdir=kw["workdir"],
        args=tuple(kw["node_args"]),
        force=kw["force"],
        timeout=kw["timeout"],
    )
    if not kw["slurm"]:
        return job, AnsibleTarget(inventory=kw["inventory"], limit=kw["limit"])
    target = SlurmTarget(
        nodes=kw["nodes"],
        partition=kw["partition"],
        nodelist=kw["nodelist"],
        time_limit=kw["time_limit"],
        sbatch_args=tuple(kw["sbatch_args"]),
    )
    return job, target


@click.group()
def fleet() -> None:
    """Run detect or init on every node of a fleet, through Ansible or Slurm.

    \b
    snapshot      detect --json on every node; one <node>.json each, for lock --machine
    init          init --lock on every node; one <node>.json each, with its verify result
    slurm-script  print the batch script a Slurm run submits
    report        read the results folder of a run (also one started by hand)

    A node that cannot be reached or fails is named with the reason, and the command
    exits 9; nothing is retried. snapshot, init and report print a table, or --json
    (schema bnb-provision.fleet/1). Ansible comes with pip install 'bnb-provision[fleet]';
    Slurm is the site's.

    \b
    Example:
        bnb-provision fleet snapshot --inventory hosts.ini -o snapshots/
        bnb-provision lock --machine snapshots/ -o locks/
        bnb-provision fleet init --inventory hosts.ini --lock locks/ -o results/
    """


@fleet.command()
@_run_options
def snapshot(**kw: Any) -> None:
    """Take a detect snapshot on every node and gather them into one folder.

    Arguments after -- go to detect on every node ({node} becomes the node's name).

    \b
    Example:
        bnb-provision fleet snapshot --inventory hosts.ini -o snapshots/
        bnb-provision fleet snapshot --slurm --partition gpu --nodes 4 -o snapshots/
        bnb-provision lock --machine snapshots/ -o locks/
    """
    from bnb_provision.fleet.run import run_fleet

    _finish(run_fleet(*_job_and_target("snapshot", kw)), kw["as_json"])


@fleet.command()
@click.option(
    "--lock",
    "locks",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="The team's lock folder (bnb-provision lock -o DIR); each node picks its lock.",
)
@_run_options
def init(locks: Path, **kw: Any) -> None:
    """Run init --lock on every node and gather each node's environment and verify result.

    Arguments after -- go to init on every node ({node} becomes the node's name).

    \b
    Example:
        bnb-provision fleet init --inventory hosts.ini --lock locks/ -o results/
        bnb-provision fleet init --slurm --nodes 4 --lock locks/ -o results/ -- --no-verify
    """
    from bnb_provision.fleet.run import run_fleet

    _finish(run_fleet(*_job_and_target("init", kw, locks)), kw["as_json"])


@fleet.command("slurm-script")
@click.argument("mode", type=click.Choice(["snapshot", "init"]))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder the job gathers its results in (every node must see it).",
)
@click.option("--lock", "locks", type=click.Path(path_type=Path, file_okay=False))
@click.option("--node-command", metavar="CMD", help="How nodes run bnb-provision.")
@click.option("--workdir", metavar="DIR", help="Each node's working folder ({node}: its name).")
@_slurm_options
@click.argument("node_args", nargs=-1, metavar="[-- ARGS]")
def slurm_script(mode: str, locks: Path | None, **kw: Any) -> None:
    """Print the batch script a Slurm fleet run submits, to keep or submit with sbatch.

    \b
    Example:
        bnb-provision fleet slurm-script snapshot --partition gpu --nodes 4 -o snaps > job.sh
        sbatch job.sh && bnb-provision fleet report snaps
    """
    from bnb_provision.fleet.slurm import render_script

    kw.update(slurm=True, inventory=None, limit=None, force=False, timeout=None, as_json=False)
    click.echo(render_script(*_job_and_target(mode, kw, locks)), nl=False)


@fleet.command()
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def report(folder: Path, as_json: bool) -> None:
    """Read the results folder of a fleet run: every node ok, unreachable or failed, and why.

    \b
    Example:
        bnb-provision fleet report results/
        bnb-provision fleet report snapshots/ --json
    """
    from bnb_provision.fleet.report import read_results

    _finish(read_results(folder.resolve()), as_json)
