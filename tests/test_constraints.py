"""plan/constraints.py: how a version is matched against a pin."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.plan.constraints import Constraints, contains, pin_matches


@pytest.mark.parametrize(
    ("pin", "version", "ok"),
    [
        (None, "2.8.0", True),
        ("", "2.8.0", True),
        ("2.8", "2.8.1", True),
        ("2.8", "2.80.0", False),
        ("2", "2.8.0", True),
        ("2.8.0", "2.8.0+cu128", True),
        ("2.8", "2.9.0", False),
        (">=2.8,<2.10", "2.9.1", True),
        (">=2.8,<2.10", "2.10.0", False),
        ("==0.45.*", "0.45.5", True),
        ("0.46", "0.46.0rc1", True),
    ],
)
def test_pin_matches(pin: str | None, version: str, ok: bool) -> None:
    assert pin_matches(pin, Version(version)) is ok


def test_contains_takes_prereleases() -> None:
    assert contains(SpecifierSet(">=2.8"), Version("2.9.0rc1"))
    assert contains(SpecifierSet(">=3.9"), "3.13.0")
    assert not contains(SpecifierSet("<2.8"), "2.8.0")


def test_describe_names_the_flags() -> None:
    c = Constraints(torch="2.8", cuda="cpu", profile="qlora")
    assert c.describe() == ["--torch 2.8", "--cuda cpu"]
