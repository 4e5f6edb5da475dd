"""`bnb-provision init` from a warm uv cache vs the bare `uv venv` + `uv pip sync` of the same
lock, and vs pip installing the same lock; whole processes, interleaved, offline from a
wheelhouse.

    python benchmarks/bench_init.py --lock locks/X.requirements.txt --wheelhouse DIR --runs 7
Goal (issue 11): at most 100 ms over the bare uv calls. init runs with --no-verify here so
the same work is compared; verify's own time is reported separately.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import overhead, timed

from bnb_provision.core.uv import find_uv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lock", type=Path, required=True)
    ap.add_argument("--wheelhouse", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--pip-runs", type=int, default=1, help="pip is slow: fewer runs of it")
    ap.add_argument(
        "--link-mode",
        choices=["hardlink", "copy"],
        default="hardlink",
        help="how uv places files from its cache, for both sides (UV_LINK_MODE); copy is what "
        "happens when the cache is on another file system than the environment",
    )
    args = ap.parse_args()
    lock, house = args.lock.resolve(), args.wheelhouse.resolve()
    uv = find_uv()
    work = Path(tempfile.mkdtemp(prefix="bench-init-"))
    cache = work / "cache"

    counter = itertools.count()

    def fresh(name: str) -> Path:
        # a new folder per run, all removed at the end: deleting ~10,000 hard links between
        # runs makes the disk (mounted with online discard here) slow the next run down
        p = work / f"{name}-{next(counter)}"
        os.sync()  # no timed run pays for the previous run's writes
        return p

    inits: list[Path] = []

    def run_init() -> float:
        env = fresh("init-env")
        inits.append(env)
        return timed(
            [
                sys.executable,
                "-m",
                "bnb_provision",
                "init",
                "--lock",
                str(lock),
                "--offline",
                "--find-links",
                str(house),
                "--no-verify",
                "--env",
                str(env),
            ],
            work,
        )

    def run_uv() -> float:
        env = fresh("uv-env")
        return timed(
            f"{uv} venv -q --no-python-downloads --python {sys.executable} {env} && "
            f"{uv} pip sync -q --python {env}/bin/python --require-hashes --offline "
            f"--no-index --find-links {house} {lock}",
            work,
        )

    def run_pip() -> float:
        env = fresh("pip-env")
        return timed(
            f"{sys.executable} -m venv {env} && {env}/bin/python -m pip install -q "
            f"--no-index --find-links {house} --require-hashes -r {lock}",
            work,
        )

    os.environ["UV_CACHE_DIR"] = str(cache)
    os.environ["UV_LINK_MODE"] = args.link_mode
    # an installed tool has its bytecode compiled (pip does it at install time); let the
    # warm-up runs write it here too, so no run pays for compiling our modules
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    run_uv()  # warm the cache
    run_init()
    t_init, t_uv, t_pip = [], [], []
    for i in range(args.runs):
        t_uv.append(run_uv())
        t_init.append(run_init())
        if i < args.pip_runs:
            t_pip.append(run_pip())
        if args.link_mode == "copy":  # full copies: free the disk between rounds (untimed)
            for p in work.iterdir():
                if p.name != "cache" and p != inits[-1] and p.name != f"{inits[-1].name}.d":
                    if p.is_symlink():
                        p.unlink()
                    else:
                        shutil.rmtree(p, ignore_errors=True)
    print("uv   runs:", " ".join(f"{t:.3f}" for t in t_uv))
    print("init runs:", " ".join(f"{t:.3f}" for t in t_init))
    mi, mu = statistics.median(t_init), statistics.median(t_uv)
    print(overhead("bnb-provision init (uv venv + uv pip sync)", t_init, t_uv, goal_ms=100))
    if t_pip:
        mp = statistics.median(t_pip)
        print(f"pip install -r lock   : {mp:.2f} s  ({mp / mu:.1f}x uv sync, {mp / mi:.1f}x init)")
    env = inits[-1]
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bnb_provision", "verify", "--env", str(env)],
        capture_output=True,
        check=False,
    )
    print(f"verify (not in the above): {time.perf_counter() - t0:.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
