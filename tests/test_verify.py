from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.cli.render import render_verify
from bnb_provision.env.verify import run_verify
from bnb_provision.errors import TargetEnvError

DEVICE = Path(__file__).parent / "fixtures" / "device"


def test_verify_in_an_env_without_torch_reports_the_import_failure(tmp_path: Path) -> None:
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    report = run_verify(str(env / "bin" / "python"))
    assert report.ok is False
    assert report.data["import"]["error"].startswith("import torch: No module named 'torch'")
    assert report.failures()[0].startswith("import torch")
    res = CliRunner().invoke(cli, ["verify", "--env", str(env)])
    assert res.exit_code == 9 and "FAILED at import" in res.stdout


def test_verify_with_a_broken_interpreter(tmp_path: Path) -> None:
    bad = tmp_path / "python"
    bad.write_text("#!/bin/sh\necho not json; exit 3\n")
    bad.chmod(0o755)
    with pytest.raises(TargetEnvError, match="crashed before reporting"):
        run_verify(str(bad))


def test_rendering_the_h100_report() -> None:
    data = json.loads((DEVICE / "verify-ok.json").read_text())
    text = render_verify(data)
    assert "library libbitsandbytes_cuda130.so" in text
    assert "NVIDIA H100 80GB HBM3 (compute capability 9.0)" in text
    assert text.rstrip().endswith("PASS")
    checks = {c["check"] for c in data["devices"][0]["checks"]}
    assert checks == {
        "nf4_roundtrip",
        "fp4_roundtrip",
        "linear4bit_forward",
        "llm_int8_matmul",
        "adam8bit_step",
    }


@pytest.mark.network
def test_verify_passes_on_the_cpu_backend_of_real_wheels(tmp_path: Path) -> None:
    """A real environment: torch's CPU build and bitsandbytes from their wheels."""
    if shutil.which("nvidia-smi"):
        pytest.skip("this test expects the CPU backend")
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env)
    py = str(env / "bin" / "python")
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "torch==2.13.0", "bitsandbytes==0.50.2"],
        check=True,
        timeout=900,
    )
    report = run_verify(py)
    assert report.ok, report.failures()
    assert report.library == "libbitsandbytes_cpu.so"
    assert sys.executable  # the tool's own interpreter never imported torch
