"""doctor on real broken environments, built offline from real wheels.

A wheelhouse of real wheels is filled once with ``pip download --no-deps`` (network; pip
finds torch as it is configured); each environment is then built offline from it with
``uv pip install --no-deps``: real installed distributions, real native libraries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.core.uv import find_uv

pytestmark = pytest.mark.network
FIX = Path(__file__).parent / "fixtures"
WHEELS = (
    "torch==2.11.0",
    "torch==2.13.0",
    "bitsandbytes==0.50.2",
    "bitsandbytes==0.45.5",
    "transformers==5.24.0",
    "accelerate==1.15.0",
    "auto-gptq==0.7.1",
)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("real-wheels")
    for spec in WHEELS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(house),
                spec,
            ],
            check=True,
            timeout=1800,
        )
    return house


def _env(tmp: Path, house: Path, name: str, *specs: str) -> Path:
    env = tmp / name
    subprocess.run(
        [find_uv(), "venv", "-q", "--no-python-downloads", "--python", sys.executable, str(env)],
        check=True,
    )
    subprocess.run(
        [
            find_uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(env / "bin" / "python"),
            "--no-deps",
            "--offline",
            "--no-index",
            "--find-links",
            str(house),
            *specs,
        ],
        check=True,
    )
    return env / "bin" / "python"


def _doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    res = CliRunner().invoke(cli, ["doctor", *args, "--json"], env=env)
    return res.exit_code, json.loads(res.stdout)


def _with_gpu(python: Path, tmp: Path, extra_env: dict[str, str] | None = None) -> Path:
    """This environment's real detect snapshot, on the H100's driver and GPU."""
    res = CliRunner().invoke(cli, ["detect", "--json", "--python", str(python)], env=extra_env)
    snap = json.loads(res.stdout)
    h100 = json.loads((FIX / "snapshots" / "h100-bnb-0.50.2.json").read_text())
    snap["nvidia"], snap["gpus"], snap["os"] = h100["nvidia"], h100["gpus"], h100["os"]
    out = tmp / f"{python.parent.parent.name}.json"
    out.write_text(json.dumps(snap))
    return out


def _categories(report: dict[str, object]) -> dict[str, str]:
    return {f["id"]: f["category"] for f in report["findings"]}  # type: ignore[attr-defined]


def test_bnb_cuda_version_forcing_an_unshipped_library(tmp_path: Path, wheelhouse: Path) -> None:
    py = _env(
        tmp_path,
        wheelhouse,
        "forced",
        "torch==2.11.0",
        "bitsandbytes==0.50.2",
        "transformers==5.24.0",
        "accelerate==1.15.0",
    )
    snap = _with_gpu(py, tmp_path, {"BNB_CUDA_VERSION": "125"})
    code, report = _doctor("--machine", str(snap))
    assert code == 9
    first = report["findings"][0]  # type: ignore[index]
    assert first["category"] == "cuda_runtime_mismatch"
    assert first["fix"] == "unset BNB_CUDA_VERSION"
    assert "libbitsandbytes_cuda125.so" in " ".join(first["evidence"])


def test_cpu_only_torch_with_a_gpu_machines_snapshot(tmp_path: Path, wheelhouse: Path) -> None:
    py = _env(
        tmp_path,
        wheelhouse,
        "cpu",
        "torch==2.13.0",
        "bitsandbytes==0.50.2",
        "transformers==5.24.0",
        "accelerate==1.15.0",
    )
    code, report = _doctor("--machine", str(_with_gpu(py, tmp_path)))
    assert code == 9
    cats = _categories(report)
    assert cats.get("cpu-only-torch") == "cpu_only_build"
    fix = next(f["fix"] for f in report["findings"] if f["id"] == "cpu-only-torch")  # type: ignore[attr-defined]
    assert "bnb-provision rebuild" in fix


def test_auto_gptq_beside_bitsandbytes(tmp_path: Path, wheelhouse: Path) -> None:
    py = _env(
        tmp_path,
        wheelhouse,
        "gptq",
        "torch==2.11.0",
        "bitsandbytes==0.50.2",
        "transformers==5.24.0",
        "accelerate==1.15.0",
        "auto-gptq==0.7.1",
    )
    _code, report = _doctor("--python", str(py))
    assert _categories(report).get("conflicting-quant-libs") == "conflicting_quant_libs"


def test_transformers_below_its_bitsandbytes_floor(tmp_path: Path, wheelhouse: Path) -> None:
    py = _env(
        tmp_path,
        wheelhouse,
        "floor",
        "torch==2.11.0",
        "bitsandbytes==0.45.5",
        "transformers==5.24.0",
        "accelerate==1.15.0",
    )
    code, report = _doctor("--machine", str(_with_gpu(py, tmp_path)))
    assert code == 9
    cats = _categories(report)
    assert cats.get("hf-floor-transformers-bitsandbytes") == "hf_stack"
    # and the cu130 torch has no library in 0.45.5 at all (exact-match era)
    assert cats.get("no-bnb-library-for-torch-cuda") == "cuda_runtime_mismatch"
