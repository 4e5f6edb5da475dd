#!/bin/bash
# Run on a GPU machine (the device tool) from the repo root, with wheels carried in .whl/.
# The gpu-marked tests: NVML against nvidia-smi, the fatbin reader on torch's own CUDA
# library against torch's arch list, and verify on every GPU.
set -u
PY=$(command -v python3)
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/tomlkit-*.whl .whl/uv-*.whl .whl/bitsandbytes-*.whl 2>&1 | tail -2
"$PY" -m pytest -p no:cacheprovider -o addopts="" -m gpu -v -s tests/test_gpu.py 2>&1
