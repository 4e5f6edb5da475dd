"""plan/loader.py: which native library bitsandbytes loads, rule by rule (the rules and
their sources: compat_db/bitsandbytes.toml, [[loader_rules]])."""

from __future__ import annotations

import pytest

from bnb_provision.plan.loader import choose_library

SHIPPED = ("118", "121", "124", "126", "128", "130")


def test_exact_match() -> None:
    c = choose_library(rule="exact", torch_cuda="12.8", shipped=SHIPPED)
    assert c.chosen == c.wanted == "libbitsandbytes_cuda128.so"
    assert not c.fallback
    assert c.override is None
    assert c.reason == "exact match for torch's CUDA 12.8"


def test_exact_rule_has_no_fallback() -> None:
    c = choose_library(rule="exact", torch_cuda="12.9", shipped=SHIPPED, suffix=".dll")
    assert c.chosen is None
    assert c.wanted == "libbitsandbytes_cuda129.dll"
    assert c.reason == "no build for CUDA 12.9 and this release has no fallback"


def test_nocublaslt_names_its_own_file() -> None:
    c = choose_library(rule="exact", torch_cuda="11.8", shipped=SHIPPED, nocublaslt=True)
    assert c.chosen == "libbitsandbytes_cuda118_nocublaslt.so"


@pytest.mark.parametrize(
    ("torch_cuda", "shipped", "chosen"),
    [
        ("12.9", SHIPPED, "libbitsandbytes_cuda128.so"),  # highest below, same major
        ("12.0", ("121", "126"), "libbitsandbytes_cuda121.so"),  # else lowest above
        ("13.2", SHIPPED, "libbitsandbytes_cuda130.so"),
    ],
)
def test_same_major_fallback(torch_cuda: str, shipped: tuple[str, ...], chosen: str) -> None:
    c = choose_library(rule="same-major", torch_cuda=torch_cuda, shipped=shipped)
    assert c.chosen == chosen
    assert c.fallback
    assert c.wanted == f"libbitsandbytes_cuda{torch_cuda.replace('.', '')}.so"
    assert "(same major)" in c.reason


def test_same_major_never_crosses_majors() -> None:
    c = choose_library(rule="same-major", torch_cuda="13.0", shipped=("118", "128"))
    assert c.chosen is None
    assert c.reason == "no CUDA 13.x library is shipped (no fallback across majors)"


def test_override_forces_its_library() -> None:
    c = choose_library(rule="same-major", torch_cuda="13.0", shipped=SHIPPED, override=" 118")
    assert c.chosen == "libbitsandbytes_cuda118.so"
    assert c.override == "118"
    assert c.reason == "BNB_CUDA_VERSION=118 forces libbitsandbytes_cuda118.so"


def test_override_turns_off_the_fallback() -> None:
    c = choose_library(rule="same-major", torch_cuda="12.8", shipped=SHIPPED, override="125")
    assert c.chosen is None
    assert c.reason.endswith("which is not shipped")


@pytest.mark.parametrize("override", ["12.4", "cuda124", "1", "1240"])
def test_override_that_is_not_a_tag(override: str) -> None:
    c = choose_library(rule="same-major", torch_cuda="12.8", shipped=SHIPPED, override=override)
    assert c.chosen is None
    assert c.override == override
    assert "is not a CUDA version tag" in c.reason


def test_unreadable_torch_cuda_is_a_reason_not_a_crash() -> None:
    c = choose_library(rule="same-major", torch_cuda="twelve", shipped=SHIPPED)
    assert c.chosen is None
    assert "'twelve' is not a CUDA version" in c.reason
