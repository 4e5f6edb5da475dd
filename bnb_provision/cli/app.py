"""The click group: the one place errors become ``Error: ...`` and an exit code,
``--json`` printing, and the option sets several commands share.

Library errors become ``Error: ...`` on stderr and their own exit code (see
``bnb_provision.errors`` and README.md); an ``OSError`` that escapes the library (a full
disk, a read-only folder) becomes exit 8 naming the path. Usage errors are click's (exit 2).
Under ``--json`` each of them is also a ``bnb-provision.error/1`` object on stdout.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from bnb_provision import __version__
from bnb_provision.cli.params import CUDA_PIN, INDEX_TEMPLATE, VERSION_PIN, UserPath
from bnb_provision.errors import LockfileError, ProvisionError
from bnb_provision.vocab import COMPANIONS, PLATFORMS, PROFILES, Companion, Profile

__all__ = [
    "ARCHS",
    "BNB_HELP",
    "CUDA_HELP",
    "ERROR_SCHEMA",
    "JSON_HELP",
    "OS_NAMES",
    "PLAN_PYTHON_HELP",
    "TORCH_HELP",
    "cli",
    "emit_json",
    "from_option",
    "json_option",
    "log_to_stderr",
    "machine_and_pin_options",
    "main",
    "options",
    "python_option",
    "source_options",
    "tool",
]

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP: Final = "Print machine-readable JSON (versioned schema) instead of a table."
OS_NAMES: Final = tuple(dict.fromkeys(p.partition("-")[0] for p in PLATFORMS))
"""linux, windows, macos: the OS part of each platform, in vocab's order."""
ARCHS: Final = ("x86_64", "aarch64", "arm64")
"""The CPU architectures a plan can be made for: x86_64, and aarch64 with its other name
arm64 (Apple's, and the one ``macos-arm64`` uses); detect normalizes them to the first two."""


ERROR_SCHEMA: Final = "bnb-provision.error/1"
"""The JSON a command run with ``--json`` prints on stdout when it fails."""

_JSON_ASKED: Final = "bnb_provision.json"  # ctx.meta: --json given (set as it is parsed)
_JSON_WORD: Final = "bnb_provision.json-word"  # ctx.meta: --json on the command line at all
_EMITTED: Final = "bnb_provision.emitted"  # ctx.meta: the command printed its JSON already


