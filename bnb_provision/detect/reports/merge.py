"""Merging what each section states into one set of facts, and finding where sections
disagree.

Sections are ranked by how directly their tool knows a fact: nvidia-smi, then
collect_env, ``python -m bitsandbytes``, the HF env commands, pip, and free text last.
For each fact the best-ranked section that states it wins; a value from another section
that only adds detail (``2.4.1`` and ``2.4.1+cu121``, ``3.10`` and ``3.10.12``) refines
it; any other value is a :class:`Conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final

from bnb_provision.detect.host import normalize_arch
from bnb_provision.detect.reports.facts import Facts, GpuFact, TorchBuild, same_gpu
from bnb_provision.vocab import REPORT_TOOLS, ReportTool

__all__ = ["Conflict", "merge_facts"]

_SCALARS: Final = (
    "os",
    "os_hint",
    "os_release",
    "arch",
    "libc",
    "python",
    "driver",
    "driver_cuda",
    "smi_version",
    "torch",
    "cuda_toolkit",
    "bitsandbytes",
    "bnb_lib",
    "bnb_fallback",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    """A fact two sections state differently; ``values`` is (tool, value), best first."""

    fact: str
    values: tuple[tuple[ReportTool, str], ...]

    def describe(self) -> str:
        said = " vs ".join(f"{value} ({tool})" for tool, value in self.values)
        return f"{self.fact}: {said}; {self.values[0][1]} is used"


def _refines(value: str, other: str) -> bool:
    """``other`` is ``value`` with more detail: ``3.10`` -> ``3.10.12``, ``2.4.1`` ->
    ``2.4.1+cu121``."""
    return other.startswith(value) and other[len(value) : len(value) + 1] in {".", "+", " "}


def _same(fact: str, a: str, b: str) -> bool:
    if fact == "arch":
        return normalize_arch(a) == normalize_arch(b)
    return a == b or _refines(a, b) or _refines(b, a) or (fact == "os_release" and a in b)


def _pick(fact: str, stated: list[tuple[ReportTool, str]]) -> tuple[str | None, Conflict | None]:
    if not stated:
        return None, None
    chosen = stated[0][1]
    for _, value in stated[1:]:
        if _refines(chosen, value):
            chosen = value
    differ = [(t, v) for t, v in stated if not _same(fact, chosen, v)]
    if not differ:
        return chosen, None
    first = next((t, v) for t, v in stated if _same(fact, chosen, v))
    return chosen, Conflict(fact=fact, values=(first, *dict(differ).items()))


def _build(stated: list[Facts]) -> tuple[TorchBuild | None, Conflict | None]:
    builds = [(f.tool, f.torch_build) for f in stated if f.torch_build is not None]
    if not builds:
        return None, None
    chosen = builds[0][1]
    differ = [(t, b) for t, b in builds if b != chosen]
    if not differ:
        return chosen, None
    text = {t: b.cuda or b.hip or b.kind for t, b in [builds[0], *differ]}
    return chosen, Conflict(fact="torch build", values=tuple(text.items()))


def _gpus(ranked: list[Facts]) -> tuple[tuple[GpuFact, ...], Conflict | None]:
    """The GPU list of the best-ranked section naming any, names cut by nvidia-smi
    completed from other sections, compute capabilities attached by name."""
    lists = [(f.tool, f.gpus) for f in ranked if any(g.name for g in f.gpus)]
    if not lists:
        return (), None
    chosen = lists[0][1]
    others = [g for _, gpus in lists[1:] for g in gpus if g.name]
    named_ccs = [g for f in ranked for g in f.gpus if g.cc and g.name]
    out = []
    for gpu in chosen:
        name = gpu.name or ""
        full = _full_name(name, others) if name.endswith("...") else None
        named = replace(gpu, name=full) if full else gpu
        cc = named.cc or next((g.cc for g in named_ccs if _match(g, named)), None)
        out.append(replace(named, cc=cc))
    counts = [(t, str(len(gpus))) for t, gpus in lists if t not in {"text", "hf-env"}]
    if len({n for _, n in counts}) < 2:  # noqa: PLR2004
        return tuple(out), None
    return tuple(out), Conflict(fact="GPU count", values=tuple(counts))


def _full_name(cut: str, others: list[GpuFact]) -> str | None:
    full = {g.name for g in others if g.name and not g.name.endswith("...")}
    matches = [n for n in full if same_gpu(cut, n)]
    return matches[0] if len(matches) == 1 else None


def _match(named: GpuFact, gpu: GpuFact) -> bool:
    return bool(named.name and gpu.name and same_gpu(named.name, gpu.name))


def _packages(ranked: list[Facts]) -> tuple[dict[str, str], list[Conflict]]:
    stated: dict[str, list[tuple[ReportTool, str]]] = {}
    for f in ranked:
        for name, version in f.packages:
            stated.setdefault(name, []).append((f.tool, version))
    packages: dict[str, str] = {}
    conflicts = []
    for name, values in sorted(stated.items()):
        chosen, conflict = _pick(name, values)
        if chosen is not None:
            packages[name] = chosen
        if conflict is not None:
            conflicts.append(conflict)
    return packages, conflicts


def merge_facts(sections: list[Facts]) -> tuple[Facts, tuple[Conflict, ...]]:
    """One set of facts from every section's (its ``tool`` is ``text``: no one tool's),
    and the facts the sections disagree on."""
    ranked = sorted(sections, key=lambda f: REPORT_TOOLS.index(f.tool))
    values: dict[str, object] = {}
    conflicts: list[Conflict] = []
    for name in _SCALARS:
        stated = [(f.tool, v) for f in ranked if isinstance(v := getattr(f, name), str)]
        chosen, conflict = _pick(name, stated)
        values[name] = chosen
        conflicts += [conflict] if conflict else []
    build, conflict = _build(ranked)
    gpus, gpu_conflict = _gpus(ranked)
    packages, package_conflicts = _packages(ranked)
    conflicts += [c for c in (conflict, gpu_conflict) if c] + package_conflicts
    available = [f.cuda_available for f in ranked if f.cuda_available is not None]
    ccs = [cc for f in ranked for cc in f.compute_capabilities]
    variables = {k: v for f in reversed(ranked) for k, v in f.variables}
    merged = Facts(
        tool="text",
        wsl=True if any(f.wsl for f in ranked) else None,
        gpus=gpus,
        compute_capabilities=tuple(dict.fromkeys(ccs)),
        torch_build=build,
        cuda_available=available[0] if available else None,
        packages=tuple(sorted(packages.items())),
        variables=tuple(sorted(variables.items())),
        notes=tuple(dict.fromkeys(n for f in ranked for n in f.notes)),
    )
    merged = replace(merged, **{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]
    assert {f.name for f in fields(Facts)} >= set(values)
    return merged, tuple(conflicts)
