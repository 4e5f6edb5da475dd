"""A pasted report as a machine snapshot (``bnb-provision.machine/1``), with what had to
be assumed and where the report disagrees with itself.

:func:`read_report` splits the text into sections (:mod:`.split`), reads each with its
tool's parser and the whole with :mod:`.loose`, merges the facts (:mod:`.merge`) and
writes the snapshot that :func:`~bnb_provision.detect.snapshot.machine_from_dict` loads.
What the snapshot cannot hold stays in :attr:`Report.facts` (the library bitsandbytes
picked, whether CUDA was available, the CUDA toolkit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

from bnb_provision import __version__
from bnb_provision.detect.host import normalize_arch
from bnb_provision.detect.machine import MACHINE_SCHEMA, Machine
from bnb_provision.detect.reports.bnb_diag import parse_bnb_diag
from bnb_provision.detect.reports.collect_env import parse_collect_env
from bnb_provision.detect.reports.facts import (
    Facts,
    GpuFact,
    TorchBuild,
    cuda_version,
    torch_build,
)
from bnb_provision.detect.reports.hf_env import parse_hf_env
from bnb_provision.detect.reports.loose import parse_loose
from bnb_provision.detect.reports.merge import Conflict, merge_facts
from bnb_provision.detect.reports.nvidia_smi_text import parse_nvidia_smi
from bnb_provision.detect.reports.pip_list import parse_pip
from bnb_provision.detect.reports.split import Section, clean_lines, split_report
from bnb_provision.detect.snapshot import machine_from_dict
from bnb_provision.errors import SnapshotError
from bnb_provision.vocab import ReportTool

__all__ = ["MAX_REPORT_CHARS", "Report", "read_report"]

MAX_REPORT_CHARS: Final = 10 * 1024 * 1024
"""A longer text is refused: real reports are a few KiB, a full pip freeze a few tens."""

_PARSERS: Final[dict[ReportTool, Callable[[str], Facts]]] = {
    "nvidia-smi": parse_nvidia_smi,
    "collect_env": parse_collect_env,
    "bitsandbytes": parse_bnb_diag,
    "hf-env": parse_hf_env,
    "pip": parse_pip,
}
_NOT_NVIDIA: Final = ("AMD", "Radeon", "Instinct", "gfx", "Intel", "Arc ", "Apple")


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """A report read: its sections, the merged facts, the snapshot and its caveats."""

    label: str
    sections: tuple[Section, ...]
    facts: Facts
    conflicts: tuple[Conflict, ...]
    snapshot: dict[str, Any]
    assumptions: tuple[str, ...]
    unplaced_gpus: tuple[str, ...] = ()  # named, but left out of the snapshot: no driver

    def machine(self) -> Machine:
        """The snapshot as a :class:`Machine`."""
        return machine_from_dict(self.snapshot, label=self.label)

    def summary(self) -> dict[str, Any]:
        """What was read and assumed, for JSON output (``report`` beside a plan)."""
        return {
            "file": self.label,
            "sections": [{"tool": s.tool, "line": s.line} for s in self.sections],
            "assumptions": list(self.assumptions),
            "conflicts": [
                {"fact": c.fact, "values": [{"section": t, "value": v} for t, v in c.values]}
                for c in self.conflicts
            ],
            "facts": facts_dict(self.facts),
        }


def facts_dict(facts: Facts) -> dict[str, Any]:
    """The merged facts as JSON values (the ``tool`` field of a merge is left out)."""
    out: dict[str, Any] = {}
    for f in fields(Facts):
        value = getattr(facts, f.name)
        if f.name == "tool" or value is None or value == ():
            continue
        if f.name == "gpus":
            value = [
                {"name": g.name, "compute_capability": _cc(g.cc), "memory_mib": g.memory_mib}
                for g in value
            ]
        elif f.name == "compute_capabilities":
            value = [_cc(cc) for cc in value]
        elif f.name == "torch_build":
            value = {"kind": value.kind, "cuda": value.cuda, "hip": value.hip}
        elif f.name in {"packages", "variables"}:
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _cc(cc: tuple[int, int] | None) -> str | None:
    return f"{cc[0]}.{cc[1]}" if cc else None


def _os_part(f: Facts, said: list[str]) -> dict[str, Any]:
    system = f.os or f.os_hint
    if system is None:
        system = "linux"
        said.append("OS assumed linux: the report does not say")
    elif f.os is None:
        said.append(f"OS read as {system} from the file paths in the report")
    wsl = bool(f.wsl)
    if f.wsl and system == "windows":
        system = "linux"  # a WSL2 kernel string is the Linux side speaking
    if not wsl and f.smi_version and f.driver and f.smi_version != f.driver and system == "linux":
        wsl = True
        said.append(
            f"WSL2 assumed: nvidia-smi's own version ({f.smi_version}) differs from the "
            f"driver's ({f.driver}), as it does under WSL2"
        )
    if f.arch is not None:
        arch = normalize_arch(f.arch)
    elif system == "macos":
        arch = "aarch64"
        said.append("architecture assumed arm64 (Apple silicon): the report does not say")
    else:
        arch = "x86_64"
        said.append("architecture assumed x86_64: the report does not say")
    return {
        "system": system,
        "arch": arch,
        "distro": f.os_release,
        "libc": f.libc,
        "wsl": wsl,
        "apple_silicon": arch == "aarch64" if system == "macos" else None,
    }


def _python(f: Facts, default: str, given: bool, said: list[str]) -> str:
    if f.python and f.python.startswith("3."):
        return f.python
    taken = f"Python {default} from --python" if given else f"Python {default} assumed"
    if f.python:
        said.append(f"the report's Python {f.python} runs no bitsandbytes: {taken}")
    elif given:
        said.append(f"{taken}: the report does not say")
    else:
        said.append(f"{taken} (this interpreter's): the report does not say; give --python X.Y")
    return default


def _gpus(f: Facts, said: list[str]) -> list[GpuFact]:
    """The NVIDIA GPUs, with bitsandbytes' compute capability where it can be placed."""
    gpus = [g for g in f.gpus if not (g.name and any(w in g.name for w in _NOT_NVIDIA))]
    others = sorted({g.name for g in f.gpus if g not in gpus and g.name})
    if others:
        left = ", ".join(others)
        said.append(f"non-NVIDIA GPU(s) left out (a snapshot holds NVIDIA GPUs only): {left}")
    ccs = f.compute_capabilities
    if not gpus and ccs:
        said.append(
            "GPU(s) known by compute capability only (bitsandbytes prints no names or "
            f"count): one GPU assumed per capability ({', '.join(_cc(c) or '' for c in ccs)})"
        )
        return [GpuFact(cc=cc) for cc in ccs]
    names = {g.name for g in gpus}
    if len(ccs) == 1 and len(names) == 1 and any(g.cc is None for g in gpus):
        said.append(
            f"compute capability {_cc(ccs[0])} (printed by bitsandbytes) taken for every "
            f"{next(iter(names))}"
        )
        gpus = [GpuFact(name=g.name, cc=g.cc or ccs[0], memory_mib=g.memory_mib) for g in gpus]
    cut = sorted({g.name for g in gpus if g.name and g.name.endswith("...")})
    said.extend(f"GPU name {name!r} is cut, as nvidia-smi prints long names" for name in cut)
    return gpus


