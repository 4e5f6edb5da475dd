"""What a lock of a stack holds besides torch and the Hugging Face packages: bitsandbytes for
``bnb``; for ``gptq`` and ``awq`` their library, pinned to the newest release whose own
requirements (read from PyPI, ``compat_db/derived/stacks.toml``) accept the plan's torch,
transformers and accelerate, with what upstream says about it (``compat_db/stacks.toml``):
a library archived upstream, one that needs a compiler.

A conflict between the library and the plan is found here, with the way out, rather than
surfacing as uv's resolution error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import Version

from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import contains
from bnb_provision.vocab import Stack

if TYPE_CHECKING:
    from bnb_provision.db.stacks import StackDB, StackRelease
    from bnb_provision.plan.model import Plan

__all__ = ["StackChoice", "choose_stack"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StackChoice:
    """The stack's own library in a lock: its name, version, and what to warn about."""

    package: str
    version: str
    warnings: tuple[str, ...] = ()

    @property
    def pin(self) -> str:
        return f"{self.package}=={self.version}"


def _pinned(plan: Plan) -> dict[str, Version]:
    """What the plan pins that a stack library may require (bitsandbytes is not locked)."""
    return {
        name: Version(Version(version).public)
        for name, version in plan.packages
        if name != "bitsandbytes"
    }


def _conflicts(r: StackRelease, plan: Plan) -> list[str]:
    """Why release ``r`` does not fit the plan; empty when it does."""
    out = []
    rel = r.release
    if len(rel.requires_python) and not contains(rel.requires_python, f"{plan.python}.0"):
        out.append(f"needs Python {rel.requires_python} (the plan has {plan.python})")
    pinned = _pinned(plan)
    for name, spec in rel.requires:
        if name in pinned and not contains(spec, pinned[name]):
            out.append(f"needs {name}{spec} (the plan has {pinned[name]})")
    return out


def _warnings(stack: Stack, r: StackRelease, facts: StackDB) -> tuple[str, ...]:
    rel = r.release
    what = f"{rel.package} {rel.version}"
    out = []
    info = facts.info(stack)
    if info is not None and info.status == "archived":
        successor = f" Maintained successor: {info.successor}." if info.successor else ""
        out.append(f"{what}: {info.note}{successor} (source: {info.source})")
    compiler = facts.compiler(rel.package, rel.version)
    parts = []
    if "wheel" not in r.dists:
        parts.append(
            "PyPI has no wheel of it, so uv builds it from its source distribution (an "
            "offline wheelhouse must also hold its build backend)"
        )
    if compiler is not None:
        parts.append(
            f"it compiles CUDA code at {compiler.when}, which needs {compiler.needs} on "
            f"every machine that uses it ({compiler.note}; source: {compiler.source})"
        )
    if parts:
        out.append(f"{what}: " + "; ".join(parts) + ".")
    return tuple(out)


def choose_stack(plan: Plan, stack: Stack, facts: StackDB | None = None) -> StackChoice:
    """The stack's library for ``plan``. Raises NoPlanError (with the nearest release and
    what it needs) when no release in the DB fits the plan."""
    if stack == "bnb":
        return StackChoice(package="bitsandbytes", version=str(plan.bitsandbytes.version))
    if facts is None:
        from bnb_provision.db.stacks import load_stacks

        facts = load_stacks()
    info = facts.info(stack)
    if info is None:
        raise NoPlanError(f"--stack {stack}: the DB (compat_db/stacks.toml) has no row for it")
    releases = facts.releases_of(info.package)
    if not releases:
        raise NoPlanError(
            f"--stack {stack}: no release of {info.package} in compat_db/derived/stacks.toml; "
            "run scripts/update_compat_db.py --only stacks --write"
        )
    for r in releases:
        if not _conflicts(r, plan):
            return StackChoice(
                package=info.package,
                version=str(r.release.version),
                warnings=_warnings(stack, r, facts),
            )
    newest = releases[0]
    raise NoPlanError(
        f"--stack {stack}: no {info.package} release in the DB fits the plan (torch "
        f"{plan.torch.version}, Python {plan.python}, "
        + ", ".join(f"{n} {v}" for n, v in plan.packages if n not in ("torch", "bitsandbytes"))
        + f"): the newest, {info.package} {newest.release.version}, "
        + "; ".join(_conflicts(newest, plan))
        + ".\nWay out: pin what it needs (e.g. --torch), or lock for a machine whose plan "
        "meets it."
    )
