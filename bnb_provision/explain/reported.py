"""The machine facts of the environment reports pasted in a text, as triage's facts.

:mod:`bnb_provision.detect.reports` reads the output of ``nvidia-smi``, ``collect_env``,
``python -m bitsandbytes``, ``transformers env`` and ``pip list`` wherever it stands in a
text. What those tools print about the machine (the OS, Python, driver, GPUs, torch and
bitsandbytes versions) is more reliable than what explain reads from messages and paths,
so for these keys a reported value takes precedence; an OS only guessed from file paths
fills a gap and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bnb_provision.explain.facts import Fact

if TYPE_CHECKING:
    from bnb_provision.detect.reports import Report
    from bnb_provision.detect.reports.facts import Facts

__all__ = ["Reported", "read_reported"]

_NOT_NVIDIA: Final = ("AMD", "Radeon", "Instinct", "gfx", "Intel", "Arc ", "Apple")
_PACKAGES: Final = ("transformers", "accelerate", "peft", "trl", "triton", "vllm", "xformers")
_UNNAMED: Final = "GPU with compute capability "
_PLACEHOLDER_PYTHON: Final = "3.12"  # read_report needs one; triage does not use it


@dataclass(frozen=True, kw_only=True, slots=True)
class Reported:
    """The reports found in a text: the facts they give (``strong`` replace explain's,
    ``weak`` only fill gaps), every NVIDIA GPU they list, and what the reader read."""

    strong: dict[str, Fact]
    weak: dict[str, Fact]
    gpus: tuple[dict[str, str], ...]
    summary: dict[str, Any] | None

    def merged(self, facts: dict[str, Fact]) -> dict[str, Fact]:
        """``facts`` (explain's) with the reported ones laid over them."""
        return {**self.weak, **facts, **self.strong}

    def named_gpus(self, facts: dict[str, Fact]) -> tuple[dict[str, str], ...]:
        """The reported GPUs; one known by its capability alone takes the name explain
        read in the text."""
        name = facts.get("gpu")
        if len(self.gpus) != 1 or name is None or not self.gpus[0]["name"].startswith(_UNNAMED):
            return self.gpus
        return ({**self.gpus[0], "name": name.value},)


def _fact(name: str, value: str | None, where: str) -> tuple[str, Fact] | None:
    if not value:
        return None
    return name, Fact(name=name, value=value, line=0, evidence=f"{where}: {value}")


def _cc(cc: tuple[int, int] | None) -> str | None:
    return f"{cc[0]}.{cc[1]}" if cc else None


def _gpus(f: Facts) -> tuple[dict[str, str], ...]:
    out = []
    for g in f.gpus:
        if g.name and any(word in g.name for word in _NOT_NVIDIA):
            continue
        entry = {"name": g.name or f"{_UNNAMED}{_cc(g.cc)}"}
        if cc := _cc(g.cc) or (_cc(f.compute_capabilities[0]) if f.compute_capabilities else None):
            entry["compute_capability"] = cc
        out.append(entry)
    if not out:
        out = [
            {"name": f"{_UNNAMED}{cc}", "compute_capability": cc}
            for cc in filter(None, map(_cc, f.compute_capabilities))
        ]
    return tuple(out)


def _strong(f: Facts, where: str) -> dict[str, Fact]:
    os_name = "wsl" if f.wsl and f.os in {"linux", "windows"} else f.os
    build = f.torch_build
    pairs = [
        _fact("os", os_name, where),
        _fact("arch", f.arch, where),
        _fact("python", f.python if f.python and f.python.startswith("3.") else None, where),
        _fact("driver", f.driver, where),
        _fact("driver_cuda", f.driver_cuda, where),
        _fact("torch", f.torch.split("+")[0] if f.torch else None, where),
        _fact("torch_cuda", build.cuda if build is not None else None, where),
        _fact("bnb", f.bitsandbytes, where),
        _fact("bnb_lib", f.bnb_lib, where),
    ]
    packages = dict(f.packages)
    pairs += [_fact(name, packages.get(name), where) for name in _PACKAGES]
    return dict(p for p in pairs if p is not None)


def _from_report(report: Report) -> Reported:
    f = report.facts
    tools = ", ".join(dict.fromkeys(s.tool for s in report.sections if s.tool != "text"))
    where = f"read from the pasted {tools or 'text'} output"
    strong = _strong(f, where)
    gpus = _gpus(f)
    if gpus and not gpus[0]["name"].startswith(_UNNAMED):
        strong["gpu"] = Fact(name="gpu", value=gpus[0]["name"], line=0, evidence=where)
    if gpus and "compute_capability" in gpus[0]:
        cc = gpus[0]["compute_capability"]
        strong["compute_capability"] = Fact(
            name="compute_capability", value=cc, line=0, evidence=f"{where}: {cc}"
        )
    weak = dict(p for p in [_fact("os", f.os_hint, "the report's file paths")] if p is not None)
    summary = {k: v for k, v in report.summary().items() if k not in {"file", "assumptions"}}
    return Reported(strong=strong, weak=weak, gpus=gpus, summary=summary)


def read_reported(text: str) -> Reported:
    """The reports in ``text``; none found (or none this reader can read) is no facts."""
    from bnb_provision.detect.reports import read_report
    from bnb_provision.errors import SnapshotError

    try:
        report = read_report(text, python=_PLACEHOLDER_PYTHON, label="the text")
    except SnapshotError:
        return Reported(strong={}, weak={}, gpus=(), summary=None)
    return _from_report(report)
