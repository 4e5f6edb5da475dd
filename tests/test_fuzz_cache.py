"""The JSON and cache readers are total (issue 12): any bytes, any nesting, any number give
a value or a JsonInputError (decode_json, read_json), and any bytes planted in a cache entry
give None or a value (cache.read_json, read_private), never a raise; the DB loads from
such a cache or from its files.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.core import cache
from bnb_provision.core.data import data_dir
from bnb_provision.core.jsonio import JsonInputError, decode_json, read_json
from bnb_provision.db import load
from bnb_provision.db.model import CompatDB
from bnb_provision.errors import CompatDBError
from tests.support.mutation import json_values

pytestmark = pytest.mark.fuzz

_ROOT = data_dir("compat_db")
_FILES = load.read_db_files(_ROOT)
_entries = itertools.count()
_json_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 6000).map(lambda n: b"1" * n),
    st.sampled_from([b"1e999", b"-1e999", b"NaN", b"Infinity", b'"\\ud800"', b"\xef\xbb\xbf{}"]),
    json_values.map(lambda v: json.dumps(v).encode("utf-16")),
)


@given(_json_bytes, st.integers(0, 80))
def test_decode_json(raw: bytes, depth: int) -> None:
    with contextlib.suppress(JsonInputError):
        decode_json(raw, max_depth_allowed=depth)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-fuzz")


@given(_json_bytes, st.integers(0, 400))
def test_read_json_file(folder: Path, raw: bytes, max_bytes: int) -> None:
    path = folder / f"f{next(_entries)}.json"
    path.write_bytes(raw)
    with contextlib.suppress(JsonInputError):
        read_json(path, max_bytes=max_bytes)


@given(_json_bytes, st.sampled_from([0o600, 0o644, 0o620, 0o602, 0o000]))
def test_a_planted_cache_entry_is_none_or_a_value(folder: Path, raw: bytes, mode: int) -> None:
    key = f"k{next(_entries)}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(folder))
        mp.delenv("BNB_PROVISION_NO_CACHE", raising=False)
        mp.delenv("BNB_PROVISION_NO_DB_CACHE", raising=False)
        path = cache.cache_dir() / "fuzz" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        path.chmod(mode)
        got = cache.read_private(path)
        assert got is None or got == raw
        value = cache.read_json("fuzz", key)
        if mode & 0o022:  # writable by others: never read
            assert value is None
        json.dumps(value)  # plain JSON values only


@given(st.one_of(_json_bytes, json_values.map(lambda v: json.dumps({"meta.toml": v}).encode())))
def test_the_db_loads_from_any_cache_entry(folder: Path, raw: bytes) -> None:
    """A DB cache entry with any bytes: the DB (from the entry, or read again from its
    files) or a CompatDBError naming the field the entry holds wrong."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(folder))
        mp.delenv("BNB_PROVISION_NO_CACHE", raising=False)
        mp.delenv("BNB_PROVISION_NO_DB_CACHE", raising=False)
        mp.setattr(load, "read_db_files", lambda _root: _FILES)  # the files, read once
        key = cache.key_for("compat-db", load._db_signature(_ROOT))
        path = cache.cache_dir() / "compat-db" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        path.chmod(0o600)
        with contextlib.suppress(CompatDBError):
            assert isinstance(load.load_db.__wrapped__(_ROOT), CompatDB)