def _nvidia_part(
    f: Facts, driver: str | None, said: list[str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], tuple[str, ...]]:
    gpus = _gpus(f, said)
    entries = [
        {
            "index": i,
            "name": g.name or f"GPU with compute capability {_cc(g.cc)}",
            "compute_capability": _cc(g.cc),
            "memory_total_mib": g.memory_mib,
        }
        for i, g in enumerate(gpus)
    ]
    if driver is not None:
        cuda = f.driver_cuda if driver == f.driver else None
        return {"driver": driver, "cuda_driver": cuda, "source": "flags"}, entries, ()
    if f.driver is not None:
        return {"driver": f.driver, "cuda_driver": f.driver_cuda, "source": "report"}, entries, ()
    names = tuple(str(e["name"]) for e in entries)
    if names:
        said.append(
            f"no NVIDIA driver in the report: its GPU(s) ({', '.join(dict.fromkeys(names))}) "
            "are left out; give --driver VERSION to plan for them"
        )
    else:
        said.append("no NVIDIA driver or GPU in the report: taken as a machine without one")
    return None, [], names


def _known(build: TorchBuild | None) -> TorchBuild | None:
    """``build`` unless it names CUDA or ROCm without saying which version."""
    if build is None or (build.kind == "cuda" and not build.cuda):
        return None
    return None if build.kind == "rocm" and not build.hip else build