class _Group(click.Group):
    """The one catch point: library errors, and operating-system errors that escape it,
    become ``Error: ...`` on stderr and their exit code (with ``--json``, the same as a
    JSON error object on stdout); click's usage errors get the JSON object too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, str] = {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        words = args[: args.index("--")] if "--" in args else args
        ctx.meta[_JSON_WORD] = "--json" in words  # for errors before --json is parsed
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProvisionError as exc:
            _fail(ctx, exc)
        except BrokenPipeError:  # `bnb-provision plan | head -1`: the reader is gone
            _silence_stdout()
            ctx.exit(1)
        except OSError as exc:
            _fail(ctx, LockfileError.cannot_write(exc))
        except click.ClickException as exc:
            if _wants_json(ctx):
                _print_error_object(exc.exit_code, type(exc).__name__, exc.format_message())
            raise

    def add_lazy_command(self, name: str, target: str) -> None:
        """Register command ``name`` as ``"module:attribute"``, imported when it is run or
        listed: ``plan`` does not pay for importing ``fleet``'s or ``init``'s modules."""
        self._lazy[name] = target

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order they are added: the pipeline's, not the alphabet's."""
        del ctx
        return list(dict.fromkeys([*self._lazy, *self.commands]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self._lazy:
            module, _, attribute = self._lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command by name, in pipeline order, each imported (help, tests, docs)."""
        ctx = click.Context(self)
        found = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        return {name: command for name, command in found.items() if command is not None}


def _fail(ctx: click.Context, exc: ProvisionError) -> None:
    click.echo(f"Error: {exc}", err=True)
    if _wants_json(ctx) and not ctx.meta.get(_EMITTED):
        _print_error_object(exc.exit_code, type(exc).__name__, str(exc))
    ctx.exit(exc.exit_code)


def _wants_json(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(_JSON_ASKED, ctx.meta.get(_JSON_WORD, False)))


def _print_error_object(code: int, error: str, message: str) -> None:
    click.echo(
        json.dumps(
            {"schema": ERROR_SCHEMA, "tool": tool(), "code": code, "error": error,
             "message": message},
            indent=2,
        )
    )  # fmt: skip


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's exit does not fail flushing it."""
    import os
    import sys

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnb-provision")
def cli() -> None:
    """Set up, lock and repair bitsandbytes / PyTorch / CUDA stacks."""


def main() -> None:
    """Console-script entry point.

    Once the command is done, the objects it made (the DB's rows, tens of thousands) are
    frozen out of the garbage collector's reach, so that the interpreter's exit does not
    walk them again: 30-50 ms of a ``plan`` or ``init`` process (benchmarks/bench_plan.py).
    Files are closed by then and Python still flushes stdout and stderr on the way out.
    """
    try:
        cli(prog_name="bnb-provision")
    finally:
        gc.freeze()


def tool() -> dict[str, str]:
    """The ``tool`` object every JSON output carries."""
    return {"name": "bnb-provision", "version": __version__}


def emit_json(data: dict[str, Any]) -> None:
    """Print ``data`` as the JSON every ``--json`` prints: indented, one document, its
    ``schema`` first and the ``tool`` that wrote it next."""
    head = {"schema": data["schema"], "tool": data.get("tool") or tool()}
    click.echo(json.dumps({**head, **data}, indent=2))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_EMITTED] = True


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


def source_options(*, offline_help: str, find_links_help: str) -> Callable[[F], F]:
    """Where packages come from, as ``lock``, ``init`` and ``rebuild`` take it: ``--offline``,
    ``--find-links``, ``--index-url`` and ``--torch-index-url``."""
    return options(
        click.option("--offline", is_flag=True, help=offline_help),
        click.option(
            "--find-links",
            "find_links",
            multiple=True,
            type=UserPath(path_type=Path),
            metavar="DIR",
            help=find_links_help,
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
            type=INDEX_TEMPLATE,
            metavar="URL",
            envvar="BNB_PROVISION_TORCH_INDEX_URL",
            show_envvar=True,
            help="PyTorch index template, {variant} replaced (a mirror of download.pytorch.org).",
        ),
    )


def _note_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[_JSON_ASKED] = value
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, is_eager=True, callback=_note_json, help=JSON_HELP
)
"""``--json``, parsed before the other options: an error in them is a JSON object too."""


def python_option(help_text: str) -> Callable[[F], F]:
    """``--python``, one meaning in every command: a version (3.12) or an interpreter."""
    return click.option("--python", "python", metavar="X.Y|PATH", help=help_text)


PLAN_PYTHON_HELP: Final = (
    "Plan for this Python: a version (3.12), or an interpreter whose version is read."
)
TORCH_HELP: Final = "Pin torch: 2.8, 2.8.0 or a specifier such as '>=2.8,<2.10'{}."
BNB_HELP: Final = "Pin bitsandbytes: 0.45, 0.45.5 or a specifier such as '>=0.45'."
CUDA_HELP: Final = "Pin the CUDA build of torch (12.6), or cpu."

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
    python_option(PLAN_PYTHON_HELP),
    click.option(
        "--torch", "torch", type=VERSION_PIN, metavar="VERSION", help=TORCH_HELP.format("")
    ),
    click.option("--bnb", "bnb", type=VERSION_PIN, metavar="VERSION", help=BNB_HELP),
    click.option("--cuda", "cuda", type=CUDA_PIN, metavar="X.Y|cpu", help=CUDA_HELP),
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
    (Constraints); ``--python`` goes to both as ``X.Y`` (an interpreter's own version).
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
        from bnb_provision.detect.interpreter import version_for_request
        from bnb_provision.plan.constraints import Constraints, MachineFlags

        python = version_for_request(python) if python is not None else None
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
