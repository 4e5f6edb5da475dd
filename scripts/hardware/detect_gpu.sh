#!/bin/bash
# Run on a GPU machine (the device tool) from the repo root, with wheels carried
# in .whl/: bitsandbytes (manylinux x86_64), uv, tomlkit. Writes to $OUT.
# It records what bnb-provision detect reports before and after bitsandbytes is
# installed, the raw driver outputs the parsers are tested on, and the detect
# benchmark against `python -m bitsandbytes` and torch's collect_env.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
echo "python3: $PY"; "$PY" -c 'import sys; print(sys.version)'
# raw outputs for the parser fixtures
nvidia-smi --query-gpu=index,name,compute_cap,memory.total,memory.free,uuid,driver_version,mig.mode.current \
  --format=csv,noheader,nounits > "$OUT/nvidia-smi-query.txt" 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
{ cat /proc/driver/nvidia/version; echo '--- gpus'; cat /proc/driver/nvidia/gpus/*/information; echo '--- os-release'; cat /etc/os-release; } > "$OUT/proc-and-os.txt" 2>&1
# the tool's own dependencies that the image lacks
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/tomlkit-*.whl .whl/uv-*.whl 2>&1 | tail -2
echo "== detect, no bitsandbytes"
"$PY" -m bnb_provision detect --python "$PY"
"$PY" -m bnb_provision detect --json --python "$PY" > "$OUT/detect-h100-nobnb.json"
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/bitsandbytes-*.whl 2>&1 | tail -2
echo "== detect, bitsandbytes installed"
"$PY" -m bnb_provision detect --python "$PY"
"$PY" -m bnb_provision detect --json --python "$PY" > "$OUT/detect-h100.json"
echo "== detect with BNB_CUDA_VERSION=118"
BNB_CUDA_VERSION=118 "$PY" -m bnb_provision detect --python "$PY" | tail -6
echo "== plan for this machine"
"$PY" -m bnb_provision plan --python 3.12
echo "== never imports torch"
"$PY" -X importtime -m bnb_provision detect --python "$PY" 2> "$OUT/importtime.txt" >/dev/null
grep -cE '\| (torch|bitsandbytes)($|\.)' "$OUT/importtime.txt" || echo "0 torch/bitsandbytes imports"
echo "== benchmark"
"$PY" benchmarks/bench_detect.py --runs 5 --python "$PY" --json "$OUT/bench-detect.json"
