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
from bnb_provision.env.verify import VERIFY_SCHEMA, report_from_dict, run_verify
from bnb_provision.errors import TargetEnvError

DEVICE = Path(__file__).parent / "fixtures" / "device"


def test_verify_in_an_env_without_torch_reports_the_import_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    monkeypatch.chdir(tmp_path)
    report = run_verify("env/bin/python")  # relative to this folder, though it runs from home
    assert report.ok is False and report.imported.torch is None and report.devices == ()
    assert report.imported.error is not None
    assert report.imported.error.startswith("import torch: No module named 'torch'")
    assert report.failures()[0].startswith("import torch")
    assert report.to_dict()["import"] == {"ok": False, "error": report.imported.error}
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
    assert [c.name for c in report.devices[0].checks] == [
        "nf4_roundtrip",
        "fp4_roundtrip",
        "linear4bit_forward",
        "llm_int8_matmul",
        "adam8bit_step",
    ]
    assert sys.executable  # the tool's own interpreter never imported torch


@pytest.mark.parametrize("name", ["verify-ok.json", "verify-init-h100.json"])
def test_a_real_report_reads_into_types_and_back_unchanged(name: str) -> None:
    text = (DEVICE / name).read_text()
    report = report_from_dict(json.loads(text))
    assert json.dumps(report.to_dict(), indent=2) == json.dumps(json.loads(text), indent=2)
    assert report.ok and report.library == "libbitsandbytes_cuda130.so"
    assert report.imported.torch is not None and report.imported.torch.cuda == "13.0"
    (h100,) = report.devices
    assert (h100.name, h100.compute_capability, h100.compute_dtype) == (
        "NVIDIA H100 80GB HBM3",
        "9.0",
        "bfloat16",
    )
    nf4 = h100.checks[0]
    assert (nf4.name, nf4.ok, nf4.rel_error, nf4.bound) == ("nf4_roundtrip", True, 0.0921, 0.15)
    assert report.failures() == []


