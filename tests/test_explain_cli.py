"""The explain and triage commands: text, JSON, exit codes; a bad curated DB is exit 5."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.core.data import data_dir
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import CompatDBError
from bnb_provision.explain import catalog as catalog_module
from bnb_provision.explain import explanation as explain_module

FIX = Path(__file__).parent / "fixtures"
ISSUES = {
    c["id"]: c["text"]
    for c in toml_loads((FIX / "explain" / "corpus.toml").read_text(encoding="utf-8"))["case"]
}


def test_explain_json_and_exit_9_on_an_error() -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["explain", "--json"],
        input="RuntimeError: CUDA error: no kernel image is available for execution on the device\n",
    )
    assert res.exit_code == 9
    data = json.loads(res.stdout)
    assert data["schema"] == "bnb-provision.doctor/1" and data["ok"] is False
    assert data["findings"][0]["category"] == "arch_not_compiled"
    empty = runner.invoke(cli, ["explain"], input="")
    assert empty.exit_code == 2
    fine = runner.invoke(cli, ["explain"], input="all good, loss 0.12\n")
    assert fine.exit_code == 0 and "no known bitsandbytes" in fine.stdout


def test_explain_text_output_shows_facts_lines_and_fix(tmp_path: Path) -> None:
    log = tmp_path / "error.txt"
    log.write_text(ISSUES["bnb-1688-cuda129"], encoding="utf-8")
    res = CliRunner().invoke(cli, ["explain", "--log", str(log)])
    assert res.exit_code == 9
    lines = res.stdout.splitlines()
    assert lines[0] == "bnb-provision explain: 8 line(s) read"
    assert lines[1].startswith("facts: OS linux, Python 3.12, torch's CUDA 12.9")
    assert (
        "ERROR  [cuda_runtime_mismatch] bitsandbytes has no native library for CUDA 12.9"
        in res.stdout
    )
    assert (
        "- line 1: bitsandbytes library load error: Configured CUDA binary not found" in res.stdout
    )
    assert "fix: install a bitsandbytes release that ships libbitsandbytes_cuda129.so" in res.stdout


def test_triage_an_issue_body(tmp_path: Path) -> None:
    issue = tmp_path / "issue.md"
    issue.write_text(ISSUES["fooocus-1313-found-11040"], encoding="utf-8")
    res = CliRunner().invoke(cli, ["triage", str(issue), "--python", "3.11"])
    assert res.exit_code == 9, (res.output, res.exception)
    out = res.stdout
    assert out.startswith(
        "bnb-provision triage: RuntimeError: The NVIDIA driver on your system is too old"
    )
    assert "[driver_too_old]" in out
    assert "plan for linux-x86_64, Python 3.11" in out and "driver 470.86" in out
    assert (
        "pip install torch==" in out and "--index-url https://download.pytorch.org/whl/cu11" in out
    )
    data = json.loads(CliRunner().invoke(cli, ["triage", str(issue), "--json"]).stdout)
    assert data["schema"] == "bnb-provision.triage/1"
    assert data["machine"]["nvidia"]["driver"] == "470.86"
    assert data["plan"]["torch"]["cuda"].startswith("11.")
    assert any("Python 3.12" in a for a in data["assumed"])
    assert data["commands"][-1] == "python -m bitsandbytes"


def test_triage_says_what_is_missing_for_a_plan() -> None:
    res = CliRunner().invoke(cli, ["triage", "--json"], input=ISSUES["chatglm3-100-found-11060"])
    assert res.exit_code == 9, (res.output, res.exception)
    data = json.loads(res.stdout)
    assert data["plan"] is None and data["causes"][0]["category"] == "driver_too_old"
    assert "nvidia-smi" in data["no_plan"]
    flags = ["triage", "--json", "--gpu", "8.6", "--driver", "470.86"]
    planned = json.loads(
        CliRunner().invoke(cli, flags, input=ISSUES["chatglm3-100-found-11060"]).stdout
    )
    assert planned["plan"] is not None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'category = "cuda_runtime_mismatch"',
            'category = "cuda_mismatch"',
            "explain.toml: cause[0].category: unknown category 'cuda_mismatch' (did you mean 'cuda_runtime_mismatch'?)",
        ),
        (
            '"bitsandbytes has no native library for CUDA {lib_cuda} ({bnb_lib})"',
            '"bitsandbytes has no library for {gpu_arch}"',
            "explain.toml: cause[0].title[0]: unknown placeholder {gpu_arch}",
        ),
    ],
)
def test_a_bad_curated_row_fails_at_load_and_explain_exits_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, message: str
) -> None:
    """A typo'd category or an unknown placeholder in explain.toml is a CompatDBError at
    load (exit code 5 through the CLI), not a traceback when explain fills it in."""
    root = tmp_path / "compat_db"
    shutil.copytree(data_dir("compat_db"), root)
    curated = root / "explain.toml"
    text = curated.read_text(encoding="utf-8")
    assert old in text
    curated.write_text(text.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("BNB_PROVISION_NO_CACHE", "1")
    with pytest.raises(CompatDBError) as info:
        catalog_module.load_catalog.__wrapped__(root)
    assert str(info.value).startswith(message), str(info.value)

    monkeypatch.setattr(
        explain_module, "load_catalog", lambda: catalog_module.load_catalog.__wrapped__(root)
    )
    res = CliRunner().invoke(cli, ["explain"], input="CUDA error: no kernel image\n")
    assert res.exit_code == 5, res.output
    assert f"Error: {message}" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
