"""Speed of `plan` and `detect` as whole processes, beside Python's own start and the
import of click (the floor any click command pays), interleaved; then an in-process sweep
of every GPU architecture x driver branch x OS x Python through the resolver.

    python benchmarks/bench_plan.py --runs 11
Goals: `plan` and `detect` under 0.3 s as whole processes (issue 11); the sweep under 2 s.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time

from packaging.version import Version

from bnb_provision.db.load import load_db
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.model import Target
from bnb_provision.plan.resolve import make_plan

GPUS = [
    ("K80", (3, 7)),
    ("M40", (5, 2)),
    ("P100", (6, 0)),
    ("GTX 1080 Ti", (6, 1)),
    ("V100", (7, 0)),
    ("T4", (7, 5)),
    ("A100", (8, 0)),
    ("RTX 3090", (8, 6)),
    ("Orin-class", (8, 7)),
    ("RTX 4090", (8, 9)),
    ("H100", (9, 0)),
    ("B200", (10, 0)),
    ("B300", (10, 3)),
    ("RTX 5090", (12, 0)),
    ("GB10", (12, 1)),
]
DRIVERS = [
    "450.80.02",
    "470.82.01",
    "525.60.13",
    "535.104.05",
    "550.54.14",
    "560.35.03",
    "570.124.06",
    "575.57.08",
    "580.95.05",
    "590.44.01",
    "595.45.04",
]
PLATFORMS = [("linux", "x86_64"), ("linux", "aarch64"), ("windows", "x86_64")]
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]


def sweep() -> tuple[int, int, float]:
    db = load_db()
    ok = failed = 0
    start = time.perf_counter()
    for (name, cc), drv, (os_name, arch), py in itertools.product(
        GPUS, DRIVERS, PLATFORMS, PYTHONS
    ):
        target = Target(os=os_name, arch=arch, python=py, driver=Version(drv), gpus=((name, cc),))
        try:
            make_plan(target, db)
            ok += 1
        except NoPlanError:
            failed += 1
    for os_name, arch in (("linux", "x86_64"), ("windows", "x86_64"), ("macos", "aarch64")):
        for py in PYTHONS:
            try:
                make_plan(Target(os=os_name, arch=arch, python=py, driver=None, gpus=()), db)
                ok += 1
            except NoPlanError:
                failed += 1
    return ok, failed, time.perf_counter() - start


def _whole_processes(runs: int) -> dict[str, list[float]]:
    """Each command ``runs`` times, interleaved; a command that fails is dropped."""
    tool = [sys.executable, "-m", "bnb_provision"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import click'": [sys.executable, "-c", "import click"],
        "plan --gpu 'RTX 3090' --driver --python --json": [
            *tool,
            "plan",
            "--gpu",
            "RTX 3090",
            "--driver",
            "550.54.14",
            "--python",
            "3.12",
            "--json",
        ],
        "plan --json (this machine, detected)": [*tool, "plan", "--json"],
        "detect --json": [*tool, "detect", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            if name not in times:
                continue
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, check=False)
            if done.returncode != 0:
                del times[name]
                continue
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    times = _whole_processes(args.runs)
    floor = statistics.median(times["python -c 'import click'"])
    print(f"{'whole process':50} {'median s':>9} {'min':>7} {'max':>7} {'over click':>11}")
    for name, ts in times.items():
        over = f"{(statistics.median(ts) - floor) * 1000:+9.0f} ms"
        print(f"{name:50} {statistics.median(ts):9.3f} {min(ts):7.3f} {max(ts):7.3f} {over:>11}")
    print("goal: plan and detect under 0.3 s as whole processes")
    ok, failed, secs = sweep()
    print(
        f"sweep: {ok + failed} machines ({len(GPUS)} GPUs x {len(DRIVERS)} drivers x "
        f"{len(PLATFORMS)} platforms x {len(PYTHONS)} Pythons + CPU/macOS), {ok} planned, "
        f"{failed} with no plan, in {secs:.3f} s; goal < 2 s"
    )


if __name__ == "__main__":
    main()
