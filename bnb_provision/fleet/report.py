"""Read a fleet run's folder into a typed report: per node ok, unreachable or failed, and why.

The rules, the same for both engines (see :mod:`bnb_provision.fleet.job` for the files):

- ``<node>.json`` is there and is the document the mode produces: **ok**;
- ``<node>.rc`` says bnb-provision exited non-zero: **failed**, with its ``Error:`` line;
- otherwise bnb-provision never reported: **unreachable**, with what the engine said
  (``<node>.engine.log``), unless the engine says a step of its own **failed** there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.jsonio import JsonInputError, read_json
from bnb_provision.errors import SnapshotError
from bnb_provision.fleet.job import NODES_FILE, is_node_name
from bnb_provision.vocab import FLEET_MODES, NODE_STATUSES, FleetEngine, FleetMode, NodeStatus

__all__ = ["FLEET_SCHEMA", "FleetReport", "NodeResult", "read_results"]

FLEET_SCHEMA: Final = "bnb-provision.fleet/1"
_DOCUMENT_SCHEMA: Final[dict[FleetMode, str]] = {
    "snapshot": "bnb-provision.machine/1",
    "init": "bnb-provision.env/1",
}
_WHY_CHARS: Final = 400
MAX_RESULT_BYTES: Final = 64 * 1024 * 1024  # a node's snapshot or env document
_HEADER: Final = ("#", "bnb-provision", "fleet")


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeResult:
    """How one node came out of the run."""

    node: str
    status: NodeStatus
    why: str = ""
    """Empty when ok; else what went wrong, in bnb-provision's or the engine's words."""
    result: Path | None = None
    """The node's ``<node>.json``: its snapshot, or its environment with the verify result."""
    summary: str = ""
    """One line read from the result: the machine, or the environment and its verify."""
    verify: bool | None = None
    """init: whether verify passed; None when it was not run (or in snapshot mode)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": self.status,
            "why": self.why or None,
            "result": str(self.result) if self.result else None,
            "summary": self.summary or None,
            "verify": self.verify,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetReport:
    """A whole run: what ran, where its files are, and every node's outcome."""

    engine: FleetEngine | None
    """None when the folder was read on its own (``fleet report``)."""
    mode: FleetMode
    folder: Path
    nodes: tuple[NodeResult, ...]
    command: tuple[str, ...] = ()
    log: Path | None = None
    """The engine's own output: ansible-playbook's, or the Slurm job's."""
    job_id: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.nodes) and all(n.status == "ok" for n in self.nodes)

    def count(self, status: NodeStatus) -> int:
        return sum(1 for n in self.nodes if n.status == status)

    def problems(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if n.status != "ok")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": FLEET_SCHEMA,
            "engine": self.engine,
            "mode": self.mode,
            "folder": str(self.folder),
            "command": list(self.command),
            "log": str(self.log) if self.log else None,
            "job_id": self.job_id,
            "ok": self.ok,
            "counts": {s: self.count(s) for s in NODE_STATUSES},
            "nodes": [n.to_dict() for n in self.nodes],
        }


def _read_nodes(folder: Path) -> tuple[FleetMode, list[str]]:
    path = folder / NODES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(
            f"{path}: cannot read it ({exc}); is {folder} the folder of a fleet run?"
        ) from exc
    *prefix, mode = lines[0].split() if lines and lines[0].strip() else [""]
    if tuple(prefix) != _HEADER or mode not in FLEET_MODES:
        raise SnapshotError(
            f"{path}: the first line should be '# bnb-provision fleet snapshot|init', "
            f"not {lines[0][:80] if lines else 'nothing'!r}"
        )
    nodes = [ln.strip() for ln in lines[1:] if ln.strip() and not ln.startswith("#")]
    for node in nodes:
        if not is_node_name(node):
            raise SnapshotError(
                f"{path}: {node[:80]!r} is not a node name (its files would lie outside "
                f"{folder}); is {folder} the folder of a fleet run?"
            )
    return mode, list(dict.fromkeys(nodes))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _short(text: str) -> str:
    return text if len(text) <= _WHY_CHARS else text[: _WHY_CHARS - 3] + "..."


