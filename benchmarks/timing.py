"""What the benchmarks share: timing whole processes and stating an overhead two ways.

An overhead is given as the median of the per-round differences (paired, since the
machine's speed drifts between rounds) in milliseconds, beside the ratio of the medians.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def timed(cmd: Sequence[str] | str, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds one whole process takes (``cmd`` a string runs through the shell)."""
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, check=True, capture_output=True, shell=isinstance(cmd, str)
    )
    return time.perf_counter() - start


def overhead(name: str, tool: Sequence[float], bare: Sequence[float], goal_ms: float) -> str:
    """``name``'s runs against the bare runs of the same rounds, as one line."""
    diffs = [t - b for t, b in zip(tool, bare, strict=True)]
    mt, mb, md = statistics.median(tool), statistics.median(bare), statistics.median(diffs)
    verdict = "meets" if md * 1000 <= goal_ms else "MISSES"
    return (
        f"{name}: median {mt:.3f} s vs bare {mb:.3f} s over {len(tool)} rounds: "
        f"+{md * 1000:.0f} ms (median of paired differences; spread "
        f"{min(diffs) * 1000:+.0f}..{max(diffs) * 1000:+.0f} ms), {mt / mb:.2f}x; "
        f"{verdict} the goal of at most {goal_ms:.0f} ms"
    )
