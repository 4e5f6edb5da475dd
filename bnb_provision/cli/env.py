"""``init`` (a verified environment per stack, from a plan or a lock) and ``rebuild``
(after upgrades, swapping atomically, keeping backups).

Both take the same options; :func:`build_options` turns them into the library's
``BuildOptions`` in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bnb_provision.cli.app import (
    BNB_HELP,
    CUDA_HELP,
    PLAN_PYTHON_HELP,
    TORCH_HELP,
    emit_json,
    json_option,
    log_to_stderr,
    options,
    python_option,
    source_options,
)
from bnb_provision.cli.params import (
    CUDA_PIN,
    VERSION_PIN,
    UserPath,
    VersionPin,
)
from bnb_provision.vocab import PROFILES, STACKS, Profile, Stack

if TYPE_CHECKING:
    from bnb_provision.env.build import BuildOptions, BuildResult

__all__ = ["build_options", "init", "rebuild"]

_env_options = options(
    click.option(
        "--env",
        "env_dir",
        type=UserPath(path_type=Path),
        help="The environment's path (default .venv-<stack>).",
    ),
    click.option(
        "--stack",
        type=click.Choice(STACKS),
        default="bnb",
        show_default=True,
        help="Which quantization stack the environment is for.",
    ),
    click.option(
        "--lock",
        "lock_path",
        type=UserPath(path_type=Path, exists=True),
        help="Install this lock (requirements.txt, pylock.toml, or a lock folder "
        "with its manifest) instead of planning.",
    ),
    click.option(
        "--torch",
        "torch",
        type=VersionPin("system"),
        metavar="VERSION|system",
        help=TORCH_HELP.format(", or 'system' to adopt the torch already installed"),
    ),
    click.option(
        "--system-python",
        type=UserPath(path_type=Path),
        help="With --torch system: the interpreter holding torch (default: python3).",
    ),
    click.option("--bnb", "bnb", type=VERSION_PIN, metavar="VERSION", help=BNB_HELP),
    click.option("--cuda", "cuda", type=CUDA_PIN, metavar="X.Y|cpu", help=CUDA_HELP),
    python_option(PLAN_PYTHON_HELP),
    click.option(
        "--profile",
        type=click.Choice(PROFILES),
        default="inference",
        show_default=True,
        help="inference, or qlora (adds peft and trl).",
    ),
    source_options(
        offline_help="Install from --find-links only.",
        find_links_help="A wheelhouse (bnb-provision bundle writes one); repeatable.",
    ),
    click.option(
        "--cuda-without-gpu",
        is_flag=True,
        help="On a machine without NVIDIA GPU, take a CUDA lock anyway (to build an image "
        "for GPU hosts); by default such a machine takes only a CPU lock.",
    ),
    click.option("--no-verify", is_flag=True, help="Skip the kernel checks (not advised)."),
    click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing."),
    json_option,
)

_keep_option = click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="How many old environments to keep as backups.",
)


def build_options(*, keep: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """init's and rebuild's options (rebuild's with ``--keep``); the command receives
    them as ``opts`` (BuildOptions) and ``as_json``."""

    def decorate(f: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(f)
        def command(*, as_json: bool, **kw: Any) -> None:
            ctx = click.get_current_context()
            left = frozenset(
                name
                for name in ("stack", "profile")
                if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT
            )
            opts = _to_build_options(as_json=as_json, **kw)
            f(opts=dataclasses.replace(opts, defaults=left), as_json=as_json)

        return options(_env_options, *([_keep_option] if keep else []))(command)

    return decorate


def _to_build_options(
    *,
    env_dir: Path | None,
    stack: Stack,
    lock_path: Path | None,
    torch: str | None,
    system_python: Path | None,
    bnb: str | None,
    cuda: str | None,
    python: str | None,
    profile: Profile,
    offline: bool,
    find_links: tuple[Path, ...],
    index_url: str,
    torch_index: str | None,
    cuda_without_gpu: bool,
    no_verify: bool,
    dry_run: bool,
    as_json: bool,
    keep: int = 2,
) -> BuildOptions:
    from bnb_provision.detect.interpreter import version_for_request
    from bnb_provision.env.build import BuildOptions, default_env_path
    from bnb_provision.plan.constraints import Constraints

    python = version_for_request(python) if python is not None else None

    system = None
    if torch == "system":
        system = system_python or Path(_which_or_usage_error("python3"))
        torch = None
    if offline and not find_links:
        raise click.UsageError("--offline needs --find-links DIR")
    return BuildOptions(
        env=env_dir or default_env_path(stack),
        stack=stack,
        constraints=Constraints(torch=torch, bnb=bnb, cuda=cuda, python=python, profile=profile),
        lock=lock_path,
        torch_system=system,
        offline=offline,
        find_links=tuple(p.resolve() for p in find_links),
        index_url=index_url,
        torch_index_template=torch_index,
        verify=not no_verify,
        cuda_without_gpu=cuda_without_gpu,
        keep=keep,
        dry_run=dry_run,
        # uv draws its own progress when a person watches; --json stays quiet
        progress=not as_json and sys.stderr.isatty(),
    )


def _which_or_usage_error(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        raise click.UsageError(f"--torch system: no {name} on PATH; give --system-python PATH")
    return found


def _report_build(result: BuildResult, as_json: bool) -> None:
    from bnb_provision.cli.render import render_verify
    from bnb_provision.env.build import describe

    if as_json:
        emit_json(describe(result))
        return
    s = result.summary
    what = f"torch {s.torch}+{s.variant}, bitsandbytes {s.bitsandbytes}" if s else ""
    click.echo(f"{result.env}: {result.action} ({what})")
    for r in result.reasons:
        click.echo(f"  - {r}")
    if result.report is not None:
        click.echo(render_verify(result.report.data))
    if result.backups:
        click.echo("backups kept: " + ", ".join(str(b) for b in result.backups))


@click.command(short_help="a verified environment per stack, from a plan or a lock")
@build_options(keep=False)
def init(opts: BuildOptions, as_json: bool) -> None:
    """Create a verified environment for a stack: detect, plan, lock, install, verify, stamp.

    \b
    Example:
        bnb-provision init                          # .venv-bnb for this machine
        bnb-provision init --lock locks/            # the team's lock for this machine
        bnb-provision init --torch system --offline --find-links wheelhouse
    """
    from bnb_provision.env.build import init_env

    _report_build(init_env(opts, log=log_to_stderr(as_json)), as_json)


@click.command(short_help="rebuild after upgrades, swapping atomically, keeping backups")
@build_options(keep=True)
def rebuild(opts: BuildOptions, as_json: bool) -> None:
    """Rebuild after a driver or torch upgrade, without ever losing the working environment.

    Re-plans; if the plan changed or verify fails, builds the new environment beside the
    old one, verifies it, then swaps them atomically and keeps the old one as a backup.

    \b
    Example:
        bnb-provision rebuild --dry-run
        bnb-provision rebuild --env .venv-bnb --keep 3
    """
    from bnb_provision.env.build import rebuild_env

    _report_build(rebuild_env(opts, log=log_to_stderr(as_json)), as_json)
