"""The click group: the one place library errors become ``Error: ...`` and an exit code,
``--json`` printing, and the option sets several commands share.

Library errors become ``Error: ...`` on stderr and their own exit code (see
``bnb_provision.errors`` and README.md). Usage errors are click's (exit 2).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

import click

from bnb_provision import __version__
from bnb_provision.errors import ProvisionError
from bnb_provision.vocab import COMPANIONS, PLATFORMS, PROFILES, Companion, Profile

__all__ = [
    "ARCHS",
    "JSON_HELP",
    "OS_NAMES",
    "cli",
    "emit_json",
    "from_option",
    "json_option",
    "log_to_stderr",
    "machine_and_pin_options",
    "main",
    "options",
]

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP: Final = "Print machine-readable JSON (versioned schema) instead of a table."
OS_NAMES: Final = tuple(dict.fromkeys(p.partition("-")[0] for p in PLATFORMS))
"""linux, windows, macos: the OS part of each platform, in vocab's order."""
ARCHS: Final = ("x86_64", "aarch64", "arm64")
"""The CPU architectures a plan can be made for: x86_64, and aarch64 with its other name
arm64 (Apple's, and the one ``macos-arm64`` uses); detect normalizes them to the first two."""


class _Group(click.Group):
    """Turn library errors into ``Error: ...`` and their exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order they are added: the pipeline's, not the alphabet's."""
        del ctx
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnb-provision")
def cli() -> None:
    """Set up, lock and repair bitsandbytes / PyTorch / CUDA stacks."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bnb-provision")


def emit_json(data: object) -> None:
    """Print ``data`` as the JSON every ``--json`` prints: indented, one document."""
    click.echo(json.dumps(data, indent=2))


def log_to_stderr(as_json: bool) -> Callable[[str], None]:
    """The progress log a library call takes: stderr for people, silent under ``--json``."""
    if as_json:
        return lambda _m: None
    return lambda m: click.echo(m, err=True)


def options(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Several click options as one decorator, applied in the order given (top first)."""

    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)

from_option = click.option(
    "--from",
    "from_file",
    metavar="FILE",
    help="Read the machine from a pasted report (- for stdin): the output of nvidia-smi, "
    "python -m torch.utils.collect_env, python -m bitsandbytes, transformers/accelerate "
    "env, pip list or pip freeze, one or several. What it assumes is listed first.",
)

_machine_and_pin_options = options(
    click.option(
        "--os",
        "os_name",
        type=click.Choice(OS_NAMES),
        help="Plan for this OS instead of this machine's.",
    ),
    click.option(
        "--os-version",
        "os_version",
        metavar="X.Y",
        help="macOS release (13, 14.5): it decides which macOS wheels install.",
    ),
    click.option(
        "--arch",
        type=click.Choice(ARCHS),
        help="CPU architecture (arm64 is aarch64; --os macos means arm64).",
    ),
    click.option(
        "--driver",
        metavar="VERSION",
        help="NVIDIA driver version, e.g. 570.133.07 (without it: the plan for the newest "
        "driver the GPUs can have, and the ladder of what older drivers get).",
    ),
    click.option(
        "--gpu",
        "gpus",
        multiple=True,
        metavar="NAME|X.Y",
        help="A GPU by name ('RTX 3090') or compute capability ('8.6'); repeatable.",
    ),
    click.option("--python", "python", metavar="X.Y", help="Python version of the environment."),
    click.option("--torch", "torch", metavar="VERSION", help="Pin torch (2.8 or 2.8.0)."),
    click.option("--bnb", "bnb", metavar="VERSION", help="Pin bitsandbytes (0.45 or 0.45.5)."),
    click.option("--cuda", "cuda", metavar="X.Y|cpu", help="Pin the CUDA build (12.6) or cpu."),
    click.option(
        "--profile",
        type=click.Choice(PROFILES),
        default="inference",
        show_default=True,
        help="inference, or qlora (adds peft and trl).",
    ),
    click.option(
        "--with",
        "companions",
        metavar="torchvision,torchaudio",
        help="Also pin these to the releases built for the chosen torch.",
    ),
    click.option(
        "--allow-legacy-windows-index",
        "legacy_windows_index",
        is_flag=True,
        help="Windows, with --bnb below 0.43.0: take bitsandbytes from the unmaintained "
        "third-party index the DB records.",
    ),
)


def _companions(text: str | None) -> tuple[Companion, ...]:
    """``--with torchvision,torchaudio`` as a tuple of vocab.Companion."""
    out: list[Companion] = []
    for name in filter(None, (n.strip().lower() for n in (text or "").split(","))):
        known = next((c for c in COMPANIONS if c == name), None)
        if known is None:
            raise click.BadParameter(
                f"{name!r}: expected {', '.join(COMPANIONS)} (comma-separated)",
                param_hint="--with",
            )
        if known not in out:
            out.append(known)
    return tuple(out)


def machine_and_pin_options(f: Callable[..., None]) -> Callable[..., None]:
    """The machine flags and the plan constraints shared by plan and lock.

    The command receives them built: ``flags`` (MachineFlags) and ``constraints``
    (Constraints); ``--python X.Y`` goes to both.
    """

    @functools.wraps(f)
    def command(
        *,
        os_name: str | None,
        os_version: str | None,
        arch: str | None,
        driver: str | None,
        gpus: tuple[str, ...],
        python: str | None,
        torch: str | None,
        bnb: str | None,
        cuda: str | None,
        profile: Profile,
        companions: str | None,
        legacy_windows_index: bool,
        **kw: Any,
    ) -> None:
        from bnb_provision.plan.constraints import Constraints, MachineFlags

        flags = MachineFlags(
            os=os_name, os_version=os_version, arch=arch, driver=driver, gpus=gpus, python=python
        )
        constraints = Constraints(
            torch=torch,
            bnb=bnb,
            cuda=cuda,
            python=python,
            profile=profile,
            companions=_companions(companions),
            legacy_windows_index=legacy_windows_index,
        )
        f(flags=flags, constraints=constraints, **kw)

    return _machine_and_pin_options(command)