def _torch_build(f: Facts, system: str, said: list[str]) -> TorchBuild | None:
    """torch's build: its version's local tag, else what a section printed, else the CUDA
    runtime package PyPI's wheels bring (Linux), else unknown (and said so)."""
    if f.torch is None:
        return _known(f.torch_build)
    if found := _known(torch_build(f.torch)) or _known(f.torch_build):
        return found
    runtimes = [(n, v) for n, v in f.packages if n.startswith("nvidia-cuda-runtime-cu")]
    if len(runtimes) == 1 and system == "linux" and (cuda := cuda_version(runtimes[0][1])):
        said.append(
            f"torch {f.torch}'s CUDA taken as {cuda} from {runtimes[0][0]} {runtimes[0][1]} "
            "(the CUDA runtime PyPI's torch wheels install)"
        )
        return TorchBuild(kind="cuda", cuda=cuda)
    kind = "a GPU build (CUDA available)" if f.cuda_available else "a CUDA or a CPU build"
    said.append(
        f"torch {f.torch} is {kind}, but the report does not say which CUDA: doctor's "
        "checks of torch's build are skipped"
    )
    return None


def _env_part(f: Facts, python: str, system: str, said: list[str]) -> dict[str, Any] | None:
    stated = (("torch", f.torch), ("bitsandbytes", f.bitsandbytes))
    packages = dict(f.packages) | {name: version for name, version in stated if version}
    if not packages and f.torch_build is None and not f.variables:
        return None
    build = _torch_build(f, system, said)
    torch = None
    if f.torch and build is not None:
        torch = {
            "version": f.torch,
            "cuda": build.cuda if build.kind == "cuda" else None,
            "hip": build.hip if build.kind == "rocm" else None,
            "xpu": "xpu" if build.kind == "xpu" else None,
        }
    elif build is not None:
        said.append("torch's version is not in the report: its build alone says little")
    if f.bitsandbytes:
        said.append(
            f"bitsandbytes {f.bitsandbytes}'s native libraries are not listed in the "
            "report: doctor's library checks are skipped"
        )
    return {
        "python": {"version": python},
        "packages": packages,
        "torch": torch,
        "bitsandbytes": None,
        "variables": dict(f.variables),
    }


def _snapshot(
    f: Facts, *, python: str, python_given: bool, driver: str | None
) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    said: list[str] = []
    os_part = _os_part(f, said)
    version = _python(f, python, python_given, said)
    nvidia, gpus, unplaced = _nvidia_part(f, driver, said)
    env = _env_part(f, version, os_part["system"], said)
    snapshot = {
        "schema": MACHINE_SCHEMA,
        "tool": {"name": "bnb-provision", "version": __version__},
        "os": os_part,
        "python": {"version": version},
        "nvidia": nvidia,
        "gpus": gpus,
        "env": env,
        "warnings": [*f.notes, *said],
    }
    return snapshot, tuple(dict.fromkeys([*said, *f.notes])), unplaced


def _says_anything(f: Facts) -> bool:
    return any(
        getattr(f, name) not in (None, ())
        for name in ("os", "python", "gpus", "compute_capabilities", "driver", "torch")
    ) or bool(
        f.packages
        or f.bitsandbytes
        or f.torch_build
        or f.driver_cuda
        or f.bnb_lib
        or f.cuda_toolkit
        or f.variables
    )


def read_report(
    text: str,
    *,
    python: str,
    python_given: bool = False,
    driver: str | None = None,
    label: str = "report",
) -> Report:
    """Read a pasted report. ``python`` (X.Y) is taken when the report gives none (from
    ``--python`` when ``python_given``, else it is this interpreter's); ``driver``
    (``--driver``) is the NVIDIA driver when given. Raises :class:`SnapshotError` when
    the text holds nothing this reads."""
    if len(text) > MAX_REPORT_CHARS:
        raise SnapshotError(f"{label}: larger than {MAX_REPORT_CHARS >> 20} MiB; not a report")
    sections = split_report(text)
    found = [_PARSERS[s.tool](s.text) for s in sections if s.tool != "text"]
    found.append(parse_loose("\n".join(clean_lines(text))))
    facts, conflicts = merge_facts(found)
    if not _says_anything(facts):
        raise SnapshotError(
            f"{label}: no output of nvidia-smi, python -m torch.utils.collect_env, "
            "python -m bitsandbytes, transformers/accelerate env or pip list/freeze found "
            "in it; paste one of those"
        )
    snapshot, assumptions, unplaced = _snapshot(
        facts, python=python, python_given=python_given, driver=driver
    )
    report = Report(
        label=label,
        sections=sections,
        facts=facts,
        conflicts=conflicts,
        snapshot=snapshot,
        assumptions=assumptions,
        unplaced_gpus=unplaced,
    )
    report.machine()  # the snapshot must load; a SnapshotError here names the field
    return report
