"""Machines -> plans -> lock groups: every machine is planned, and machines that need the
same plan share one :class:`LockSpec`.

A spec carries the ``pyproject.toml`` uv compiles: the plan's pins, with the packages the
plan takes from the PyTorch index routed there through an *explicit* uv index
(``[tool.uv.sources]``), so those come from it and nothing else does; when PyPI itself
serves the chosen build, no extra index is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from bnb_provision.errors import NoPlanError
from bnb_provision.lock.spec import LockOptions, LockSpec, as_stack
from bnb_provision.lock.stacks import StackChoice, choose_stack
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

# what a plan takes from the PyTorch index when its torch comes from there (and the
# companions it pins: torchvision and torchaudio are built per torch variant there too)
INDEX_PACKAGES: Final = ("torch",)


def _label(machine: Machine, index: int, plan: Plan | None) -> str:
    if machine.label:
        return machine.label.removesuffix(".json")
    ccs = plan.target.ccs if plan is not None else ()
    gpus = "+".join(f"sm_{a}{b}" for a, b in ccs) or ("gpu" if machine.gpus else "cpu")
    return f"machine{index}-{machine.os.system}-{gpus}"


def group_name(plan: Plan, stack: Stack, choice: StackChoice | None = None) -> str:
    """The lock group's name, which names its files, after what the lock holds: the stack,
    the platform, Python, torch and the stack's own library (bitsandbytes, gptqmodel,
    autoawq). Without dots, as PEP 751 requires of ``pylock.<name>.toml`` (uv refuses
    others), so every dot of a version becomes ``_``:
    ``bnb-linux-x86_64-py3_11-torch2_13_0-cpu-bnb0_50_2``,
    ``gptq-linux-x86_64-py3_12-torch2_15_0-cu130-gptqmodel7_7_0``."""
    held = choice or choose_stack(plan, stack)
    short = "bnb" if held.package == "bitsandbytes" else held.package
    t = plan.torch
    name = (
        f"{stack}-{plan.target.platform}-py{plan.python}-torch{t.version}-{t.variant}"
        f"-{short}{held.version}"
    )
    return name.replace(".", "_")


def stack_requirements(plan: Plan, stack: Stack, choice: StackChoice | None = None) -> list[str]:
    """The pins uv resolves for ``stack``: torch first, the plan's packages, then the
    stack's own library pinned (a GPTQ/AWQ lock holds no bitsandbytes; a bitsandbytes
    lock no GPTQ/AWQ library)."""
    torch_pin = f"torch=={plan.torch.version}"
    if plan.torch.channel == "index":
        torch_pin += f"+{plan.torch.variant}"
    reqs = [torch_pin]
    for name, version in plan.packages:
        if name in ("torch", "bitsandbytes"):
            continue
        reqs.append(f"{name}=={version}")
    held = choice or choose_stack(plan, stack)
    return [*reqs[:1], held.pin, *reqs[1:]] if stack == "bnb" else [*reqs, held.pin]


def lock_input(
    python: str,
    requirements: Sequence[str],
    variant: str,
    *,
    torch_index: str | None,
    index_packages: Sequence[str] = INDEX_PACKAGES,
    bnb_index: str | None = None,
) -> str:
    """The ``pyproject.toml`` uv compiles: the plan's pins, ``index_packages`` routed to the
    PyTorch index through an explicit uv index (``[tool.uv.sources]``), so nothing else
    comes from it; with ``bnb_index``, bitsandbytes alone is routed to that one."""
    import tomlkit

    doc = tomlkit.document()
    project = tomlkit.table()
    project["name"] = "bnb-provision-lock"
    project["version"] = "0"
    project["requires-python"] = f">={python}"
    project["dependencies"] = list(requirements)
    doc["project"] = project
    routes: list[tuple[str, str, Sequence[str]]] = []
    if torch_index and index_packages:
        routes.append((f"pytorch-{variant}", torch_index, index_packages))
    if bnb_index:
        routes.append(("bitsandbytes-windows-legacy", bnb_index, ("bitsandbytes",)))
    if routes:
        index = tomlkit.aot()
        sources = tomlkit.table()
        for name, url, packages in routes:
            entry = tomlkit.table()
            entry["name"] = name
            entry["url"] = url
            entry["explicit"] = True
            index.append(entry)
            for package in packages:
                sources[package] = tomlkit.inline_table()
                sources[package]["index"] = name
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
    *,
    gpu_archs: tuple[str, ...] | None = None,
) -> LockSpec:
    """The lock spec of one plan; ``gpu_archs``: every architecture of the machines it
    serves (default: the plan's own GPUs)."""
    torch_index = None
    if plan.torch.channel != "pypi":
        template = opts.torch_index_template or db.torch_index_url
        torch_index = template.format(variant=plan.torch.variant)
    companions = tuple(name for name, _ in plan.companions)
    index_packages = (*INDEX_PACKAGES, *companions) if torch_index else ()
    choice = choose_stack(plan, opts.stack)
    requirements = stack_requirements(plan, opts.stack, choice)
    floor = plan.driver_floor
    bnb_index = plan.bitsandbytes.index_url if opts.stack == "bnb" else None
    return LockSpec(
        name=group_name(plan, opts.stack, choice),
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
        bitsandbytes=str(plan.bitsandbytes.version) if opts.stack == "bnb" else "",
        bitsandbytes_library=(plan.bitsandbytes.library or "") if opts.stack == "bnb" else "",
        holds=(choice.package, choice.version),
        warnings=choice.warnings,
        driver_floor=str(floor) if floor else "",
        gpu_archs=gpu_archs if gpu_archs is not None else tuple(sorted(_archs(plan))),
        db_version=db.version,
        uv_input=lock_input(
            plan.python,
            requirements,
            plan.torch.variant,
            torch_index=None if opts.offline else torch_index,
            index_packages=index_packages,
            bnb_index=None if opts.offline else bnb_index,
        ),
        bnb_index=bnb_index,
        unverified=plan.torch.unverified,
    )


@dataclass
class _Group:
    """Machines that need one plan: the first machine's plan, every machine's label, the
    lowest glibc among them, and every GPU architecture they have."""

    plan: Plan
    labels: list[str] = field(default_factory=list)
    glibc: tuple[int, int] | None = None
    archs: set[str] = field(default_factory=set)

    def add(self, label: str, plan: Plan, glibc: tuple[int, int] | None) -> None:
        self.labels.append(label)
        self.glibc = min(filter(None, (self.glibc, glibc)), default=None)
        self.archs |= _archs(plan)


def _archs(plan: Plan) -> set[str]:
    return {f"{a}.{b}" for _, (a, b) in plan.target.gpus}


def plan_specs(
    machines: Sequence[Machine], db: CompatDB, constraints: Constraints, opts: LockOptions
) -> tuple[list[LockSpec], list[tuple[str, str]]]:
    """Plan every machine and group those that need the same plan into one spec.

    Returns the specs and the (machine, why) of those that could not be planned. Raises
    NoPlanError when no machine could be planned (the message says why for each).
    """
    from bnb_provision.plan.inputs import plan_for
    from bnb_provision.plan.wheelhouse import plan_from_wheelhouse, read_wheelhouse

    as_stack(opts.stack)  # a LockOptions made without its type checked
    # offline, plan only what the wheelhouse holds: uv can resolve nothing else
    house = read_wheelhouse(opts.find_links) if opts.offline else None
    groups: dict[str, _Group] = {}
    unplanned: list[tuple[str, str]] = []
    for i, m in enumerate(machines):
        try:
            if house is None:
                plan = plan_for(m, db, constraints)
            else:
                plan = plan_from_wheelhouse(m, db, constraints, house)
            name = group_name(plan, opts.stack)
        except NoPlanError as exc:
            unplanned.append((_label(m, i, None), str(exc).splitlines()[0]))
            continue
        group = groups.setdefault(name, _Group(plan=plan))
        group.add(_label(m, i, plan), plan, m.os.glibc)
    specs = [
        spec_for(g.plan, tuple(g.labels), g.glibc, db, opts, gpu_archs=tuple(sorted(g.archs)))
        for g in groups.values()
    ]
    if not specs:
        why = "; ".join(f"{m}: {w}" for m, w in unplanned)
        raise NoPlanError(f"no machine could be planned, so nothing was locked ({why})")
    return specs, unplanned
