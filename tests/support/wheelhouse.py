"""A wheelhouse of valid stand-in wheels for the CPU plan with torch 2.13.0 on this Python.

Enough for ``lock --offline --find-links`` and ``init --no-verify`` to run for real, offline,
in a second or two: each wheel installs a package that imports and knows its version.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnb_provision.db.load import load_db
from bnb_provision.detect.host import OSInfo, PythonInfo
from bnb_provision.detect.machine import Machine
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.inputs import plan_for
from tests.support.index import make_wheel

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}-cp{sys.version_info[0]}{sys.version_info[1]}"
TORCH = "2.13.0"
CPU = Machine(
    os=OSInfo(system="linux", arch="x86_64", libc="glibc 2.36"),
    python=PythonInfo(version=PY),
    nvidia=None,
    gpus=(),
)


def cpu_wheelhouse(directory: Path) -> Path:
    """Fill ``directory`` with the stand-ins and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    make_wheel(
        directory,
        "torch",
        f"{TORCH}+cpu",
        {
            "torch/__init__.py": f"__version__ = '{TORCH}+cpu'\n".encode(),
            "torch/version.py": f"__version__ = '{TORCH}+cpu'\ncuda = None\n".encode(),
        },
        tag=f"{TAG}-manylinux_2_28_x86_64",
    )
    plan = plan_for(CPU, load_db(), Constraints(torch=TORCH, python=PY, cuda="cpu"))
    for name, version in plan.packages:
        if name == "torch":
            continue
        make_wheel(
            directory,
            name,
            version,
            {f"{name.replace('-', '_')}/__init__.py": f"__version__ = '{version}'\n".encode()},
            requires=("torch>=2.0",) if name in ("bitsandbytes", "accelerate") else (),
        )
    return directory
