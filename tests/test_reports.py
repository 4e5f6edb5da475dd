"""plan --from / doctor --from: real reports users pasted into public issues (each with
its source in tests/fixtures/reports/index.toml) read into machine snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.detect.host import normalize_arch
from bnb_provision.detect.reports import Report, read_report

REPORTS = Path(__file__).parent / "fixtures" / "reports"
INDEX: list[dict[str, Any]] = toml_loads((REPORTS / "index.toml").read_text(encoding="utf-8"))[
    "report"
]
PACKAGES = ("bitsandbytes", "transformers", "accelerate", "peft", "trl", "vllm")


def _read(name: str, **kw: Any) -> Report:
    return read_report(
        (REPORTS / name).read_text(encoding="utf-8"), python="3.12", label=name, **kw
    )


def _cc(cc: tuple[int, int] | None) -> str | None:
    return f"{cc[0]}.{cc[1]}" if cc else None


def observed(report: Report) -> dict[str, Any]:
    """The facts under the index's keys, read from the snapshot where it holds them."""
    f, m = report.facts, report.machine()
    env = m.env
    out: dict[str, Any] = {
        "os": ("wsl" if m.os.wsl else m.os.system) if (f.os or f.os_hint or f.wsl) else None,
        "os_release": m.os.distro,
        "arch": f.arch,
        "python": f.python,
        "gpus": [g.name for g in f.gpus] or None,
        "compute_capabilities": sorted(
            {_cc(cc) for cc in f.compute_capabilities} | {_cc(g.cc) for g in f.gpus if g.cc}
        )
        or None,
        "driver": m.nvidia.driver if m.nvidia else None,
        "driver_cuda": m.nvidia.cuda_driver if m.nvidia else f.driver_cuda,
        "torch": env.version_of("torch") if env else None,
        "torch_cuda": f.torch_build.cuda if f.torch_build else None,
        "cuda_toolkit": f.cuda_toolkit,
        "bnb_lib": f.bnb_lib,
        "cuda_available": f.cuda_available,
    }
    for name in PACKAGES:
        out[name] = env.version_of(name) if env else None
    return out


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_every_capture_reads_into_its_expected_facts(entry: dict[str, Any]) -> None:
    report = _read(entry["file"])
    got = observed(report)
    expected = entry["expected"]
    assert {k: got[k] for k in expected} == expected
    m = report.machine()
    if "arch" in expected:
        assert m.os.arch == normalize_arch(expected["arch"])
    if expected.get("python", "").startswith("3."):
        assert m.python.version == expected["python"]
    if "torch_cuda" in expected and m.env is not None and m.env.torch is not None:
        assert m.env.torch.cuda == expected["torch_cuda"]
    if "gpus" in expected and m.nvidia is not None:
        assert [g.name for g in m.gpus] == expected["gpus"]