def _interpreter_printing(tmp_path: Path, line: str) -> str:
    """A stand-in interpreter that prints ``line`` whatever it is asked to run."""
    bad = tmp_path / "python"
    bad.write_text(f"#!/bin/sh\ncat <<'EOF'\n{line}\nEOF\n")
    bad.chmod(0o755)
    return str(bad)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (json.dumps({"schema": VERIFY_SCHEMA, "ok": True}), "import: required field is missing"),
        (
            json.dumps({"schema": VERIFY_SCHEMA, "ok": True, "python": "3.12", "import": {}}),
            r"import\.ok: required field is missing",
        ),
        (
            json.dumps(
                {
                    "schema": VERIFY_SCHEMA,
                    "ok": True,
                    "python": "3.12",
                    "import": {"ok": True},
                    "devices": [{"device": "cpu", "checks": [{"check": "x", "ok": "yes"}]}],
                }
            ),
            r"devices\[0\]\.checks\[0\]\.ok: expected true or false, got string",
        ),
        (json.dumps({"schema": "someone-else/1"}), "schema: expected 'bnb-provision.verify/1'"),
        (json.dumps({"schema": 1}), "schema: expected a string, got integer"),
    ],
)
def test_a_malformed_report_is_a_clear_error(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(TargetEnvError, match=f"unexpected report from .*{message}"):
        run_verify(_interpreter_printing(tmp_path, line))


def test_output_that_is_not_json_is_a_crash_report(tmp_path: Path) -> None:
    with pytest.raises(TargetEnvError, match="crashed before reporting"):
        run_verify(_interpreter_printing(tmp_path, "{" * 100_000))


# A stand-in torch and bitsandbytes, just enough for the script to run its checks on the
# CPU path; BEHAVE picks how they misbehave.
_FAKE_TORCH = """
import os
__version__ = "2.13.0+cpu"
class version:
    cuda = None
VOLTA = os.environ["BEHAVE"] == "volta"
class cuda:
    is_available = staticmethod(lambda: VOLTA)
    device_count = staticmethod(lambda: 1 if VOLTA else 0)
    set_device = staticmethod(lambda index: None)
    get_device_capability = staticmethod(lambda index: (7, 0))
    get_device_name = staticmethod(lambda index: "Tesla V100-SXM2-16GB")
    synchronize = staticmethod(lambda: None)
float32, float16, bfloat16 = "torch.float32", "torch.float16", "torch.bfloat16"
def manual_seed(seed):
    pass
class Tensor:
    def __init__(self, v):
        self.v = v
    def float(self):
        return self
    def __sub__(self, other):
        return Tensor(self.v - other.v)
    def norm(self):
        return abs(self.v)
def randn(*shape, device=None, dtype=None):
    if os.environ["BEHAVE"] == "no-kernel":
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
    return Tensor(1.0)
"""
_FAKE_BNB = """
import os
if os.environ["BEHAVE"] == "exit":
    raise SystemExit("bitsandbytes: giving up")
__version__ = "0.50.2"
"""
_FAKE_FUNCTIONAL = """
from torch import Tensor
def quantize_4bit(a, quant_type):
    return a, None
def dequantize_4bit(q, state, quant_type):
    return Tensor(float("nan") if quant_type == "nf4" else q.v * 1.1)
"""


@pytest.fixture
def fake_stack(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text(_FAKE_TORCH)
    (site / "bitsandbytes").mkdir()
    (site / "bitsandbytes" / "__init__.py").write_text(_FAKE_BNB)
    (site / "bitsandbytes" / "functional.py").write_text(_FAKE_FUNCTIONAL)
    return site


def _script_output(site: Path, behave: str) -> dict[str, object]:
    """The script's own JSON, run on the stand-in stack, and the report read from it."""
    script = Path(__file__).parent.parent / "bnb_provision" / "env" / "_verify_script.py"
    env = {"PYTHONPATH": str(site), "BEHAVE": behave, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script.read_text()],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    raw: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    assert json.dumps(report_from_dict(raw).to_dict()) == json.dumps(raw)
    return raw


def test_a_nan_round_trip_fails_and_each_check_reports_alone(fake_stack: Path) -> None:
    _script_output(fake_stack, "nan")
    report = run_verify(sys.executable, env={"PYTHONPATH": str(fake_stack), "BEHAVE": "nan"})
    (cpu,) = report.devices
    checks = {c.name: c for c in cpu.checks}
    assert checks["nf4_roundtrip"].error == "nf4 round trip error nan > 0.15"
    assert checks["fp4_roundtrip"].ok and checks["fp4_roundtrip"].rel_error == 0.1
    assert checks["linear4bit_forward"].error_type == "AttributeError"  # no torch.nn here
    assert not report.ok and not cpu.ok and cpu.name == "CPU backend"
    assert report.failures()[0] == "cpu: nf4_roundtrip: nf4 round trip error nan > 0.15"


def test_a_device_that_cannot_run_torch_is_a_failed_check(fake_stack: Path) -> None:
    raw = _script_output(fake_stack, "no-kernel")
    report = report_from_dict(raw)
    (cpu,) = report.devices
    assert [c.name for c in cpu.checks] == ["device_setup"] and not cpu.ok
    assert report.failures() == [
        "cpu: device_setup: CUDA error: no kernel image is available for execution on the device"
    ]


def test_a_script_stopped_half_way_still_reports(fake_stack: Path) -> None:
    """bitsandbytes calls sys.exit() on import: the report stays well-formed and says so."""
    raw = _script_output(fake_stack, "exit")
    report = report_from_dict(raw)
    assert report.imported.torch is not None and report.imported.bitsandbytes is None
    assert report.failures() == ["import: SystemExit: bitsandbytes: giving up"]
    assert raw["error"] == "SystemExit: bitsandbytes: giving up" and raw["ok"] is False


def test_a_gpu_below_7_5_skips_llm_int8(fake_stack: Path) -> None:
    raw = _script_output(fake_stack, "volta")
    (gpu,) = report_from_dict(raw).devices
    assert (gpu.device, gpu.name, gpu.compute_capability, gpu.compute_dtype) == (
        "cuda:0",
        "Tesla V100-SXM2-16GB",
        "7.0",
        "float16",
    )
    int8 = next(c for c in gpu.checks if c.name == "llm_int8_matmul")
    assert int8.ok and int8.skipped == "LLM.int8() needs compute capability 7.5"
    assert int8.seconds is None and "seconds" not in int8.to_dict()
