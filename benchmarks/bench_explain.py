"""Speed of `explain` on a 10 MB training log: the library call (the catalog and the DB
already loaded, as in a process that explains many texts), and one whole
`bnb-provision explain --log FILE` process.

    python benchmarks/bench_explain.py --runs 5
Goal (issue 14): explain on a 10 MB log under 1 s.

The log is what a QLoRA run prints: bitsandbytes' warning at the start, then progress
bars, loss lines and checkpoint lines (numbers change on every line, so no two lines are
equal), and the traceback at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bnb_provision.explain import explain_text, load_catalog

HEAD = (
    "/home/user/venv/lib/python3.10/site-packages/bitsandbytes/cextension.py:34: UserWarning: "
    "The installed version of bitsandbytes was compiled without GPU support. 8-bit "
    "optimizers, 8-bit multiplication, and GPU quantization are unavailable.\n"
)
TAIL = (
    "Traceback (most recent call last):\n"
    '  File "/home/user/train.py", line 88, in <module>\n'
    "    trainer.train()\n"
    '  File "/home/user/venv/lib/python3.10/site-packages/torch/cuda/__init__.py", line 302\n'
    "    torch._C._cuda_init()\n"
    "RuntimeError: CUDA error: no kernel image is available for execution on the device\n"
)


def training_log(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = [HEAD]
    total, i = len(HEAD), 0
    while total < size:
        i += 1
        if i % 3 == 0:
            line = (
                f"{{'loss': {rng.random() * 3:.4f}, 'grad_norm': {rng.random():.5f}, "
                f"'learning_rate': {rng.random() * 2e-4:.6e}, 'epoch': {i / 5000:.2f}}}\n"
            )
        elif i % 3 == 1:
            bar = "\u2588" * (i % 50)
            clock = f"{i // 3600:02d}:{i % 60:02d}"
            line = f" {i % 100:3d}%|{bar:50}| {i}/300000 [{clock}, {rng.random() * 5:.2f}it/s]\n"
        else:
            where = f"[INFO|trainer.py:{1000 + i % 50}]"
            line = f"{where} step {i}: checkpoint-{i} (loss {rng.random():.3f})\n"
        lines.append(line)
        total += len(line)
    return "".join(lines) + TAIL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mb", type=float, default=10.0)
    args = ap.parse_args()
    text = training_log(int(args.size_mb * 1_000_000))
    catalog = load_catalog()
    explain_text(text, catalog=catalog)  # warm: patterns compiled, DB loaded if needed
    calls = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = explain_text(text, catalog=catalog)
        calls.append(time.perf_counter() - start)
    print(
        f"log: {len(text) / 1e6:.1f} MB, {result.lines} lines; top cause: {result.findings[0].id}"
    )
    runs = ", ".join(f"{t:.3f}" for t in calls)
    print(f"explain_text() median {statistics.median(calls):.3f} s (runs: {runs})")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        log.write_text(text, encoding="utf-8")
        procs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bnb_provision", "explain", "--log", str(log)],
                capture_output=True,
                check=False,
            )
            procs.append(time.perf_counter() - start)
    print(f"bnb-provision explain --log (process) median {statistics.median(procs):.3f} s")


if __name__ == "__main__":
    main()