def _error_line(log: str) -> str:
    """bnb-provision's own ``Error:`` line, else the last line it wrote."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    return errors[-1] if errors else (lines[-1] if lines else "")


def _summary(mode: FleetMode, doc: Fields) -> tuple[str, bool | None]:
    """One line about the document, and (init) whether verify passed."""
    if mode == "snapshot":
        osf, py = doc.table("os"), doc.table("python", None)
        nvidia = doc.table("nvidia", None)
        driver = nvidia.text("driver", None) if nvidia else None
        gpus = [g.text("name", "?") for g in doc.tables("gpus", [])]
        assert osf is not None
        where = f"{osf.text('system')} {osf.text('arch')}"
        python = f", Python {py.text('version', '?')}" if py else ""
        cards = ", ".join(gpus) if gpus else "no GPU"
        return f"{where}{python}, driver {driver or 'none'}, {cards}", None
    verify = doc.table("verify", None)
    passed = verify.flag("ok", False) if verify else None
    checks = {None: "not run", True: "PASS", False: "FAIL"}[passed]
    what = (
        f"{doc.text('action')} {doc.text('env')}: torch {doc.text('torch', None)}, "
        f"bitsandbytes {doc.text('bitsandbytes', None)}; verify {checks}"
    )
    return what, passed


def _document(mode: FleetMode, path: Path) -> tuple[str, bool | None]:
    """Read a node's result; raises ValueError saying why it is not the expected document."""
    try:
        data = read_json(path, max_bytes=MAX_RESULT_BYTES)
    except (OSError, JsonInputError) as exc:
        raise ValueError(f"{path.name} is not readable JSON ({exc})") from exc
    expected = _DOCUMENT_SCHEMA[mode]
    if not isinstance(data, dict) or data.get("schema") != expected:
        raise ValueError(f"{path.name} is not a {expected} document")
    try:
        return _summary(mode, Fields(data, path.name))
    except FieldError as exc:
        raise ValueError(str(exc)) from exc


def _from_files(folder: Path, mode: FleetMode, node: str) -> NodeResult:
    result, rc_text = folder / f"{node}.json", _text(folder / f"{node}.rc")
    engine = _text(folder / f"{node}.engine.log")
    if rc_text and rc_text != "0":
        why = _error_line(_text(folder / f"{node}.log")) or f"exited with status {rc_text}"
        return NodeResult(node=node, status="failed", why=_short(f"exit {rc_text}: {why}"))
    if result.is_file():
        try:
            summary, verify = _document(mode, result)
        except ValueError as exc:
            return NodeResult(node=node, status="failed", why=_short(str(exc)), result=result)
        return NodeResult(node=node, status="ok", result=result, summary=summary, verify=verify)
    said = "; ".join(ln.strip() for ln in engine.splitlines() if ln.strip())
    if rc_text == "0":
        return NodeResult(
            node=node, status="failed", why=_short(said or f"exited 0 but {result.name} is missing")
        )
    if said.startswith("failed:"):
        return NodeResult(node=node, status="failed", why=_short(said.removeprefix("failed: ")))
    return NodeResult(
        node=node,
        status="unreachable",
        why=_short(said.removeprefix("unreachable: ") or "bnb-provision never reported back"),
    )


def read_results(
    folder: Path,
    *,
    engine: FleetEngine | None = None,
    command: tuple[str, ...] = (),
    log: Path | None = None,
    job_id: str | None = None,
) -> FleetReport:
    """The report of the run whose files are in ``folder``; raises SnapshotError without
    a readable ``nodes.txt``."""
    mode, nodes = _read_nodes(folder)
    return FleetReport(
        engine=engine,
        mode=mode,
        folder=folder,
        nodes=tuple(_from_files(folder, mode, node) for node in nodes),
        command=command,
        log=log,
        job_id=job_id,
    )
