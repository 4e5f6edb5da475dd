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
# wave 1: 10,000 examples a test, each test bounded by FUZZ_SECONDS; wave 2: the tests
# wave 1 stopped, again with BNB_FUZZ_EXAMPLES (1,000) examples
"$PY" -m pytest -q -p no:cacheprovider -m fuzz --collect-only --ignore=tests/test_fuzz_cli.py \
  | grep '::' | sed 's/\[.*//' | sort -u | head -n "${FUZZ_LIMIT:-100000}" > /tmp/fuzz_ids.txt
wc -l < /tmp/fuzz_ids.txt
fuzz_wave() {  # $1: ids file, $2: log folder, $3: seconds a test
  mkdir -p "$2"
  < "$1" xargs -P "$(nproc)" -I{} sh -c \
    'id="$1"; log="$2/$(echo "$id" | tr -c "A-Za-z0-9_.-" _).txt";
     timeout "$3" "$0" -m pytest -q -p no:cacheprovider -m fuzz --hypothesis-profile=long \
       --hypothesis-show-statistics "$id" > "$log" 2>&1;
     printf "\nexit %s %s\n" "$?" "$id" >> "$log"' "$PY" {} "$2" "$3"
}
start=$(date +%s)
fuzz_wave /tmp/fuzz_ids.txt /tmp/fuzz1 "${FUZZ_SECONDS:-240}"
grep -h "^exit 124 " /tmp/fuzz1/*.txt | cut -d' ' -f3 > /tmp/fuzz_slow.txt
echo "wave 1: $(( $(date +%s) - start )) s; stopped at the bound: $(wc -l < /tmp/fuzz_slow.txt)"
BNB_FUZZ_EXAMPLES=${FUZZ_SECOND_EXAMPLES:-1000} fuzz_wave /tmp/fuzz_slow.txt /tmp/fuzz2 "${FUZZ_SECONDS:-240}"
echo "fuzz wall: $(( $(date +%s) - start )) s"
cat /tmp/fuzz1/*.txt /tmp/fuzz2/*.txt 2>/dev/null > "$OUT/fuzz_long.txt"
for w in fuzz1 fuzz2; do
  echo "-- $w"; grep -h "^exit " /tmp/$w/*.txt 2>/dev/null | cut -d' ' -f2 | sort | uniq -c
  cat /tmp/$w/*.txt 2>/dev/null | grep -h " passing, " \
    | awk '{p += $2; f += $4} END {print "examples: " p " passing, " f " failing"}'
done
grep -h "^exit [^0]" /tmp/fuzz1/*.txt /tmp/fuzz2/*.txt 2>/dev/null | grep -v "^exit 124" | head -20
fi
