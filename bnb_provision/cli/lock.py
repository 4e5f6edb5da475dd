"""``lock`` (hash-pinned lock files for this machine or a team's machines) and ``bundle``
(a wheelhouse of a lock, for air-gapped machines)."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bnb_provision.cli.app import (
    emit_json,
    json_option,
    log_to_stderr,
    machine_and_pin_options,
    options,
    source_options,
)
from bnb_provision.cli.params import UserPath
from bnb_provision.vocab import STACKS, Stack

if TYPE_CHECKING:
    from bnb_provision.lock.lockset import LockOptions, LockRequest, LockSet
    from bnb_provision.plan.constraints import Constraints, MachineFlags

__all__ = ["bundle", "lock"]

_output_options = options(
    click.option(
        "--stack",
        type=click.Choice(STACKS),
        default="bnb",
        show_default=True,
        help="Which quantization stack the lock is for.",
    ),
    click.option(
        "-o",
        "--output",
        type=UserPath(path_type=Path),
        default=Path("locks"),
        show_default=True,
        help="Folder for the lock files and the manifest.",
    ),
    source_options(
        offline_help="Resolve from --find-links only, no index.",
        find_links_help="A wheelhouse (bnb-provision bundle writes one).",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="Replace existing lock files and the manifest (old ones kept as .bak).",
    ),
    click.option(
        "--upgrade",
        is_flag=True,
        help="Resolve afresh; by default an existing lock's versions are kept where the plan "
        "allows.",
    ),
    click.option("--dockerfile", is_flag=True, help="Also write a Dockerfile per Linux lock."),
    click.option(
        "--uv-project", is_flag=True, help="Also write the uv pyproject.toml of each lock."
    ),
)


_NOT_IN_REGENERATE = frozenset({"--force", "--check", "--json", "--upgrade"})


def regenerate_command(argv: list[str]) -> str:
    """The command line that regenerates a lock set, as the files record it: this one less
    the flags that do not change what is written (so ``lock --check`` and ``lock --force``
    record the same line)."""
    return shlex.join(["bnb-provision", *(a for a in argv if a not in _NOT_IN_REGENERATE)])


def _lock_options(f: Callable[..., None]) -> Callable[..., None]:
    """Where the lock files go, what uv resolves from: the command receives ``opts``
    (LockOptions), with the command line that regenerates the locks."""

    @functools.wraps(f)
    def command(
        *,
        stack: Stack,
        output: Path,
        offline: bool,
        find_links: tuple[Path, ...],
        index_url: str,
        torch_index: str | None,
        force: bool,
        upgrade: bool,
        dockerfile: bool,
        uv_project: bool,
        **kw: Any,
    ) -> None:
        from bnb_provision.lock.lockset import LockOptions, as_stack

        if offline and not find_links:
            raise click.UsageError("--offline needs --find-links DIR (a wheelhouse)")
        opts = LockOptions(
            output=output,
            stack=as_stack(stack),
            default_index=index_url,
            torch_index_template=torch_index,
            offline=offline,
            find_links=tuple(p.resolve() for p in find_links),
            force=force,
            upgrade=upgrade,
            dockerfile=dockerfile,
            uv_project=uv_project,
            regenerate=regenerate_command(sys.argv[1:]),
        )
        f(opts=opts, **kw)

    return _output_options(command)


@click.command(short_help="hash-pinned lock files for this machine or a team's machines")
@click.option(
    "--machine",
    "machine_files",
    multiple=True,
    metavar="FILE|DIR",
    type=UserPath(path_type=Path, exists=True),
    help="A detect snapshot, or a folder of them; repeatable.",
)
@machine_and_pin_options
@_lock_options
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing: resolve again into a scratch folder and exit 10 with a diff when "
    "the committed locks or the manifest differ (for CI).",
)
@json_option
def lock(
    machine_files: tuple[Path, ...],
    flags: MachineFlags,
    constraints: Constraints,
    opts: LockOptions,
    check: bool,
    as_json: bool,
) -> None:
    """Write hash-pinned lock files (requirements.txt + pylock.toml) through uv.

    Machines that need the same plan share a lock; a manifest maps each machine class
    to its lock so init can pick it. With --check, nothing is written: the same command
    is resolved again and compared with the committed files (exit 10 when they differ).

    \b
    Example:
        bnb-provision lock -o locks
        bnb-provision lock --machine snapshots/ -o locks --dockerfile
        bnb-provision lock --os windows --gpu "RTX 4090" --driver 572.61 --python 3.12
        bnb-provision lock --machine snapshots/ -o locks --check
    """
    from bnb_provision.lock.lockset import LockRequest, lock_request

    request = LockRequest(machine_files=machine_files, flags=flags, constraints=constraints)
    if check:
        _check(request, opts, as_json)
        return
    result = lock_request(request, opts, log=log_to_stderr(as_json))
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_lock(result)


def _check(request: LockRequest, opts: LockOptions, as_json: bool) -> None:
    """lock --check: the report (a diff per file that differs), exit 10 on a difference."""
    from bnb_provision.errors import LockDriftError
    from bnb_provision.lock.check import check_lock_set

    report = check_lock_set(request, opts, log=log_to_stderr(as_json))
    if as_json:
        emit_json(report.to_dict())
    else:
        for d in report.differences:
            what = {
                "changed": "differs from a fresh lock",
                "missing": "is missing (a fresh lock writes it)",
                "stale": "is no longer written (a machine or a group went away)",
            }[d.status]
            click.echo(f"{opts.output / d.name}: {what}")
            if d.diff:
                click.echo(d.diff, nl=False)
        if report.ok:
            click.echo(f"{opts.output}: the {len(report.files)} lock files are up to date")
    if not report.ok:
        raise LockDriftError(
            f"{opts.output}: {len(report.differences)} file(s) differ from what the DB and "
            "the snapshots give now; run the same command without --check (with --force) "
            "to write them, and commit the result"
        )


def _print_lock(result: LockSet) -> None:
    """Each lock with its machines and changes; machines left unlocked go to stderr."""
    for r in result.results:
        click.echo(
            f"{r.requirements}\n{r.pylock}\n  for: {', '.join(r.spec.machines)} "
            f"({len(r.packages)} packages, {r.seconds:.1f} s)"
        )
        for change in r.changed:
            click.echo(f"  {change}")
        for warning in r.spec.warnings:
            click.echo(f"warning: {r.spec.name}: {warning}", err=True)
    for m, why in result.unplanned:
        click.echo(f"not locked: {m}: {why}", err=True)
    click.echo(f"manifest: {result.manifest}")


@click.command(short_help="a wheelhouse of a lock, for air-gapped machines")
@click.argument("lock_file", type=UserPath(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=UserPath(path_type=Path),
    default=Path("wheelhouse"),
    show_default=True,
    help="The wheelhouse folder.",
)
@json_option
def bundle(lock_file: Path, output: Path, as_json: bool) -> None:
    """Download every file of a pylock.toml into a wheelhouse, checking each sha256.

    \b
    Example:
        bnb-provision bundle locks/pylock.bnb-linux-x86_64-py3_12-....toml -o wheelhouse
        # then, on the air-gapped machine:
        bnb-provision init --offline --find-links wheelhouse
    """
    from bnb_provision.lock.bundle import bundle_lock

    result = bundle_lock(lock_file, output, log=log_to_stderr(as_json))
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(
        f"{output}: {len(result.downloaded)} downloaded, {len(result.present)} already "
        "there, all sha256-checked"
    )
