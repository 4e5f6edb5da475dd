"""A lock and a wheelhouse of stand-in wheels, for ``bench_init.py`` where the real wheels
cannot be had (a machine without network, or without the PyTorch index).

The stand-ins (``tests/support/wheelhouse.py``) are small valid wheels of the CPU plan's
packages at their real versions; the lock is written by ``bnb-provision lock --offline``
from them, so it is the same kind of file a team would install. uv's own work is tiny
with them, so ``bench_init.py`` on this lock shows bnb-provision's fixed cost, with little
of uv's time to hide its planning behind: the worst case for the overhead.

    python benchmarks/standin_lock.py OUT        # prints the lock and the wheelhouse
    python benchmarks/bench_init.py --lock <lock> --wheelhouse <wheelhouse>
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.wheelhouse import PY, TORCH, cpu_wheelhouse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path, help="a folder for the wheelhouse and the lock")
    out = ap.parse_args().out.resolve()
    house = cpu_wheelhouse(out / "wheelhouse")
    locks = out / "locks"
    subprocess.run(
        [sys.executable, "-m", "bnb_provision", "lock", "--python", PY, "--torch", TORCH,
         "--cuda", "cpu", "--offline", "--find-links", str(house), "-o", str(locks), "--force"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (lock,) = locks.glob("*.requirements.txt")
    print(f"--lock {lock} --wheelhouse {house}")


if __name__ == "__main__":
    main()
