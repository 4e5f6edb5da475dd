#!/bin/bash
# Run on a GPU machine (the device tool) from the repo root, with wheels carried in
# .whl/: bitsandbytes (manylinux x86_64), uv, tomlkit. Writes to $OUT.
# GPU end to end: adopt the machine's torch (--torch system), install bitsandbytes
# offline from the carried wheel into a new environment, verify on the GPU, stamp.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
# the tool's own dependencies that the image lacks (bitsandbytes is NOT installed here)
"$PY" -m pip install -q --no-index --no-deps --no-compile .whl/tomlkit-*.whl .whl/uv-*.whl 2>&1 | tail -2
mkdir -p /tmp/wheelhouse && cp .whl/bitsandbytes-*.whl /tmp/wheelhouse/
cd /tmp
BP="$PY -m bnb_provision"
export PYTHONPATH="$OLDPWD"
echo "== init --torch system --offline --find-links /tmp/wheelhouse"
time $BP init --torch system --system-python "$PY" --offline --find-links /tmp/wheelhouse --env /tmp/.venv-bnb; echo "exit $?"
ls -la /tmp/.venv-bnb /tmp/.venv-bnb.d
cp /tmp/.venv-bnb/bnb-provision-stamp.json "$OUT/stamp.json"
echo "== verify --env /tmp/.venv-bnb --json"
$BP verify --env /tmp/.venv-bnb --json > "$OUT/verify-init.json"; echo "exit $?"
echo "== detect and doctor on the new environment"
$BP detect --env /tmp/.venv-bnb | tail -14
$BP doctor --env /tmp/.venv-bnb; echo "exit $?"
echo "== rebuild --dry-run (nothing changed: verify passes, plan the same)"
$BP rebuild --torch system --system-python "$PY" --offline --find-links /tmp/wheelhouse --env /tmp/.venv-bnb --dry-run; echo "exit $?"
