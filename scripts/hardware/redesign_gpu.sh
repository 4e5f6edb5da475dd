#!/bin/bash
# The redesigned package on a GPU machine (the device tool), from the repo root, with
# wheels carried in .whl/: bitsandbytes (manylinux x86_64), uv, tomlkit. Writes to $OUT.
# Whole-process times of detect and plan (NVML on a real GPU), init adopting the
# machine's torch with bitsandbytes from the carried wheel, verify, doctor, explain on
# the error bitsandbytes really prints, fit against this GPU, and the GPU tests.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/tomlkit-*.whl .whl/uv-*.whl 2>&1 | tail -2
mkdir -p /tmp/wheelhouse && cp .whl/bitsandbytes-*.whl /tmp/wheelhouse/
export PYTHONPATH="$PWD"
BP="$PY -m bnb_provision"
cd /tmp
echo "== whole-process times (5 runs each): detect --json, plan --json"
for cmd in "detect --json" "plan --json"; do
  for i in 1 2 3 4 5; do
    s=$(date +%s.%N); $BP $cmd > /dev/null; e=$(date +%s.%N)
    echo "$cmd run $i: $(echo "$e - $s" | bc) s"
  done
done
$BP detect | head -8
$BP plan | head -12
echo "== init --torch system --offline --find-links /tmp/wheelhouse"
time $BP init --torch system --system-python "$PY" --offline --find-links /tmp/wheelhouse --env /tmp/.venv-bnb; echo "exit $?"
$BP verify --env /tmp/.venv-bnb --json > "$OUT/verify.json"; echo "verify exit $?"
$BP verify --env /tmp/.venv-bnb | tail -9
$BP doctor --env /tmp/.venv-bnb; echo "doctor exit $?"
$BP rebuild --torch system --system-python "$PY" --offline --find-links /tmp/wheelhouse --env /tmp/.venv-bnb --dry-run; echo "rebuild exit $?"
echo "== the error bitsandbytes prints under BNB_CUDA_VERSION=118, through explain"
BNB_CUDA_VERSION=118 /tmp/.venv-bnb/bin/python -c "
import torch, bitsandbytes.functional as F
F.quantize_4bit(torch.randn(64, 64, device='cuda', dtype=torch.float16))" > /tmp/err.txt 2>&1
tail -5 /tmp/err.txt; cp /tmp/err.txt "$OUT/bnb-cuda118-error.txt"
$BP explain --log /tmp/err.txt; echo "explain exit $?"
BNB_CUDA_VERSION=118 $BP doctor --env /tmp/.venv-bnb | head -8; echo "doctor exit $?"
echo "== fit against this GPU"
$BP fit --model-params 8B --mode qlora --seq 2048 | tail -12; echo "fit exit $?"
$BP detect --json > "$OUT/detect.json"
echo "== pytest -m gpu"
cd "$PYTHONPATH" && "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m gpu tests/test_gpu.py 2>&1 | tail -4
