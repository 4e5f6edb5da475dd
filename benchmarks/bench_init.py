"""`bnb-provision init` from a warm uv cache vs the bare `uv venv` + `uv pip sync` of the same
lock, and vs pip installing the same lock; whole processes, interleaved, offline from a
wheelhouse.

    python benchmarks/bench_init.py --lock locks/X.requirements.txt --wheelhouse DIR --runs 3
Goal (issue 5): init at most 1.15x the bare uv sync. init runs with --no-verify here so
the same work is compared; verify's own time is reported separately.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bnb_provision.uv import find_uv


def timed(cmd: list[str] | str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, shell=isinstance(cmd, str))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lock", type=Path, required=True)
    ap.add_argument("--wheelhouse", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lock, house = args.lock.resolve(), args.wheelhouse.resolve()
    uv = find_uv()
    work = Path(tempfile.mkdtemp(prefix="bench-init-"))
    cache = work / "cache"

    def fresh(name: str) -> Path:
        p = work / name
        shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(work / f"{name}.d", ignore_errors=True)
        if p.is_symlink():
            p.unlink()
        return p

    def run_init() -> float:
        env = fresh("init-env")
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

    import os

    os.environ["UV_CACHE_DIR"] = str(cache)
    run_uv()  # warm the cache
    run_init()
    t_init, t_uv, t_pip = [], [], []
    for _ in range(args.runs):
        t_uv.append(run_uv())
        t_init.append(run_init())
        t_pip.append(run_pip())
    mi, mu, mp = (statistics.median(x) for x in (t_init, t_uv, t_pip))
    print(f"uv venv + uv pip sync : {mu:.2f} s")
    print(f"bnb-provision init    : {mi:.2f} s  ({mi / mu:.2f}x uv sync; goal <= 1.15x)")
    print(f"pip install -r lock   : {mp:.2f} s  ({mp / mu:.2f}x uv sync, {mp / mi:.2f}x init)")
    env = work / "init-env"
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
