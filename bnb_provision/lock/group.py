"""Machines -> plans -> lock groups: every machine is planned, and machines that need the
same plan share one :class:`LockSpec`.

A spec carries the ``pyproject.toml`` uv compiles: the plan's pins, with the packages the
plan takes from the PyTorch index routed there through an *explicit* uv index
(``[tool.uv.sources]``), so those come from it and nothing else does; when PyPI itself
serves the chosen build, no extra index is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from bnb_provision.errors import NoPlanError
from bnb_provision.lock.spec import LockOptions, LockSpec, as_stack
from bnb_provision.vocab import Stack

# The DB, the machines and the resolver load only when a plan must be computed.
if TYPE_CHECKING:
    from bnb_provision.db.model import CompatDB
    from bnb_provision.detect.machine import Machine
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.model import Plan

__all__ = [
    "INDEX_PACKAGES",
    "group_name",
    "lock_input",
    "plan_specs",
    "spec_for",
    "stack_requirements",
]

# what a plan takes from the PyTorch index when its torch comes from there
INDEX_PACKAGES: Final = ("torch",)
# what each stack installs besides torch; the bnb stack never holds GPTQ/AWQ libraries
_STACK_EXTRA: Final[dict[Stack, tuple[str, ...]]] = {"gptq": ("gptqmodel",), "awq": ("autoawq",)}


def _label(machine: Machine, index: int, plan: Plan | None) -> str:
    if machine.label:
        return machine.label.removesuffix(".json")
    ccs = plan.target.ccs if plan is not None else ()
    gpus = "+".join(f"sm_{a}{b}" for a, b in ccs) or ("gpu" if machine.gpus else "cpu")
    return f"machine{index}-{machine.os.system}-{gpus}"


def group_name(plan: Plan, stack: Stack) -> str:
    """The lock group's name, which names its files: without dots, as PEP 751 requires of
    ``pylock.<name>.toml`` (uv refuses others), so every dot of a version becomes ``_``:
    ``bnb-linux-x86_64-py3_11-torch2_13_0-cpu-bnb0_50_2``."""
    t = plan.torch
    name = (
        f"{stack}-{plan.target.platform}-py{plan.python}-torch{t.version}-{t.variant}"
        f"-bnb{plan.bitsandbytes.version}"
    )
    return name.replace(".", "_")


def stack_requirements(plan: Plan, stack: Stack) -> list[str]:
    """The pins uv resolves for ``stack``: torch first, the plan's packages, the stack's own."""
    torch_pin = f"torch=={plan.torch.version}"
    if plan.torch.channel == "index":
        torch_pin += f"+{plan.torch.variant}"
    reqs = [torch_pin]
    for name, version in plan.packages:
        if name == "torch" or (stack != "bnb" and name == "bitsandbytes"):
            continue
        reqs.append(f"{name}=={version}")
    reqs += _STACK_EXTRA.get(stack, ())
    return reqs


def lock_input(
    python: str,
    requirements: Sequence[str],
    variant: str,
    *,
    torch_index: str | None,
    index_packages: Sequence[str] = INDEX_PACKAGES,
) -> str:
    """The ``pyproject.toml`` uv compiles: the plan's pins, ``index_packages`` routed to the
    PyTorch index through an explicit uv index (``[tool.uv.sources]``), so nothing else
    comes from it."""
    import tomlkit

    doc = tomlkit.document()
    project = tomlkit.table()
    project["name"] = "bnb-provision-lock"
    project["version"] = "0"
    project["requires-python"] = f">={python}"
    project["dependencies"] = list(requirements)
    doc["project"] = project
    if torch_index and index_packages:
        entry = tomlkit.table()
        entry["name"] = f"pytorch-{variant}"
        entry["url"] = torch_index
        entry["explicit"] = True
        index = tomlkit.aot()
        index.append(entry)
        sources = tomlkit.table()
        for name in index_packages:
            sources[name] = tomlkit.inline_table()
            sources[name]["index"] = f"pytorch-{variant}"
        uv_tool = tomlkit.table()
        uv_tool["index"] = index
        uv_tool["sources"] = sources
        tool = tomlkit.table()
        tool["uv"] = uv_tool
        doc["tool"] = tool
    return tomlkit.dumps(doc)


def spec_for(
    plan: Plan,
    machines: tuple[str, ...],
    glibc: tuple[int, int] | None,
    db: CompatDB,
    opts: LockOptions,
) -> LockSpec:
    """The lock spec of one plan."""
    torch_index = None
    if plan.torch.channel != "pypi":
        template = opts.torch_index_template or db.torch_index_url
        torch_index = template.format(variant=plan.torch.variant)
    index_packages = INDEX_PACKAGES if torch_index else ()
    requirements = stack_requirements(plan, opts.stack)
    floor, _ = db.min_driver(plan.torch.cuda, plan.target.os) if plan.torch.cuda else (None, "")
    return LockSpec(
        name=group_name(plan, opts.stack),
        stack=opts.stack,
        machines=machines,
        python=plan.python,
        platform=plan.target.platform,
        os=plan.target.os,
        arch=plan.target.arch,
        glibc=glibc,
        torch=str(plan.torch.version),
        variant=plan.torch.variant,
        torch_index=torch_index,
        index_packages=index_packages,
        requirements=tuple(requirements),
        bitsandbytes=str(plan.bitsandbytes.version),
        bitsandbytes_library=plan.bitsandbytes.library or "",
        driver_floor=str(floor) if floor else "",
        gpu_archs=tuple(sorted({f"{a}.{b}" for _, (a, b) in plan.target.gpus})),
        db_version=db.version,
        uv_input=lock_input(
            plan.python,
            requirements,
            plan.torch.variant,
            torch_index=None if opts.offline else torch_index,
            index_packages=index_packages,
        ),
    )


def plan_specs(
    machines: Sequence[Machine], db: CompatDB, constraints: Constraints, opts: LockOptions
) -> tuple[list[LockSpec], list[tuple[str, str]]]:
    """Plan every machine and group those that need the same plan into one spec.

    Returns the specs and the (machine, why) of those that could not be planned. Raises
    NoPlanError when no machine could be planned (the message says why for each).
    """
    from bnb_provision.plan.inputs import plan_for

    as_stack(opts.stack)  # a LockOptions made without its type checked
    groups: dict[str, tuple[Plan, list[str], tuple[int, int] | None]] = {}
    unplanned: list[tuple[str, str]] = []
    for i, m in enumerate(machines):
        try:
            plan = plan_for(m, db, constraints)
        except NoPlanError as exc:
            unplanned.append((_label(m, i, None), str(exc).splitlines()[0]))
            continue
        label = _label(m, i, plan)
        name = group_name(plan, opts.stack)
        if name in groups:
            first, labels, glibc = groups[name]
            low = min(filter(None, (glibc, m.os.glibc)), default=None)
            groups[name] = (first, [*labels, label], low)
        else:
            groups[name] = (plan, [label], m.os.glibc)
    specs = [
        spec_for(plan, tuple(labels), glibc, db, opts) for plan, labels, glibc in groups.values()
    ]
    if not specs:
        why = "; ".join(f"{m}: {w}" for m, w in unplanned)
        raise NoPlanError(f"no machine could be planned, so nothing was locked ({why})")
    return specs, unplanned
