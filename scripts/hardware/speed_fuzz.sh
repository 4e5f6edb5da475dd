#!/bin/bash
# Speed figures and the long fuzz run on the GPU machine (the device tool), from the repo
# root, with wheels carried in .whl/: uv and tomlkit. Writes its logs to $OUT.
#   1. benchmarks/bench_plan.py: plan and detect as whole processes (NVML on a real GPU),
#      beside python's start and click's import; the resolver sweep
#   2. benchmarks/bench_init.py on a stand-in lock (benchmarks/standin_lock.py): init's
#      fixed cost over the bare uv venv + uv pip sync
#   3. the fuzz suite's long profile (10,000 examples a test) over every reader, on all
#      cores, each test its own process; the CLI-level fuzz runs on its own
# PARTS=speed or PARTS=fuzz runs one half.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=$(command -v python3)
WHL=${WHL:-.whl}
"$PY" -m pip install -q --no-index --no-deps --no-compile "$WHL"/tomlkit-*.whl "$WHL"/uv-*.whl 2>&1 | tail -2
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
"$PY" -m compileall -q bnb_provision tests benchmarks > /dev/null
nproc; "$PY" --version; "$PY" -c "import click, packaging; print('click', click.__version__, 'packaging', packaging.__version__)"
PARTS=${PARTS:-speed fuzz}
if [[ $PARTS == *speed* ]]; then
echo "== bench_plan"
"$PY" benchmarks/bench_plan.py --runs "${RUNS:-21}" 2>&1 | tee "$OUT/bench_plan.txt"
echo "== bench_init on a stand-in lock"
ARGS=$("$PY" benchmarks/standin_lock.py /tmp/standin)
(cd benchmarks && "$PY" bench_init.py $ARGS --runs "${RUNS:-21}" --pip-runs 3) 2>&1 | tee "$OUT/bench_init.txt"
fi
if [[ $PARTS == *fuzz* ]]; then
echo "== fuzz, long profile: each fuzz test its own process, $(nproc) at a time"
"$PY" -m pytest -q -p no:cacheprovider -m fuzz --collect-only --ignore=tests/test_fuzz_cli.py \
  | grep '::' > /tmp/fuzz_ids.txt
wc -l < /tmp/fuzz_ids.txt
mkdir -p /tmp/fuzz
start=$(date +%s)
< /tmp/fuzz_ids.txt xargs -P "$(nproc)" -I{} sh -c \
  'id="$1"; log="/tmp/fuzz/$(echo "$id" | tr -c "A-Za-z0-9_.-" _).txt";
   timeout "${FUZZ_SECONDS:-480}" "$0" -m pytest -q -p no:cacheprovider -m fuzz \
     --hypothesis-profile=long --hypothesis-show-statistics "$id" > "$log" 2>&1;
   echo "exit $? $id" >> "$log"' "$PY" {}
echo "fuzz wall: $(( $(date +%s) - start )) s"
cat /tmp/fuzz/*.txt > "$OUT/fuzz_long.txt"
grep -h "^exit " /tmp/fuzz/*.txt | sort | uniq -c | sort -rn | head -80
grep -h "Stopped because" "$OUT/fuzz_long.txt" | sort | uniq -c | sort -rn | head -20
grep -h " passing, " "$OUT/fuzz_long.txt" | awk '{p += $2; f += $4} END {print "examples: " p " passing, " f " failing, over " NR " phases"}'
fi
