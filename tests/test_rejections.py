"""plan/rejections.py: rejections said once per reason, and the no-plan message, whose
ways out are each planned before they are offered."""

from __future__ import annotations

from packaging.version import Version

from bnb_provision.db.load import load_db
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.model import Plan, Rejection, Target
from bnb_provision.plan.rejections import dedupe, group_rejections, no_plan_message
from bnb_provision.plan.resolve import make_plan

T4 = ("Tesla T4", (7, 5))


def _r(what: str, why: str) -> Rejection:
    return Rejection(what=what, why=why)


def test_grouped_by_reason_in_first_order() -> None:
    items = [
        _r("torch 2.9.0+cu130", "driver too old"),
        _r("bitsandbytes 0.40.0", "no wheel"),
        _r("torch 2.8.0+cu129", "driver too old"),
        _r("torch 2.9.0+cu130", "driver too old"),
    ]
    assert group_rejections(items) == [
        "torch 2.9.0+cu130, torch 2.8.0+cu129: driver too old",
        "bitsandbytes 0.40.0: no wheel",
    ]


def test_long_groups_are_cut() -> None:
    items = [_r(f"torch 2.{i}.0", "old") for i in range(9)]
    (line,) = group_rejections(items)
    assert line.endswith("torch 2.5.0 and 3 more: old")


def test_dedupe_keeps_the_first_of_each() -> None:
    a, b = _r("x", "1"), _r("y", "2")
    assert dedupe([a, b, _r("x", "1"), a]) == (a, b)


def _target(driver: str) -> Target:
    return Target(os="linux", arch="x86_64", python="3.12", driver=Version(driver), gpus=(T4,))


def test_ways_out_are_plans_that_exist() -> None:
    db = load_db()
    target = _target("450.80.02")
    cons = Constraints(torch="2.9")
    tried: list[tuple[Target, Constraints]] = []

    def retry(t: Target, c: Constraints) -> Plan | None:
        tried.append((t, c))
        try:
            return make_plan(t, db, c)
        except NoPlanError:
            return None

    text = no_plan_message(db, target, cons, [_r("torch 2.9.0+cu128", "driver too old")], retry)
    lines = text.splitlines()
    assert lines[0].startswith("no known combination runs on this machine (linux-x86_64")
    assert "Tesla T4 sm_75" in lines[0] and lines[0].endswith("under --torch 2.9")
    assert lines[1:3] == ["Blocking facts:", "  - torch 2.9.0+cu128: driver too old"]
    assert "Way out:" in lines
    assert any(line.startswith("  - install NVIDIA driver >= ") for line in lines)
    assert any(line.startswith("  - drop --torch 2.9: torch ") for line in lines)
    assert any(c.cuda == "cpu" for _, c in tried)


def test_no_way_out_says_so() -> None:
    db = load_db()
    text = no_plan_message(db, _target("580.95.05"), Constraints(), [], lambda _t, _c: None)
    assert text.splitlines()[-2:] == [
        "Way out:",
        "  - none found in the DB; see the blocking facts above",
    ]
