"""plan --from and doctor --from end to end on real captures (tests/fixtures/reports)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bnb_provision.cli import cli

REPORTS = Path(__file__).parent / "fixtures" / "reports"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_plan_from_an_nvidia_smi_capture() -> None:
    code, out, err = run("plan", "--from", str(REPORTS / "nvidia-smi-a100x2-580.126.09-3.txt"))
    assert code == 0, err
    assumed, _, plan = out.partition("Plan for ")
    assert assumed.startswith("Read from nvidia-smi-a100x2-580.126.09-3.txt: nvidia-smi (line 2)")
    assert "Assumed\n  - OS assumed linux: the report does not say" in assumed
    assert "NVIDIA A100-SXM4-40GB (sm_80), NVIDIA A100-SXM4-40GB (sm_80), driver 580.126.09" in plan
    assert "bitsandbytes" in plan and "BitsAndBytesConfig" in plan


def test_plan_from_json_adds_the_assumptions_and_keeps_the_schema() -> None:
    name = "mixed-centos-nvidia-smi-line-pip-list-bnb-2.txt"
    code, out, err = run("plan", "--from", str(REPORTS / name), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == "bnb-provision.plan/2"
    assert data["machine"]["driver"] == "535.104.05" and data["python"] == "3.10"
    assert data["machine"]["gpus"] == [
        {"name": "NVIDIA A100-PCIE-40GB", "compute_capability": "8.0"}
    ]
    assert data["assumptions"] == data["report"]["assumptions"]
    assert any("architecture assumed x86_64" in a for a in data["assumptions"])
    assert [s["tool"] for s in data["report"]["sections"]] == ["nvidia-smi", "pip", "bitsandbytes"]
    facts = data["report"]["facts"]
    assert (facts["bnb_lib"], facts["bnb_fallback"]) == (
        "libbitsandbytes_cuda121.so",
        "libbitsandbytes_cpu.so",
    )


def test_plan_from_a_report_naming_gpus_without_a_driver_exits_6_with_the_way_out() -> None:
    report = str(REPORTS / "collect_env-a100x8-torch241-2.txt")
    code, out, err = run("plan", "--from", report)
    assert code == 6 and out == ""
    assert "Assumed\n  - no NVIDIA driver in the report" in err
    assert "Error: collect_env-a100x8-torch241-2.txt names GPU(s) (NVIDIA A100-SXM4-40GB)" in err
    assert "give --driver VERSION" in err
    code, out, err = run("plan", "--from", report, "--driver", "550.54.15", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["machine"]["gpus"]) == 6 and data["machine"]["driver"] == "550.54.15"
    assert data["python"] == "3.11"


def test_plan_from_stdin_and_flags_on_top() -> None:
    text = (REPORTS / "nvidia-smi-tesla-p4-550.135-2.txt").read_bytes()
    code, out, err = run("plan", "--from", "-", "--python", "3.11", "--json", stdin=text)
    assert code == 0, err
    data = json.loads(out)
    assert data["python"] == "3.11" and data["report"]["file"] == "stdin"
    assert "Python 3.11 from --python: the report does not say" in data["assumptions"]
    assert data["machine"]["gpus"] == [{"name": "Tesla P4", "compute_capability": "6.1"}]


def test_plan_from_powershell_utf16_file(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    text = (REPORTS / "collect_env-rtx2080ti-torch16-3.txt").read_text(encoding="utf-8")
    path.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    code, out, err = run("plan", "--from", str(path), "--python", "3.10", "--json")
    assert code in {0, 6}, (
        err
    )  # Python 3.7's torch builds are long gone: 6 is a reason, not a crash
    if code == 0:
        assert json.loads(out)["machine"]["driver"] == "440.33.01"
    else:
        assert err.count("Error: ") == 1 and "Traceback" not in err


def test_from_and_machine_together_are_a_usage_error(tmp_path: Path) -> None:
    report = str(REPORTS / "nvidia-smi-tesla-p4-550.135-2.txt")
    code, _, err = run("plan", "--from", report, "--machine", str(tmp_path / "m.json"))
    assert code == 2 and "give --machine or --from, not both" in err
    code, _, err = run("doctor", "--from", report, "--python", "python")
    assert code == 2 and "give one of --python, --env, --machine, --from" in err


def test_plan_from_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("I tried everything and it still does not work.\n")
    code, _, err = run("plan", "--from", str(path))
    assert code == 4 and err.startswith("Error: notes.txt: no output of nvidia-smi")
    code, _, err = run("plan", "--from", str(tmp_path / "missing.txt"))
    assert code == 4 and "cannot read it" in err


def test_doctor_from_a_report_with_an_environment() -> None:
    name = "mixed-pip-list-nvidia-smi-570-1.txt"
    code, out, err = run("doctor", "--from", str(REPORTS / name))
    assert code in {0, 9}, err
    assert out.startswith(f"Read from {name}: pip (line 4), nvidia-smi (line 42)")
    assert f"bnb-provision doctor: report {name}" in out
    code, out, err = run("doctor", "--from", str(REPORTS / name), "--json")
    data = json.loads(out)
    assert data["schema"] == "bnb-provision.doctor/1"
    assert data["subject"]["machine"]["nvidia"]["driver"] == "570.124.06"
    assert data["assumptions"] == data["subject"]["report"]["assumptions"]


def test_doctor_from_a_report_without_an_environment_says_what_to_paste() -> None:
    code, _, err = run("doctor", "--from", str(REPORTS / "nvidia-smi-a100-450.119.03-5.txt"))
    assert code == 4
    assert "shows no Python environment" in err and "pip list" in err
