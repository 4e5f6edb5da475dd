"""Time the whole `bnb-provision detect` process against the tools users run today.

Runs each command N times, interleaved (A B C A B C ...) so drift hits all of
them alike, and prints the median wall time of each and the ratios. Commands
whose tool is missing (no torch, no bitsandbytes) are reported as skipped.

    python benchmarks/bench_detect.py --runs 5 --python python3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(cmd: list[str], env: dict[str, str]) -> float | None:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    return elapsed if proc.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that has torch/bitsandbytes (the target env)",
    )
    ap.add_argument("--json", dest="json_out", help="also write the results here")
    args = ap.parse_args()
    target = shutil.which(args.python) or args.python
    env = dict(os.environ)
    tool = [sys.executable, "-m", "bnb_provision"]
    commands = {
        "bnb-provision detect": [*tool, "detect"],
        "bnb-provision detect --json --python": [*tool, "detect", "--json", "--python", target],
        "python -m bitsandbytes": [target, "-m", "bitsandbytes"],
        "python -m torch.utils.collect_env": [target, "-m", "torch.utils.collect_env"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    failed: set[str] = set()
    for _ in range(args.runs):
        for name, cmd in commands.items():
            if name in failed:
                continue
            t = _time(cmd, env)
            if t is None:
                failed.add(name)
            else:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items() if v and k not in failed}
    base = med.get("bnb-provision detect")
    print(f"{'command':42} {'median s':>9} {'runs':>5} {'x detect':>9}")
    for name in commands:
        if name not in med:
            print(f"{name:42} {'skipped (failed or missing)':>26}")
            continue
        ratio = f"{med[name] / base:8.1f}x" if base else "-"
        print(f"{name:42} {med[name]:9.3f} {len(times[name]):5d} {ratio:>9}")
    if args.json_out:
        with Path(args.json_out).open("w", encoding="utf-8") as fh:
            json.dump(
                {"runs": args.runs, "median_s": med, "all_s": times, "skipped": sorted(failed)},
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
