"""explain and triage read any pasted text (issue 12): arbitrary text, text built from the
catalogue's own messages cut and filled with junk, very long lines. Each gives an
explanation (at least one finding) or a triage, never an exception; the catalogue's and
the curated rows' readers give a catalogue or a CompatDBError naming the field.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.core import cache
from bnb_provision.core.data import data_dir
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.load import load_db
from bnb_provision.errors import CompatDBError, SnapshotError
from bnb_provision.explain.catalog import (
    CATALOG_FILE,
    CURATED_FILE,
    Catalog,
    _from_cache,
    _signature,
    _to_cache,
    build_catalog,
    load_catalog,
)
from bnb_provision.explain.curated import Curated, parse_curated
from bnb_provision.explain.explanation import Explanation, explain_text
from bnb_provision.explain.reported import read_reported
from bnb_provision.explain.templates import Field, parse_template
from bnb_provision.explain.triage import Triage, triage
from bnb_provision.plan.constraints import MachineFlags
from tests.support.mutation import Mutation, mutate, mutations, tricky_text

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parent / "fixtures"
_CATALOG = load_catalog()
_DB = load_db()
_TEMPLATES = sorted({m.template for m in _CATALOG.messages})
_CORPUS = [
    case["text"]
    for name in ("explain", "errors")
    for case in toml_loads((FIXTURES / name / "corpus.toml").read_text(encoding="utf-8"))["case"]
]
_CORPUS_LINES = sorted({ln for text in _CORPUS for ln in text.splitlines() if ln.strip()})
_FILES = {
    name: toml_loads((data_dir("compat_db") / name).read_text(encoding="utf-8"))
    for name in (CATALOG_FILE, CURATED_FILE)
}
_values = st.one_of(
    tricky_text,
    st.text(max_size=12),
    st.sampled_from(["8.6", "sm_5", "sm_90", "12.1", "cu121", "550.54.14", "NVIDIA H100", "/x"]),
)


@st.composite
def _message(draw: st.DrawFn) -> str:
    """A catalogue message with its fields filled in (right, wrong or junk), maybe cut."""
    parts = parse_template(draw(st.sampled_from(_TEMPLATES)))
    text = "".join(draw(_values) if isinstance(p, Field) else p for p in parts)
    cut = draw(st.one_of(st.none(), st.integers(0, len(text))))
    return text if cut is None else text[:cut]


_line = st.lists(
    st.one_of(_message(), st.sampled_from(_CORPUS_LINES), st.text(max_size=30), _values),
    min_size=1,
    max_size=4,
).map(" ".join)
_texts = st.one_of(
    st.text(max_size=400),
    st.lists(_line, max_size=25).map("\n".join),
    st.sampled_from(_CORPUS),
    st.builds(lambda t, n: (t + " ") * n, _message(), st.integers(1, 400)),  # a very long line
)


@given(_texts)
def test_explain_is_total(text: str) -> None:
    result = explain_text(text, catalog=_CATALOG, db=_DB)
    assert isinstance(result, Explanation)
    assert result.findings
    assert result.lines >= 0
    json.dumps(result.to_dict())


@given(_texts)
def test_reports_in_pasted_text(text: str) -> None:
    reported = read_reported(text)
    assert all(isinstance(v.value, str) for v in reported.strong.values())


_flags = st.builds(
    MachineFlags,
    os=st.one_of(st.none(), st.sampled_from(["linux", "windows", "macos"])),
    arch=st.one_of(st.none(), st.sampled_from(["x86_64", "aarch64"])),
    driver=st.one_of(st.none(), _values),
    gpus=st.lists(
        st.one_of(_values, st.sampled_from(["RTX 4090", "gfx1100", "M3"])), max_size=2
    ).map(tuple),
    python=st.one_of(st.none(), st.sampled_from(["3.12", "3.9"])),
)


@given(_texts, _flags)
def test_triage_is_total(text: str, flags: MachineFlags) -> None:
    """An issue body and the reporter's machine flags: a triage, or a SnapshotError for a
    flag that names no machine (as ``plan`` gives)."""
    with contextlib.suppress(SnapshotError):
        result = triage(text, flags=flags, catalog=_CATALOG, db=_DB)
        assert isinstance(result, Triage)
        json.dumps(result.to_dict())


def test_a_long_line_of_messages_is_read_in_bounded_time() -> None:
    line = " ".join(_TEMPLATES[:50]) * 20
    start = time.monotonic()
    explain_text(line[:200_000], catalog=_CATALOG, db=_DB)
    assert time.monotonic() - start < 20


# -- the catalogue and the curated rows (the DB, and the cache's copy of them) -----------------


@given(st.text(max_size=80))
def test_templates(text: str) -> None:
    with contextlib.suppress(ValueError):  # the documented error: bad braces
        parts = parse_template(text)
        assert all(isinstance(p, (str, Field)) for p in parts)


@given(mutations(_FILES))
def test_a_mutated_catalogue(mutation: Mutation) -> None:
    files = mutate(_FILES, mutation)
    with contextlib.suppress(CompatDBError):
        assert isinstance(build_catalog(files, deep=False), Catalog)


@given(mutations(_FILES[CURATED_FILE]))
def test_mutated_curated_rows(mutation: Mutation) -> None:
    with contextlib.suppress(CompatDBError):
        curated = parse_curated(mutate(_FILES[CURATED_FILE], mutation), CURATED_FILE, deep=True)
        assert isinstance(curated, Curated)


_CACHED = json.loads(json.dumps(_to_cache(_CATALOG, _FILES[CURATED_FILE])))
_SMALL = {**_CACHED, "messages": _CACHED["messages"][:40]}  # messages 0..39: the links hold
_SMALL_TEXT = st.lists(
    st.one_of(st.sampled_from([m[4] for m in _SMALL["messages"]]), _line), max_size=6
).map("\n".join)


@given(mutations(_SMALL), _SMALL_TEXT)
def test_a_mutated_catalogue_cache_entry(mutation: Mutation, text: str) -> None:
    """An entry of the right shape with one value changed: a catalogue that explains a
    text holding its messages, or None (load_catalog then builds it again from the files)."""
    catalog = _from_cache(mutate(_SMALL, mutation))
    if catalog is not None:
        assert explain_text(text, catalog=catalog, db=_DB).findings


def test_a_cache_entry_that_is_not_read_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    for name in (CATALOG_FILE, CURATED_FILE):
        (tmp_path / "compat_db" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir("compat_db") / name, tmp_path / "compat_db" / name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BNB_PROVISION_NO_CACHE", raising=False)
    key = cache.key_for("explain-catalog", _signature(tmp_path / "compat_db"))
    entry = tmp_path / "cache" / "bnb-provision" / "explain-catalog" / f"{key}.json"
    entry.parent.mkdir(parents=True)
    entry.write_text(json.dumps(mutate(_SMALL, (("examined",), "replace", {}))))
    assert load_catalog.__wrapped__(tmp_path / "compat_db").examined == _CATALOG.examined
    assert _from_cache(json.loads(entry.read_text())) is not None


# -- the shrunk inputs that crashed, kept as examples ------------------------------------------


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("examined",), ""),  # AttributeError: 'str' object has no attribute 'items'
        (("links",), []),  # the same
        (("messages", 0, 5), "("),  # re.error when the message's words are in the text
        (("messages", 0, 5), "(?:a+)+$"),  # a pattern that is not linear-time
        (("examined",), {}),  # KeyError: 'bitsandbytes' once a bitsandbytes message matched
        (("messages", 0, 2), ["0.1"]),  # releases the message is not printed by
        (("messages", 0, 8), []),  # lead words: a message never tried
    ],
)
def test_a_catalogue_cache_entry_that_is_not_what_the_code_wrote_is_not_read(
    where: tuple[str | int, ...], value: object
) -> None:
    assert _from_cache(mutate(_SMALL, (where, "replace", value))) is None
    assert _from_cache(_SMALL) is not None


def test_a_signature_pattern_in_the_cache_is_checked_again() -> None:
    curated = json.loads(json.dumps(_FILES[CURATED_FILE]))
    curated["signature"][0]["pattern"] = "(?:a+)+$"
    assert _from_cache({**_SMALL, "curated": curated}) is None
