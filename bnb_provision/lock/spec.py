"""What a lock run is given and what each lock group is: plain values the stages share.

Planning turns machines into :class:`LockSpec` values (``group.py``); uv resolves each
spec (``compile.py``); the output table writes its files (``writers.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.errors import LockfileError
from bnb_provision.vocab import STACKS, Stack

__all__ = ["PYPI_SIMPLE", "LockOptions", "LockSpec", "Log", "as_stack"]

PYPI_SIMPLE: Final = "https://pypi.org/simple"
Log = Callable[[str], None]


def as_stack(value: str) -> Stack:
    """``value`` as a :data:`~bnb_provision.vocab.Stack`; LockfileError when it is none."""
    for stack in STACKS:
        if value == stack:
            return stack
    raise LockfileError(f"--stack {value}: expected one of {', '.join(STACKS)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockOptions:
    output: Path
    stack: Stack = "bnb"
    default_index: str = PYPI_SIMPLE
    torch_index_template: str | None = None  # e.g. a mirror: https://mirror/whl/{variant}
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    force: bool = False
    dockerfile: bool = False
    uv_project: bool = False
    jobs: int = 4
    regenerate: str = "bnb-provision lock"
    cache_dir: Path | None = None
    upgrade: bool = False  # resolve afresh instead of keeping the existing lock's versions


@dataclass(frozen=True, kw_only=True, slots=True)
class LockSpec:
    """One lock group, planned: everything uv and the output files need, as plain values.

    Machines that need the same plan share a spec. Specs are what the planning stage
    hands to the uv stage.
    """

    name: str  # the group's name, without dots: it names the files (pylock.<name>.toml)
    stack: Stack
    machines: tuple[str, ...]
    python: str
    platform: str  # linux-x86_64, windows-x86_64, macos-arm64, ...
    os: str
    arch: str
    glibc: tuple[int, int] | None
    torch: str  # public version, 2.13.0
    variant: str  # cu128, cpu, ...
    torch_index: str | None  # None: PyPI serves the chosen build
    index_packages: tuple[str, ...]  # what comes from torch_index (torch), nothing else does
    requirements: tuple[str, ...]  # the pins uv resolves
    bitsandbytes: str  # "" in a lock of another stack
    bitsandbytes_library: str
    driver_floor: str  # "" when the build needs no driver
    gpu_archs: tuple[str, ...]  # "8.0", ...: every GPU architecture of its machines
    db_version: str
    uv_input: str  # the pyproject.toml uv compiles
    bnb_index: str | None = None  # a third-party index bitsandbytes alone comes from
    unverified: str | None = None  # the unverified fact the plan's torch rests on
    holds: tuple[str, str] = ("", "")  # the stack's own library: ("gptqmodel", "7.7.0")
    warnings: tuple[str, ...] = ()  # what the stack's library needs or is (archived, nvcc)

    @property
    def cuda(self) -> bool:
        """Whether its torch is a CUDA build (it needs an NVIDIA driver and GPU)."""
        return self.variant.startswith("cu")
