#!/bin/bash
# Run on a GPU machine (the device tool) from the repo root, with wheels carried in
# .whl/: bitsandbytes (manylinux x86_64), uv, tomlkit. Writes to $OUT.
# Reproduces failure mode 1 (BNB_CUDA_VERSION=118 under torch cu130), has doctor
# diagnose it without running a kernel, applies the fix, and proves with verify.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/tomlkit-*.whl .whl/uv-*.whl .whl/bitsandbytes-*.whl 2>&1 | tail -2
BP="$PY -m bnb_provision"
echo "== 1. verify, as installed"
$BP verify --python "$PY"; echo "exit $?"
$BP verify --python "$PY" --json > "$OUT/verify-ok.json"
echo "== 2. BNB_CUDA_VERSION=118: doctor (no kernel runs)"
export BNB_CUDA_VERSION=118
$BP doctor --python "$PY"; echo "exit $?"
$BP doctor --python "$PY" --json > "$OUT/doctor-bnb118.json"
echo "== 3. what bitsandbytes itself prints, through explain"
"$PY" -c "import bitsandbytes" > "$OUT/import-bnb118.txt" 2>&1
tail -5 "$OUT/import-bnb118.txt"
$BP explain --log "$OUT/import-bnb118.txt"; echo "exit $?"
echo "== 4. verify with BNB_CUDA_VERSION=118 (expected to fail)"
$BP verify --python "$PY"; echo "exit $?"
echo "== 5. the fix doctor names: unset BNB_CUDA_VERSION; doctor and verify again"
unset BNB_CUDA_VERSION
$BP doctor --python "$PY"; echo "exit $?"
$BP verify --python "$PY"; echo "exit $?"
echo "== 6. detect benchmark"
"$PY" benchmarks/bench_detect.py --runs 7 --python "$PY" --json "$OUT/bench-detect.json"
