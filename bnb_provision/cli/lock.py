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
)
from bnb_provision.vocab import STACKS, Stack

if TYPE_CHECKING:
    from bnb_provision.lock.lockset import LockOptions, LockSet
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
        type=click.Path(path_type=Path),
        default=Path("locks"),
        show_default=True,
        help="Folder for the lock files and the manifest.",
    ),
    click.option("--offline", is_flag=True, help="Resolve from --find-links only, no index."),
    click.option(
        "--find-links",
        "find_links",
        multiple=True,
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="A wheelhouse (bnb-provision bundle writes one).",
    ),
    click.option(
        "--index-url",
        "index_url",
        default="https://pypi.org/simple",
        show_default=True,
        envvar="BNB_PROVISION_INDEX_URL",
        show_envvar=True,
        help="The default index (a PyPI mirror).",
    ),
    click.option(
        "--torch-index-url",
        "torch_index",
        metavar="URL",
        envvar="BNB_PROVISION_TORCH_INDEX_URL",
        show_envvar=True,
        help="PyTorch index template, {variant} replaced (a mirror of download.pytorch.org).",
    ),
    click.option(
        "--force", is_flag=True, help="Replace existing lock files (old ones kept as .bak)."
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
            regenerate=shlex.join(["bnb-provision", *sys.argv[1:]]),
        )
        f(opts=opts, **kw)

    return _output_options(command)


@click.command(short_help="hash-pinned lock files for this machine or a team's machines")
@click.option(
    "--machine",
    "machine_files",
    multiple=True,
    metavar="FILE|DIR",
    type=click.Path(path_type=Path, exists=True),
    help="A detect snapshot, or a folder of them; repeatable.",
)
@machine_and_pin_options
@_lock_options
@json_option
def lock(
    machine_files: tuple[Path, ...],
    flags: MachineFlags,
    constraints: Constraints,
    opts: LockOptions,
    as_json: bool,
) -> None:
    """Write hash-pinned lock files (requirements.txt + pylock.toml) through uv.

    Machines that need the same plan share a lock; a manifest maps each machine class
    to its lock so init can pick it.

    \b
    Example:
        bnb-provision lock -o locks
        bnb-provision lock --machine snapshots/ -o locks --dockerfile
        bnb-provision lock --os windows --gpu "RTX 4090" --driver 572.61 --python 3.12
    """
    from bnb_provision.lock.lockset import LockRequest, lock_request

    request = LockRequest(machine_files=machine_files, flags=flags, constraints=constraints)
    result = lock_request(request, opts, log=log_to_stderr(as_json))
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_lock(result)


def _print_lock(result: LockSet) -> None:
    """Each lock with its machines and changes; machines left unlocked go to stderr."""
    for r in result.results:
        click.echo(
            f"{r.requirements}\n{r.pylock}\n  for: {', '.join(r.spec.machines)} "
            f"({len(r.packages)} packages, {r.seconds:.1f} s)"
        )
        for change in r.changed:
            click.echo(f"  {change}")
    for m, why in result.unplanned:
        click.echo(f"not locked: {m}: {why}", err=True)
    click.echo(f"manifest: {result.manifest}")


@click.command(short_help="a wheelhouse of a lock, for air-gapped machines")
@click.argument("lock_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
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
