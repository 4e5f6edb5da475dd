"""The small TOML writer: every value it writes reads back as itself."""

from __future__ import annotations

import pytest

from bnb_provision.core.tomlio import toml_loads, toml_pairs, toml_table, toml_value


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quote " and backslash \\',
        "tab\tnewline\nreturn\r",
        "control \x01 and DEL \x7f",
        "unicode: é 漢字 🙂",
        "",
        ["a", "b c", 'd"'],
        [],
        True,
        False,
        42,
    ],
)
def test_values_round_trip(value: object) -> None:
    assert toml_loads(f"v = {toml_value(value)}\n")["v"] == value


def test_tables_and_keys() -> None:
    text = (
        toml_pairs({"schema": "x/1"})
        + "\n"
        + toml_table("[[class]]", {"name": "a", "gpu-archs": ["8.0"], "odd key": "y"})
    )
    data = toml_loads(text)
    assert data == {"schema": "x/1", "class": [{"name": "a", "gpu-archs": ["8.0"], "odd key": "y"}]}


def test_unsupported_value_is_refused() -> None:
    with pytest.raises(TypeError, match="no TOML form"):
        toml_value(1.5)
