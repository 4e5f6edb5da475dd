"""Tests that need a real NVIDIA GPU (``-m gpu``); run on the device:

python3 -m pytest -m gpu tests/test_gpu.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bnb_provision.detect.fatbin import read_kernels
from bnb_provision.detect.machine import detect_machine
from bnb_provision.detect.nvidia import SMI_FIELDS, parse_nvidia_smi_csv

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no NVIDIA driver here"),
]


def test_nvml_reads_every_gpu() -> None:
    m = detect_machine()
    assert m.nvidia is not None and m.nvidia.source == "nvml", m.warnings
    assert m.nvidia.cuda_driver is not None
    assert m.gpus
    for g in m.gpus:
        assert g.compute_capability is not None and g.memory_total_mib
        assert g.uuid and g.uuid.startswith("GPU-")


def test_nvml_agrees_with_nvidia_smi() -> None:
    m = detect_machine()
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    driver, gpus = parse_nvidia_smi_csv(out)
    assert m.nvidia is not None and driver == m.nvidia.driver
    for nvml, smi in zip(m.gpus, gpus, strict=True):
        assert (nvml.name, nvml.compute_capability, nvml.uuid) == (
            smi.name,
            smi.compute_capability,
            smi.uuid,
        )
        assert abs((nvml.memory_total_mib or 0) - (smi.memory_total_mib or 0)) <= 1


def _site_file(python: str, rel: str) -> Path | None:
    code = (
        "import importlib.util, sys; s = importlib.util.find_spec(sys.argv[1]); "
        "print(s.submodule_search_locations[0] if s else '')"
    )
    top = rel.split("/", maxsplit=1)[0]
    done = subprocess.run([python, "-c", code, top], capture_output=True, text=True, check=False)
    base = done.stdout.strip()
    if not base:
        return None
    path = Path(base).parent / rel
    return path if path.exists() else None


def test_torch_cuda_library_covers_this_gpu() -> None:
    """Our fatbin reader on torch's own (very large) CUDA library covers torch's arch list.

    The library also holds SASS for more architectures than ``get_arch_list()`` names
    (kernels of bundled libraries built with their own targets), so the check is "at
    least": torch's coverage in the DB comes from the arch list, not from this file.
    """
    lib = _site_file("python3", "torch/lib/libtorch_cuda.so")
    if lib is None:
        pytest.skip("no CUDA torch in python3")
    k = read_kernels(lib)
    m = detect_machine()
    for g in m.gpus:
        assert g.compute_capability is not None
        assert k.covers(*g.compute_capability) == "sass", (k.sass, g.cc_text)
    code = "import torch, json; print(json.dumps(torch.cuda.get_arch_list()))"
    arch = json.loads(
        subprocess.run(["python3", "-c", code], capture_output=True, text=True, check=True).stdout
    )
    sass = sorted(int(a[3:]) for a in arch if a.startswith("sm_"))
    assert set(sass) <= set(k.sass), (sass, k.sass)


def test_verify_passes_on_every_gpu() -> None:
    from bnb_provision.env.verify import run_verify

    if _site_file("python3", "bitsandbytes/__init__.py") is None:
        pytest.skip("no bitsandbytes in python3")
    report = run_verify(shutil.which("python3") or "python3")
    assert report.ok, report.failures()
    assert {d.device for d in report.devices} == {
        f"cuda:{i}" for i in range(len(detect_machine().gpus))
    }
    assert sys.executable  # the test process itself never imported torch
