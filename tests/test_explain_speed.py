"""Adversarial inputs for explain: a 100 KB single line, and texts built from near-misses
of every message in the catalog. No pattern may backtrack super-linearly: each input is
explained within a generous time bound, and doubling an input at most about doubles the
time (a quadratic pattern would quadruple it, an exponential one would not finish)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from bnb_provision.db.load import load_db
from bnb_provision.explain.catalog import load_catalog
from bnb_provision.explain.explanation import explain_text

SIZE = 100_000


def _repeat(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _near_misses() -> str:
    """Every message's first phrase without its last character, one after the other."""
    return " ".join(m.lead_text[:-1] for m in load_catalog().messages if m.lead_text)


INPUTS: dict[str, Callable[[int], str]] = {
    "one character": lambda n: "a" * n,
    "blanks": lambda n: " " * n,
    "near misses of every message, one line": lambda n: _repeat(_near_misses() + " ", n),
    "near misses of every message, lines": lambda n: _repeat(_near_misses() + "\n", n),
    "an anchor word": lambda n: _repeat("CUDA SETUP: ", n),
    "a field that never ends": lambda n: (
        "Could not find the bitsandbytes CUDA binary at " + "x" * n
    ),
    "a capture without its closing text": lambda n: _repeat(
        "with CUDA capability sm_120 is not compatible with the current PyTorch installatio ", n
    ),
    "paths": lambda n: _repeat("C:\\Users\\a\\site-packages\\torch\\", n),
    "versions": lambda n: _repeat("torch 2.1.0+cu", n),
    "mangled symbols": lambda n: _repeat("x.so: undefined symbol: _ZN3c1 ", n),
}


def _seconds(text: str) -> float:
    catalog, db = load_catalog(), load_db()
    explain_text(text, catalog=catalog, db=db)  # compile what this text makes run
    start = time.perf_counter()
    explain_text(text, catalog=catalog, db=db)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", list(INPUTS))
def test_adversarial_input_is_linear(name: str) -> None:
    small = _seconds(INPUTS[name](SIZE))
    large = _seconds(INPUTS[name](2 * SIZE))
    assert small < 5.0, f"{name}: {small:.2f} s for 100 KB"
    assert large < 3.0 * small + 0.3, f"{name}: {small:.3f} s for 100 KB, {large:.3f} s for 200 KB"
