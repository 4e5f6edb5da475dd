"""Every reader of pasted reports is total: any text gives Facts (the parsers), sections
(split) or a Report or a SnapshotError (read_report), in time linear in its size.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.core.text import TextDecodeError, decode_text
from bnb_provision.detect.reports import read_report
from bnb_provision.detect.reports.bnb_diag import parse_bnb_diag
from bnb_provision.detect.reports.collect_env import parse_collect_env
from bnb_provision.detect.reports.facts import Facts
from bnb_provision.detect.reports.hf_env import parse_hf_env
from bnb_provision.detect.reports.loose import parse_loose
from bnb_provision.detect.reports.merge import merge_facts
from bnb_provision.detect.reports.nvidia_smi_text import parse_nvidia_smi
from bnb_provision.detect.reports.pip_list import parse_pip
from bnb_provision.detect.reports.split import split_report
from bnb_provision.errors import SnapshotError

pytestmark = pytest.mark.fuzz

REPORTS = Path(__file__).parent / "fixtures" / "reports"
_LINES = sorted(
    {line for p in REPORTS.glob("*.txt") for line in p.read_text(encoding="utf-8").splitlines()}
)
_TOKENS = [
    "|",
    "| ",
    "...",
    "Driver Version:",
    "KMD Version: ",
    "CUDA Version: ",
    "NVIDIA-SMI ",
    "MiB / ",
    "GPU 0: ",
    "GPU 00000000:01:00.0",
    "    Product Name : ",
    "FB Memory Usage",
    "Total : 1 MiB",
    "PyTorch version: ",
    "CUDA used to build PyTorch: ",
    "GPU models and configuration:",
    "- PyTorch version (GPU?): ",
    "- `transformers` version: ",
    "- GPU type: ",
    "PyTorch: ",
    "  CUDA: ",
    "  HIP: ",
    "Related packages:",
    "CUDA_VERSION=",
    "Highest Compute Capability: (",
    "COMPUTE_CAPABILITIES_PER_GPU = ['",
    "libbitsandbytes_cuda",
    ".so",
    "==",
    " 2.4.1+cu",
    "+rocm",
    "0.",
    "9" * 30,
    "NVIDIA ",
    " with CUDA capability sm_",
    "found version ",
    "Python 3.",
    "/home/",
    "C:\\",
    "```",
    "### ",
    "$ nvidia-smi",
    "pip list",
    "\t",
    "\r",
    "\x00",
    "\u00a0",
]
_fragments = st.one_of(st.sampled_from(_LINES), st.sampled_from(_TOKENS), st.text(max_size=30))
_line = st.lists(_fragments, max_size=6).map("".join)
_text = st.one_of(
    st.text(max_size=400),
    st.lists(_line, max_size=40).map("\n".join),
    st.lists(st.sampled_from(_LINES), max_size=60).map("\n".join),
)
_PARSERS = (
    parse_nvidia_smi,
    parse_collect_env,
    parse_bnb_diag,
    parse_hf_env,
    parse_pip,
    parse_loose,
)


@given(_text)
def test_every_parser_returns_facts(text: str) -> None:
    for parse in _PARSERS:
        facts = parse(text)
        assert isinstance(facts, Facts)
        assert all(g.memory_mib is None or g.memory_mib >= 0 for g in facts.gpus)
        assert all(n and v for n, v in facts.packages)


@given(_text)
def test_split_and_merge_are_total(text: str) -> None:
    sections = split_report(text)
    assert all(s.line >= 1 and s.text is not None for s in sections)
    merged, conflicts = merge_facts([parse_loose(text), parse_pip(text), parse_collect_env(text)])
    assert isinstance(merged, Facts)
    assert all(len(c.values) >= 2 for c in conflicts)


@given(_text, st.sampled_from([None, "550.54.14"]))
def test_read_report_gives_a_loadable_snapshot_or_a_snapshot_error(
    text: str, driver: str | None
) -> None:
    with contextlib.suppress(SnapshotError):
        report = read_report(text, python="3.12", driver=driver)
        machine = report.machine()
        assert machine.python.version.startswith("3.")
        assert machine.nvidia is not None or not machine.gpus  # no GPU without a driver


@given(st.binary(max_size=600))
def test_any_bytes_decode(raw: bytes) -> None:
    assert isinstance(decode_text(raw, errors="replace"), str)
    with contextlib.suppress(TextDecodeError):
        decode_text(raw)


@pytest.mark.parametrize(
    "text",
    [
        "|" * 2_000_000,
        "| " + " " * 2_000_000 + "|",
        ("GPU 0: " + "(" * 5000 + "\n") * 300,
        ("- a version: " + "9." * 3000 + "\n") * 300,
        ("OS: " + "x (" * 10_000 + "\n") * 50,
        "a" * 1_000_000 + "==" + "1." * 500_000,
        ("NVIDIA " + "A100 " * 20 + "\n") * 20_000,
        ("Your " + "T" * 60 + " GPU has compute capability 7.5\n") * 10_000,
        ("bitsandbytes-" + "1." * 4000 + "\n") * 200,
        ("torch" + " " * 4000 + "1" + "\n") * 500,
    ],
    ids=lambda t: f"{t[:12]!r}..{len(t)}",
)
def test_pathological_reports_are_read_in_linear_time(text: str) -> None:
    start = time.monotonic()
    with contextlib.suppress(SnapshotError):
        read_report(text, python="3.12")
    for parse in _PARSERS:
        parse(text[:200_000])
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("digit", ["\u00b2", "\u00b3", "\u2460"])  # ², ³, ①
def test_digits_int_refuses_are_not_read_as_numbers(digit: str) -> None:
    """``str.isdigit`` is true for these and ``int()`` refuses them: each reader that turns
    text into a number asks for ASCII digits (core.text.is_digits). The long fuzz run found
    the first in the KFD reader; these raised ValueError before."""
    from bnb_provision.detect.reports.facts import major_minor
    from bnb_provision.explain.facts import _major
    from bnb_provision.explain.values import _supported_python
    from bnb_provision.lock.select import _arch_number

    assert digit.isdigit()
    assert major_minor(f"12.{digit}") is None and _major(digit) is None
    assert not _supported_python(f"3.{digit}") and _arch_number(f"8.{digit}") == 0
