"""Overhead of `bnb-provision lock` over the bare `uv pip compile` of the same input.

Both run as whole processes, interleaved, with a warm uv cache (one untimed run of each
first). The bare command compiles the exact pyproject.toml that lock generates, with the
same flags, and, like lock, finds its previous output in place (uv keeps the versions of
an existing output file where the pins allow). lock's own part is planning (DB, snapshot,
resolver), checking uv's output and writing the files. Then N groups (machines needing
different plans) are locked in one call, against the slowest single group and the N bare
compiles started together (what the machine's CPUs allow).

    python benchmarks/bench_lock.py --runs 7            # against PyPI (network)
Goal (issue 11): at most 100 ms over the bare uv call; N groups about the slowest one.
"""

from __future__ import annotations

import argparse
import json
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
from bnb_provision.db.load import load_db
from bnb_provision.detect.snapshot import machine_from_dict
from bnb_provision.lock.compile import uv_compile_args
from bnb_provision.lock.lockset import LockOptions, spec_for
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.inputs import plan_for

MACHINES = {  # all on PyPI's own CUDA builds, so the run needs no PyTorch index
    "a100": ("linux", "x86_64", "NVIDIA A100", "580.95.05", "3.11"),
    "gh200": ("linux", "aarch64", "NVIDIA GH200 480GB", "580.95.05", "3.12"),
    "b200-py3.13": ("linux", "x86_64", "NVIDIA B200", "590.44.01", "3.13"),
}


def snapshot(
    system: str, arch: str, gpu: str | None, driver: str | None, python: str
) -> dict[str, object]:
    snap: dict[str, object] = {
        "os": {"system": system, "arch": arch},
        "python": {"version": python},
    }
    if gpu:
        snap["nvidia"] = {"driver": driver}
        snap["gpus"] = [{"name": gpu}]
    return snap


def timed_together(cmds: list[list[str]], cwd: Path) -> float:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in cmds
    ]
    if any(p.wait() for p in procs):
        raise SystemExit(f"a bare uv compile failed: {cmds}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    db = load_db()
    work = Path(tempfile.mkdtemp(prefix="bench-lock-"))
    cache = work / "uv-cache"
    snaps = work / "snaps"
    snaps.mkdir()
    for name, (system, arch, gpu, driver, py) in MACHINES.items():
        (snaps / f"{name}.json").write_text(json.dumps(snapshot(system, arch, gpu, driver, py)))
    one = snaps / "a100.json"
    machine = machine_from_dict(json.loads(one.read_text()))
    plan = plan_for(machine, db, Constraints())
    opts = LockOptions(output=work / "out", cache_dir=cache)
    spec = spec_for(plan, ("a100",), None, db, opts)
    (work / "in").mkdir()
    input_file = work / "in" / "pyproject.toml"
    input_file.write_text(spec.uv_input)
    bare = [find_uv(), *uv_compile_args(spec, input_file, work / "pylock.toml", opts)]
    tool = [
        sys.executable,
        "-m",
        "bnb_provision",
        "lock",
        "--machine",
        str(one),
        "-o",
        str(work / "out"),
        "--force",
    ]
    # the tool passes no --cache-dir: point uv at the same cache through UV_CACHE_DIR
    os.environ["UV_CACHE_DIR"] = str(cache)
    os.environ["XDG_CACHE_HOME"] = str(work / "xdg")  # bnb-provision's own cache in here
    # an installed tool has its bytecode compiled (pip does it at install time); let the
    # warm-up run write it here too, so no timed run pays for compiling our modules
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    timed(bare, work)
    timed(tool, work)
    t_bare, t_tool = [], []
    for _ in range(args.runs):
        t_bare.append(timed(bare, work))
        t_tool.append(timed(tool, work))
    print(overhead("bnb-provision lock", t_tool, t_bare, goal_ms=100))
    groups_cmd = [
        sys.executable,
        "-m",
        "bnb_provision",
        "lock",
        "--machine",
        str(snaps),
        "-o",
        str(work / "out-n"),
        "--force",
        "--json",
    ]
    timed(groups_cmd, work)
    t_n = [timed(groups_cmd, work) for _ in range(args.runs)]
    singles = []
    for snap in sorted(snaps.glob("*.json")):
        cmd = [
            sys.executable,
            "-m",
            "bnb_provision",
            "lock",
            "--machine",
            str(snap),
            "-o",
            str(work / f"out-{snap.stem}"),
            "--force",
        ]
        timed(cmd, work)
        singles.append(statistics.median(timed(cmd, work) for _ in range(args.runs)))
    # the hardware's own limit: the three bare compiles, started together
    together = []
    for snap in sorted(snaps.glob("*.json")):
        m = machine_from_dict(json.loads(snap.read_text()))
        s = spec_for(plan_for(m, db, Constraints()), (snap.stem,), None, db, opts)
        d = work / f"bare-{snap.stem}"
        d.mkdir()
        (d / "pyproject.toml").write_text(s.uv_input)
        args_s = uv_compile_args(s, d / "pyproject.toml", d / "pylock.toml", opts)
        together.append([find_uv(), *args_s])
    timed_together(together, work)
    t_together = [timed_together(together, work) for _ in range(args.runs)]
    mn, mt3 = statistics.median(t_n), statistics.median(t_together)
    print(
        f"{len(singles)} groups in one call: median {mn:.3f} s; slowest single group "
        f"{max(singles):.3f} s; sum of singles {sum(singles):.3f} s; the {len(together)} bare "
        f"uv compiles started together {mt3:.3f} s"
    )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "bare_s": t_bare,
                    "lock_s": t_tool,
                    "groups_s": t_n,
                    "singles_median_s": singles,
                    "bare_together_s": t_together,
                }
            )
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
