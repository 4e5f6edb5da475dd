"""``triage``: a whole issue body as people paste it (environment reports, ``pip list``,
the traceback) in one pass: the causes (through :func:`~bnb_provision.explain.explanation.explain`),
the machine the text describes as a partial snapshot (``bnb-provision.machine/1``), the plan
that would have worked there and the commands that get there.

The snapshot holds only what the text says; what a plan needs and the text lacks is listed
with the command that tells it (``nvidia-smi``, ``python --version``). A value that is
inferred rather than read (the oldest driver that supports the CUDA version the text says
the driver supports) is listed under ``assumed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from packaging.version import InvalidVersion, Version

from bnb_provision.db.model import CompatDB
from bnb_provision.errors import NoPlanError, SnapshotError
from bnb_provision.explain.catalog import Catalog, load_catalog
from bnb_provision.explain.explanation import Explanation, explain_text
from bnb_provision.explain.facts import Fact
from bnb_provision.plan.constraints import Constraints, MachineFlags
from bnb_provision.plan.model import Plan, plan_to_dict
from bnb_provision.vocab import Profile

__all__ = ["TRIAGE_SCHEMA", "Triage", "snapshot_from_facts", "triage"]

TRIAGE_SCHEMA: Final = "bnb-provision.triage/1"
_QLORA_RE: Final = re.compile(
    r"\b(?:q?lora|peft|trl|sfttrainer|prepare_model_for_kbit_training)\b", re.IGNORECASE
)
_HEADER_MAX: Final = 200
ASSUMED_PYTHON: Final = "3.12"
"""The Python a plan is made for when the text does not give one (the output says so)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    """The machine a text describes: what it says (``known``, a partial machine/1 dict),
    the machine planned for (``planned``: the known values, gaps filled with the stated
    assumptions), and what is missing for a plan at all."""

    known: dict[str, Any]
    planned: dict[str, Any] | None
    assumed: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Triage:
    """An issue body read in one pass."""

    title: str | None
    explanation: Explanation
    snapshot: Snapshot
    plan: Plan | None
    no_plan: str | None
    commands: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.explanation.ok

    def to_dict(self) -> dict[str, Any]:
        from bnb_provision import __version__

        return {
            "schema": TRIAGE_SCHEMA,
            "tool": {"name": "bnb-provision", "version": __version__},
            "title": self.title,
            "ok": self.ok,
            "facts": self.explanation.subject()["facts"],
            "causes": [f.to_dict() for f in self.explanation.findings],
            "machine": self.snapshot.known,
            "planned_for": self.snapshot.planned,
            "assumed": list(self.snapshot.assumed),
            "missing": list(self.snapshot.missing),
            "plan": plan_to_dict(self.plan) if self.plan is not None else None,
            "no_plan": self.no_plan,
            "commands": list(self.commands),
        }


def _title(text: str) -> str | None:
    """An issue's title: its first line, when a blank line follows it."""
    head, sep, _ = text.lstrip().partition("\n")
    second = text.lstrip()[len(head) + 1 :].split("\n", 1)[0]
    if sep and not second.strip() and 0 < len(head.strip()) <= _HEADER_MAX:
        return head.strip()
    return None


def _value(facts: dict[str, Fact], name: str) -> str | None:
    fact = facts.get(name)
    return fact.value if fact is not None else None


def _driver(facts: dict[str, Fact], os_name: str, db: CompatDB) -> tuple[str | None, str | None]:
    """The driver the text names, else the oldest one that supports the CUDA version the
    text says the driver supports (and the note saying so)."""
    driver = _value(facts, "driver")
    if driver:
        return driver, None
    cuda = _value(facts, "driver_cuda")
    if not cuda:
        return None, None
    key = "windows" if os_name == "windows" else "linux"
    try:
        wanted = Version(cuda)
    except InvalidVersion:
        return None, None
    rows = [t for t in db.toolkits if Version(f"{t.version.major}.{t.version.minor}") == wanted]
    floors = [getattr(t, key) for t in rows if getattr(t, key) is not None]
    if not floors:
        return None, None
    floor = min(floors)
    return str(
        floor
    ), f"driver {floor}: the oldest that supports CUDA {cuda}, which the driver reports"


def _current_driver(os_name: str, db: CompatDB) -> tuple[str | None, str | None]:
    """A driver new enough for every CUDA build the DB knows: what a plan assumes when the
    text gives no driver (the plan then says which driver its build needs)."""
    key = "windows" if os_name == "windows" else "linux"
    floors = [getattr(t, key) for t in db.toolkits if getattr(t, key) is not None]
    if not floors:
        return None, None
    newest = max(floors)
    return str(newest), (
        f"driver {newest} (the text gives none: a current driver is assumed; nvidia-smi "
        "tells the real one, pass --driver)"
    )


