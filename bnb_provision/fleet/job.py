"""What a fleet run asks of every node, and the folder its results are gathered in.

Both engines write the same folder: ``nodes.txt`` (the run's mode and its nodes), then per
node ``<node>.json`` (only when bnb-provision succeeded there), ``<node>.rc`` and
``<node>.log`` (its exit status and stderr) and ``<node>.engine.log`` (what Ansible or srun
said about the node). :mod:`bnb_provision.fleet.report` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.core.data import data_dir
from bnb_provision.errors import LockfileError
from bnb_provision.lock.pins import MANIFEST_FILE
from bnb_provision.vocab import FLEET_MODES, FleetMode

__all__ = [
    "DEFAULT_NODE_COMMAND",
    "DEFAULT_WORKDIR",
    "NODES_FILE",
    "NODE_FILES",
    "FleetJob",
    "is_node_name",
    "prepare_output",
    "template",
]

NODES_FILE: Final = "nodes.txt"
NODE_FILES: Final = (".json", ".rc", ".log", ".engine.log")
"""The suffixes of the files a run writes per node, after the node's name."""
DEFAULT_NODE_COMMAND: Final = ("bnb-provision",)
DEFAULT_WORKDIR: Final = "~/bnb-fleet/{node}"
"""Each node's working folder (init's ``.venv-bnb`` is made there); ``{node}``: its name."""
_RUN_FILES: Final = ("ansible-playbook.log", "bnb-fleet.sbatch")
_MAX_NAME_BYTES: Final = 255  # a file name, on Linux, macOS and Windows file systems


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetJob:
    """One run over a fleet: ``detect --json`` (snapshot) or ``init --lock`` on every node.

    ``node_command`` and ``workdir`` left as None keep what the inventory or the script
    says, else :data:`DEFAULT_NODE_COMMAND` and :data:`DEFAULT_WORKDIR`. ``args`` are more
    arguments for detect / init on every node; ``{node}`` in them (and in ``workdir``)
    becomes the node's name.
    """

    mode: FleetMode
    output: Path
    locks: Path | None = None
    node_command: tuple[str, ...] | None = None
    workdir: str | None = None
    args: tuple[str, ...] = ()
    force: bool = False
    timeout: float | None = None

    def checked(self) -> FleetJob:
        """This job with absolute paths; raises LockfileError for a missing lock folder."""
        if self.mode not in FLEET_MODES:
            raise LockfileError(f"fleet mode {self.mode!r}: expected one of {FLEET_MODES}")
        locks = None
        if self.mode == "init":
            if self.locks is None or not (self.locks / MANIFEST_FILE).is_file():
                raise LockfileError(
                    f"{self.locks}: fleet init needs a lock folder with its {MANIFEST_FILE} "
                    "(bnb-provision lock --machine SNAPSHOTS/ -o DIR writes one)"
                )
            locks = self.locks.resolve()
        if self.node_command is not None and not self.node_command:
            raise LockfileError("the node command is empty: give how nodes run bnb-provision")
        return FleetJob(
            mode=self.mode,
            output=self.output.resolve(),
            locks=locks,
            node_command=self.node_command,
            workdir=self.workdir,
            args=self.args,
            force=self.force,
            timeout=self.timeout,
        )


def template(name: str) -> Path:
    """The shipped fleet template ``name`` (``bnb-fleet.yml``, ``bnb-fleet.sbatch``)."""
    return data_dir("templates") / "fleet" / name


def is_node_name(name: str) -> bool:
    """Whether ``name`` can name a node's files in the results folder: a plain file name
    (no separator, not ``..``), so that nothing outside the folder is read or removed,
    short enough for its longest file (``<node>.engine.log``) on any file system."""
    return (
        bool(name)
        and name not in (".", "..")
        and not set(name) & set("/\\\x00")
        and len(name.encode("utf-8", "surrogateescape")) <= _MAX_NAME_BYTES - len(".engine.log")
    )


def _previous_nodes(folder: Path) -> list[str]:
    nodes = folder / NODES_FILE
    if not nodes.is_file():
        return []
    lines = nodes.read_text(encoding="utf-8", errors="replace").splitlines()
    return [n for ln in lines if (n := ln.strip()) and not ln.startswith("#") and is_node_name(n)]


def prepare_output(folder: Path, *, force: bool) -> None:
    """Make ``folder`` ready for a run: absent or empty, or (``force``) cleared of a run's files.

    Stale results would be read as this run's, so a folder holding anything is refused
    without ``force``; with it, the files of the previous run (the nodes its ``nodes.txt``
    names, its engine logs) are removed and anything else is left alone.
    """
    try:
        if folder.exists() and not folder.is_dir():
            raise LockfileError(f"{folder} is a file; give a folder for the fleet's results")
        if folder.is_dir() and any(folder.iterdir()):
            if not force:
                raise LockfileError(
                    f"{folder} is not empty: give a new folder, or --force to replace the "
                    "results of the fleet run in it"
                )
            names = [f"{node}{suffix}" for node in _previous_nodes(folder) for suffix in NODE_FILES]
            stale = [*names, NODES_FILE, *_RUN_FILES]
            for path in [*(folder / n for n in stale), *folder.glob("slurm-*.out")]:
                path.unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LockfileError(f"{folder}: cannot prepare it for the fleet's results ({exc})") from exc
