"""Facts explain reads out of a text, and the generic signatures for failures no single
library owns (the dynamic loader, the CUDA runtime, compiled extensions)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.explain.explanation import Explanation, explain_text

CORPUS = toml_loads(
    (Path(__file__).parent / "fixtures" / "explain" / "corpus.toml").read_text(encoding="utf-8")
)["case"]


def _facts(text: str) -> dict[str, str]:
    return {name: f.value for name, f in explain_text(text).facts.items()}


# -- facts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '  File "/home/u/venv/lib/python3.10/site-packages/torch/cuda/__init__.py", line 9',
            {"python": "3.10", "os": "linux", "library": "torch"},
        ),
        (
            "C:\\Users\\me\\AppData\\Local\\Programs\\Python\\Python311\\Lib\\site-packages\\x.py",
            {"python": "3.11", "os": "windows"},
        ),
        (
            "/Users/me/miniconda3/lib/python3.9/site-packages/bitsandbytes/cextension.py:34: UserWarning",
            {"os": "macos", "python": "3.9", "library": "bitsandbytes"},
        ),
        ("/mnt/c/Users/me/venv/lib/python3.12/site-packages/a.py", {"os": "wsl"}),
        ("/sensei-fs/users/me/lib/python3.9/site-packages/peft/__init__.py", {"os": "linux"}),
        ("Python 3.10.11 (tags/v3.10.11, Apr  5 2023)", {"python": "3.10"}),
        ("torch                    2.4.1+cu121", {"torch": "2.4.1", "torch_cuda": "12.1"}),
        ("Torch: 2.0.1 + cu11.8", {"torch": "2.0.1", "torch_cuda": "11.8"}),
        ("PyTorch version (GPU?): 1.13.1+cu117 (True)", {"torch": "1.13.1", "torch_cuda": "11.7"}),
        (
            "CUDA SETUP: PyTorch settings found: CUDA_VERSION=118, Highest Compute Capability: 8.6.",
            {"torch_cuda": "11.8", "compute_capability": "8.6", "sm": "86"},
        ),
        ("CUDA SETUP: Detected CUDA version 114", {"cuda": "11.4"}),
        (
            "CUDA specs: CUDASpecs(highest_compute_capability=(8, 6), cuda_version_string='121')",
            {"torch_cuda": "12.1", "compute_capability": "8.6"},
        ),
        ("Cuda compilation tools, release 12.5, V12.5.40", {"cuda": "12.5"}),
        (
            "| NVIDIA-SMI 470.86       Driver Version: 470.86       CUDA Version: 11.4     |",
            {"driver": "470.86", "driver_cuda": "11.4"},
        ),
        (
            "The NVIDIA driver on your system is too old (found version 11040).",
            {"driver_cuda": "11.4"},
        ),
        (
            "NVIDIA GeForce RTX 3090 with CUDA capability sm_86 is not compatible",
            {"gpu": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"},
        ),
        (
            "Your Tesla T4 GPU has compute capability 7.5.",
            {"gpu": "Tesla T4", "compute_capability": "7.5"},
        ),
        (
            "Loading binary /usr/lib/python3/dist-packages/bitsandbytes/libbitsandbytes_cuda118.so...",
            {
                "bnb_lib": "libbitsandbytes_cuda118.so",
                "lib_cuda": "11.8",
                "lib_kind": "cuda",
                "lib_format": "so",
            },
        ),
        (
            "bitsandbytes==0.44.0.dev0\ntransformers==4.44.2\naccelerate 0.33.0",
            {"bnb": "0.44.0.dev0", "transformers": "4.44.2", "accelerate": "0.33.0"},
        ),
        (
            "vllm 0.2.1.post1 requires torch==2.0.1, but you have torch 2.3.0 which is incompatible.",
            {"torch": "2.3.0"},
        ),
        (
            "torch.OutOfMemoryError: CUDA out of memory. GPU 0 has a total capacity of 39.56 GiB",
            {"gpu_memory": "39.56 GiB"},
        ),
    ],
)
def test_facts_from_paths_banners_and_reports(text: str, expected: dict[str, str]) -> None:
    facts = _facts(text)
    assert {k: facts.get(k) for k in expected} == expected


def test_a_gpu_named_without_its_capability_gets_it_from_the_db() -> None:
    facts = _facts(
        "I run this on a Jetson Orin: RuntimeError: CUDA Error: no kernel image is available"
    )
    assert facts["gpu"].lower() == "jetson orin" and facts["compute_capability"] == "8.7"


def test_facts_agree_with_the_corpus() -> None:
    """Against what careful readers took from each real text (the corpus' [case.facts])."""
    keys = (
        "os",
        "python",
        "bnb_lib",
        "compute_capability",
        "driver",
        "driver_cuda",
        "extension",
        "torch",
        "torch_cuda",
    )
    good: Counter[str] = Counter()
    total: Counter[str] = Counter()
    misses: list[str] = []
    for case in CORPUS:
        got = _facts(case["text"])
        for key in keys:
            want = case.get("facts", {}).get(key)
            if want is None:
                continue
            total[key] += 1
            value = got.get(key, "")
            if key in {"python", "torch"}:
                value, want = (
                    ".".join(value.split("+")[0].split(".")[:2]),
                    ".".join(want.split("+")[0].split(".")[:2]),
                )
            if value.lower() == want.lower():
                good[key] += 1
            else:
                misses.append(f"{case['id']}: {key} {want!r} != {got.get(key)!r}")
    print("\n" + ", ".join(f"{k} {good[k]}/{total[k]}" for k in keys))  # noqa: T201 - the rates and the misses, for -s
    print("\n".join(misses))  # noqa: T201 - the rates and the misses, for -s
    for key in keys:
        assert good[key] / total[key] >= 0.8, (key, good[key], total[key])
    assert sum(good.values()) / sum(total.values()) >= 0.88


# -- generic signatures ------------------------------------------------------------------


def _top(text: str) -> Explanation:
    return explain_text(text)


@pytest.mark.parametrize(
    ("text", "cause", "facts"),
    [
        (
            "OSError: libcudart.so.11.0: cannot open shared object file: No such file or directory",
            "cuda-runtime-library-missing",
            {"missing_lib": "libcudart.so.11.0", "cuda_major": "11"},
        ),
        (
            "Could not load bitsandbytes native library: libcusparse.so.12: cannot open shared object file",
            "cuda-runtime-library-missing",
            {"cuda_major": "12"},
        ),
        (
            "OSError: libcuda.so: cannot open shared object file: No such file or directory",
            "cuda-driver-library-missing",
            {},
        ),
        (
            "OSError: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by x.so)",
            "native-library-needs-newer-libc",
            {},
        ),
        (
            "ImportError: DLL load failed while importing exllama_kernels: The specified module could not be found.",
            "stack-extension-not-loaded",
            {"extension": "exllama_kernels", "stack": "auto-gptq"},
        ),
        (
            "OSError: [WinError 126] The specified module could not be found.",
            "windows-dll-load",
            {},
        ),
        (
            "RuntimeError: CUDA error: no kernel image is available for execution on the device",
            "no-kernel-image",
            {},
        ),
        (
            "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version",
            "driver-too-old",
            {},
        ),
        ("Failed to initialize NVML: Driver/library version mismatch", "nvml-driver-mismatch", {}),
        (
            "RuntimeError: Error named symbol not found at line 233 in file /src/csrc/ops.cu",
            "bnb-kernel-missing-for-gpu",
            {},
        ),
    ],
)
def test_generic_signatures(text: str, cause: str, facts: dict[str, str]) -> None:
    e = _top(text)
    assert e.findings[0].id == cause
    assert {k: e.facts[k].value for k in facts} == facts


@pytest.mark.parametrize(
    ("ext", "stack"),
    [
        ("awq_inference_engine", "autoawq"),
        ("exllamav2_ext", "exllamav2"),
        ("exllama_kernels", "auto-gptq"),
        ("flash_attn_2_cuda", "flash-attn"),
    ],
)
def test_mangled_torch_symbol_names_the_extension_and_its_stack(ext: str, stack: str) -> None:
    e = _top(
        f"ImportError: /venv/lib/python3.10/site-packages/{ext}.cpython-310-x86_64-linux-gnu.so: "
        "undefined symbol: _ZN3c104cuda9SetDeviceEi"
    )
    top = e.findings[0]
    assert top.id == "extension-built-for-other-torch" and top.category == "conflicting_quant_libs"
    assert e.facts["extension"].value == ext and e.facts["stack"].value == stack
    assert top.fix is not None and f"{ext} ({stack})" in top.title and stack in top.fix


def test_an_undefined_plain_c_symbol_is_not_a_torch_mismatch() -> None:
    e = _top(
        "AttributeError: /venv/lib/python3.10/site-packages/bitsandbytes/libbitsandbytes_cpu.so: undefined symbol: cquantize_blockwise_bf16_nf4"
    )
    assert "extension-built-for-other-torch" not in [f.id for f in e.findings]
    assert e.findings[0].category == "cpu_only_build"


def test_fixes_are_filled_from_the_facts() -> None:
    e = _top(
        "| NVIDIA-SMI 470.86       Driver Version: 470.86       CUDA Version: 11.4     |\n"
        '  File "/home/u/.venv/lib/python3.11/site-packages/torch/cuda/__init__.py", line 1\n'
        "RuntimeError: The NVIDIA driver on your system is too old (found version 11040)."
    )
    top = e.findings[0]
    assert top.id == "driver-too-old"
    assert "CUDA 11.4" in top.title
    assert top.fix is not None and "bnb-provision plan --driver 470.86 --python 3.11" in top.fix
