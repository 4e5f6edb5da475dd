"""The package's public API: every exported name imports, lazily, from its own module."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import bnb_provision
from bnb_provision import errors

ROOT = Path(__file__).parent.parent
SNAP = ROOT / "tests" / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json"


@pytest.mark.parametrize("name", bnb_provision.__all__)
def test_each_public_name_imports(name: str) -> None:
    value = getattr(bnb_provision, name)
    assert value is not None
    if name != "__version__":
        module = bnb_provision._WHERE[name]
        assert getattr(importlib.import_module(module), name) is value
        assert value.__module__ == module, f"{name} is defined in {value.__module__}"
    exec(f"from bnb_provision import {name}", {})


def test_all_names_the_lazy_table_and_the_errors() -> None:
    assert sorted(bnb_provision.__all__) == sorted([*bnb_provision._WHERE, "__version__"])
    assert set(errors.__all__) <= set(bnb_provision.__all__)
    assert set(bnb_provision.__all__) <= set(dir(bnb_provision))
    with pytest.raises(AttributeError, match="no attribute 'planner'"):
        _ = bnb_provision.planner


def test_importing_the_package_loads_no_stage() -> None:
    code = (
        "import sys, bnb_provision; "
        "print(sorted(m for m in sys.modules if m.startswith('bnb_provision') or m == 'click'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "['bnb_provision']"


def test_a_script_plans_and_explains_through_the_api() -> None:
    bp = bnb_provision
    db = bp.load_db()
    plan = bp.plan_for(bp.load_machine(SNAP), db, bp.Constraints())
    # the newest safe torch; the snapshot's verified combination (2.11.0+cu130) is evidence
    assert str(plan.torch.version) == "2.15.0" and plan.torch.variant == "cu132"
    assert plan.evidence and str(plan.evidence[0].torch) == "2.11.0"
    text = "torch.AcceleratorError: CUDA error: no kernel image is available for execution on the device"
    findings = bp.explain_text(text, db)
    assert findings[0].category == "arch_not_compiled"
    assert bp.diagnose(bp.load_machine(SNAP), db) == ()
    with pytest.raises(bp.ProvisionError) as info:
        bp.plan_for(bp.load_machine(SNAP), db, bp.Constraints(torch="1.0"))
    assert isinstance(info.value, bp.NoPlanError) and info.value.exit_code == 6
