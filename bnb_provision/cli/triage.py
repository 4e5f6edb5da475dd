"""``triage``: a whole issue body (environment reports, ``pip list``, the traceback) read
in one pass: the causes, the machine it describes, the plan that would have worked there
and the commands that get there."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from bnb_provision.cli.app import ARCHS, OS_NAMES, emit_json, json_option

if TYPE_CHECKING:
    from bnb_provision.explain.triage import Triage

__all__ = ["triage"]


@click.command(short_help="an issue body: causes, machine, the plan that works")
@click.argument(
    "issue", metavar="FILE", default="-", type=click.File("r", encoding="utf-8", errors="replace")
)
@click.option("--os", "os_name", type=click.Choice(OS_NAMES), help="The reporter's OS.")
@click.option("--arch", type=click.Choice(ARCHS), help="The reporter's CPU architecture.")
@click.option("--driver", metavar="VERSION", help="The reporter's NVIDIA driver.")
@click.option("--gpu", "gpus", multiple=True, metavar="NAME|X.Y", help="The reporter's GPU.")
@click.option("--python", "python", metavar="X.Y", help="The reporter's Python version.")
@json_option
def triage(
    issue: IO[str],
    os_name: str | None,
    arch: str | None,
    driver: str | None,
    gpus: tuple[str, ...],
    python: str | None,
    as_json: bool,
) -> None:
    """Triage an issue as people paste it: the causes (as explain gives them), the machine
    the text describes, the plan that would have worked there and the commands to get
    there. The machine flags fill in or correct what the text says. Exits 9 when an
    error-severity cause stands.

    \b
    Example:
        bnb-provision triage issue.md
        gh issue view 1848 --repo bitsandbytes-foundation/bitsandbytes | bnb-provision triage
        bnb-provision triage issue.md --driver 550.54.14 --json
    """
    from bnb_provision.errors import FindingsError
    from bnb_provision.explain.triage import triage as triage_text
    from bnb_provision.plan.constraints import MachineFlags

    text = issue.read()
    if not text.strip():
        raise click.UsageError("no text: give the issue as FILE or pipe it in")
    flags = MachineFlags(os=os_name, arch=arch, driver=driver, gpus=gpus, python=python)
    result = triage_text(text, flags=flags)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(_render(result))
    if not result.ok:
        raise FindingsError(
            f"{sum(f.severity == 'error' for f in result.explanation.findings)} error(s) found"
        )


def _render(result: Triage) -> str:
    from bnb_provision.cli.render import render_facts, render_findings

    header = f"bnb-provision triage: {result.title or 'the text'}\n" + render_facts(
        result.explanation
    )
    out = [render_findings(result.explanation.findings, header), ""]
    snap = result.snapshot
    out += [f"assumed: {a}" for a in snap.assumed]
    if result.plan is None:
        out.append(f"no plan: {result.no_plan}")
        return "\n".join(out)
    plan, target = result.plan, result.plan.target
    gpus = ", ".join(f"{n} ({cc[0]}.{cc[1]})" for n, cc in target.gpus) or "no GPU"
    out.append(
        f"plan for {target.platform}, Python {plan.python}, {gpus}, "
        f"driver {target.driver_label or 'none'}:"
    )
    source = f" from {plan.torch.index_url}" if plan.torch.index_url else " from PyPI"
    out.append(f"  torch         {plan.torch.version}{source}")
    library = f" (loads {plan.bitsandbytes.library})" if plan.bitsandbytes.library else ""
    out.append(f"  bitsandbytes  {plan.bitsandbytes.version}{library}")
    out += [
        f"  {name:13} {version}"
        for name, version in plan.packages
        if name not in {"torch", "bitsandbytes"}
    ]
    out.append("commands:")
    out += [f"  {c}" for c in result.commands]
    return "\n".join(out)
