"""The real-world corpora are well-formed: the explain/triage cases and the captured
environment reports each carry a public source, a known category or tool, real text,
and no duplicates; every capture file is indexed and every index entry has its file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.vocab import CATEGORIES

FIX = Path(__file__).parent / "fixtures"
EXPLAIN = FIX / "explain" / "corpus.toml"
OLD_ERRORS = FIX / "errors" / "corpus.toml"
REPORTS = FIX / "reports"

CASE_KEYS = {"id", "source", "text", "category", "also", "kind", "why", "facts"}
REPORT_TOOLS = {
    "nvidia-smi",
    "collect_env",
    "bitsandbytes",
    "transformers-env",
    "accelerate-env",
    "pip-list",
    "pip-freeze",
    "mixed",
}
REPORT_KEYS = {"file", "source", "tool", "tool_version", "truncated", "expected"}
EXPECTED_KEYS = {
    "os",
    "os_release",
    "arch",
    "python",
    "gpus",
    "compute_capabilities",
    "driver",
    "driver_cuda",
    "torch",
    "torch_cuda",
    "cuda_toolkit",
    "bitsandbytes",
    "bnb_lib",
    "transformers",
    "accelerate",
    "peft",
    "trl",
    "vllm",
    "cuda_available",
}
OSES = {"linux", "windows", "wsl", "macos"}


def _load(path: Path) -> dict[str, Any]:
    return toml_loads(path.read_text(encoding="utf-8"))


CASES: list[dict[str, Any]] = _load(EXPLAIN)["case"]
REPORT_INDEX: list[dict[str, Any]] = _load(REPORTS / "index.toml")["report"]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c.get("id", "?")) for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_case_is_well_formed(case: dict[str, Any]) -> None:
    assert set(case) <= CASE_KEYS, set(case) - CASE_KEYS
    assert isinstance(case["id"], str) and case["id"].strip()
    assert isinstance(case["source"], str) and case["source"].startswith("https://")
    assert isinstance(case["text"], str) and case["text"].strip()
    assert case["category"] in CATEGORIES
    also = case.get("also", [])
    assert isinstance(also, list)
    assert all(a in CATEGORIES for a in also), also
    assert case["category"] not in also
    assert len(also) == len(set(also))
    assert case.get("kind", "issue") == "issue"
    assert isinstance(case.get("why", ""), str)
    facts = case.get("facts", {})
    assert isinstance(facts, dict)
    assert all(isinstance(v, str) and v.strip() for v in facts.values()), facts
    if "os" in facts:
        assert facts["os"] in OSES


def test_case_ids_and_texts_are_unique() -> None:
    ids = Counter(c["id"] for c in CASES)
    assert [i for i, n in ids.items() if n > 1] == []
    texts = Counter(c["text"].strip() for c in CASES)
    assert [t[:60] for t, n in texts.items() if n > 1] == []


def test_new_corpus_does_not_repeat_the_old_one() -> None:
    old = {c["text"].strip() for c in _load(OLD_ERRORS)["case"]}
    assert [c["id"] for c in CASES if c["text"].strip() in old] == []


def test_explain_corpus_covers_what_the_issue_asks() -> None:
    assert len(CASES) >= 150
    per_category = Counter(c["category"] for c in CASES)
    assert set(per_category) == set(CATEGORIES), set(CATEGORIES) - set(per_category)
    assert min(per_category.values()) >= 3, per_category
    issues = [c for c in CASES if c.get("kind") == "issue"]
    assert len(issues) >= 20
    oses = {c.get("facts", {}).get("os") for c in CASES}
    assert {"linux", "windows", "wsl", "macos"} <= oses


def test_issue_bodies_start_with_a_title_line() -> None:
    for case in (c for c in CASES if c.get("kind") == "issue"):
        title, sep, body = case["text"].partition("\n\n")
        assert sep and title.strip() and "\n" not in title and body.strip(), case["id"]


@pytest.mark.parametrize("report", REPORT_INDEX, ids=[r.get("file", "?") for r in REPORT_INDEX])
def test_report_entry_is_well_formed(report: dict[str, Any]) -> None:
    assert set(report) <= REPORT_KEYS, set(report) - REPORT_KEYS
    assert isinstance(report["source"], str) and report["source"].startswith("https://")
    assert report["tool"] in REPORT_TOOLS
    name = report["file"]
    assert isinstance(name, str) and "/" not in name and name.endswith(".txt")
    prefix = report["tool"] + ("-q" if name.startswith("nvidia-smi-q-") else "")
    assert name.startswith(prefix + "-"), (name, report["tool"])
    path = REPORTS / name
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.strip()
    expected = report["expected"]
    assert expected and set(expected) <= EXPECTED_KEYS, set(expected) - EXPECTED_KEYS
    for key, value in expected.items():
        if key == "gpus":
            assert isinstance(value, list) and value
            assert all(isinstance(v, str) and v in text for v in value), value
        elif key == "compute_capabilities":
            assert isinstance(value, list) and value
            for cc in value:
                major, _, minor = cc.partition(".")
                assert cc in text or f"({major}, {minor})" in text, cc
        elif key == "cuda_available":
            assert isinstance(value, bool)
        else:
            assert isinstance(value, str) and value.strip(), (key, value)
    # a version the reader must find is written in the capture itself
    for key in ("driver", "bitsandbytes", "transformers", "accelerate", "torch", "python"):
        if key in expected and key != "torch":
            assert expected[key] in text, (key, expected[key])
    if "torch" in expected:
        assert expected["torch"] in text or expected["torch"].split("+")[0] in text


def test_every_capture_is_indexed_once() -> None:
    listed = Counter(r["file"] for r in REPORT_INDEX)
    assert [f for f, n in listed.items() if n > 1] == []
    on_disk = {p.name for p in REPORTS.glob("*.txt")}
    assert on_disk == set(listed)


def test_reports_cover_every_tool() -> None:
    assert len(REPORT_INDEX) >= 25
    per_tool = Counter(r["tool"] for r in REPORT_INDEX)
    assert set(per_tool) == REPORT_TOOLS
    for tool in ("nvidia-smi", "collect_env", "bitsandbytes", "transformers-env", "mixed"):
        assert per_tool[tool] >= 2, per_tool
    texts = Counter((REPORTS / r["file"]).read_text(encoding="utf-8") for r in REPORT_INDEX)
    assert max(texts.values()) == 1