def _gpu(facts: dict[str, Fact], db: CompatDB) -> dict[str, str] | None:
    cc = _value(facts, "compute_capability")
    name = _value(facts, "gpu")
    if cc is None and name:
        found = db.gpus().find(name)
        if found is not None and found.entry.cc is not None:
            cc = f"{found.entry.cc[0]}.{found.entry.cc[1]}"
    if cc is None:
        return None
    return {"name": name or f"GPU with compute capability {cc}", "compute_capability": cc}


def _known(facts: dict[str, Fact], db: CompatDB) -> dict[str, Any]:
    """The machine/1 keys the facts give, and nothing else."""
    known: dict[str, Any] = {}
    os_fact = _value(facts, "os")
    if os_fact:
        known["os"] = {"system": "linux" if os_fact == "wsl" else os_fact, "wsl": os_fact == "wsl"}
        if _value(facts, "arch"):
            known["os"]["arch"] = _value(facts, "arch")
    if _value(facts, "python"):
        known["python"] = {"version": _value(facts, "python")}
    if _value(facts, "driver"):
        known["nvidia"] = {"driver": _value(facts, "driver"), "source": "text"}
    gpu = _gpu(facts, db)
    if gpu:
        known["gpus"] = [gpu]
    return known


def snapshot_from_facts(facts: dict[str, Fact], db: CompatDB) -> Snapshot:
    """What the text says about its machine, and the machine a plan is made for: the
    OS, architecture and Python a text does not give are assumed (and said so), the
    driver from the CUDA version it reports; a GPU (on Linux and Windows) must be given."""
    known = _known(facts, db)
    assumed: list[str] = []
    missing: list[str] = []
    os_info = dict(known.get("os", {}))
    if "system" not in os_info:
        os_info.update(system="linux", wsl=False)
        assumed.append("Linux (the text shows no OS; pass --os)")
    if "arch" not in os_info:
        os_info["arch"] = "arm64" if os_info["system"] == "macos" else "x86_64"
        assumed.append(f"{os_info['arch']} (the text does not name the architecture; pass --arch)")
    python = known.get("python", {}).get("version")
    if python is None:
        python = ASSUMED_PYTHON
        assumed.append(
            f"Python {python} (the text does not say; python --version tells, pass --python)"
        )
    planned: dict[str, Any] = {"os": os_info, "python": {"version": python}}
    if os_info["system"] != "macos":
        driver, note = _driver(facts, os_info["system"], db)
        if driver is None:
            driver, note = _current_driver(os_info["system"], db)
        if note:
            assumed.append(note)
        if "gpus" not in known:
            missing.append(
                "the GPU (nvidia-smi --query-gpu=name,compute_cap --format=csv; pass --gpu)"
            )
        if driver and "gpus" in known:
            planned.update(nvidia={"driver": driver, "source": "text"}, gpus=known["gpus"])
        else:
            planned = {}
    return Snapshot(
        known=known, planned=planned or None, assumed=tuple(assumed), missing=tuple(missing)
    )


def _commands(plan: Plan) -> tuple[str, ...]:
    torch = f"pip install torch=={plan.torch.version}"
    if plan.torch.index_url:
        torch += f" --index-url {plan.torch.index_url}"
    rest = [f"bitsandbytes=={plan.bitsandbytes.version}"] + [
        f"{name}=={version}"
        for name, version in plan.packages
        if name not in {"torch", "bitsandbytes"}
    ]
    return (torch, "pip install " + " ".join(rest), "python -m bitsandbytes")


def _plan(
    snapshot: Snapshot, flags: MachineFlags, db: CompatDB, profile: Profile
) -> tuple[Plan | None, str | None]:
    from bnb_provision.detect.snapshot import machine_from_dict
    from bnb_provision.plan.inputs import apply_flags, plan_for

    data = snapshot.planned
    if data is None and not (flags.gpus and flags.driver):
        return None, "to plan, give " + "; ".join(snapshot.missing)
    try:
        base = machine_from_dict(data, label="the machine in the text") if data else None
        machine = apply_flags(base, flags, db)
        return plan_for(machine, db, Constraints(profile=profile)), None
    except (NoPlanError, SnapshotError) as exc:
        return None, str(exc)


def triage(
    text: str,
    *,
    flags: MachineFlags | None = None,
    catalog: Catalog | None = None,
    db: CompatDB | None = None,
) -> Triage:
    """Causes, machine, plan and commands for an issue body (or any pasted text);
    ``flags`` (``--os/--arch/--driver/--gpu/--python``) fill in or correct the machine."""
    if db is None:
        from bnb_provision.db.load import load_db

        db = load_db()
    explanation = explain_text(text, catalog=catalog or load_catalog(), db=db)
    snapshot = snapshot_from_facts(explanation.facts, db)
    profile: Profile = "qlora" if _QLORA_RE.search(text) else "inference"
    plan, no_plan = _plan(snapshot, flags or MachineFlags(), db, profile)
    commands = _commands(plan) if plan is not None else ()
    return Triage(
        title=_title(text),
        explanation=explanation,
        snapshot=snapshot,
        plan=plan,
        no_plan=no_plan,
        commands=commands,
    )
