"""The DB's readers are total (issue 12): the shipped documents with one value removed,
replaced, retyped or edited at a random path give a DB or a CompatDBError naming the
field, never another exception. The same holds for the stack facts, the fit rules and the
DB derivation's readers of wheel names, metadata and index answers.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import example, given
from hypothesis import strategies as st
from packaging.utils import InvalidWheelFilename
from packaging.version import InvalidVersion

from bnb_provision.core.data import data_dir
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db import pypi, wheels
from bnb_provision.db.load import read_db_files
from bnb_provision.db.model import CompatDB
from bnb_provision.db.parse import parse_db
from bnb_provision.db.stacks import StackDB, parse_stacks
from bnb_provision.errors import CompatDBError, ExternalToolError, FitInputError
from bnb_provision.fit.rules import FitRules, parse_rules
from tests.support.mutation import Mutation, json_values, mutate, mutations, tricky_text

pytestmark = pytest.mark.fuzz

_ROOT = data_dir("compat_db")
_NOT_PARSE_DB = {"derived/messages.toml", "explain.toml", "fit.toml", "stacks.toml"}
_FILES = {k: v for k, v in read_db_files(_ROOT).items() if k not in _NOT_PARSE_DB}
_FIT = toml_loads((_ROOT / "fit.toml").read_text(encoding="utf-8"))
_STACKS = {
    "curated": toml_loads((_ROOT / "stacks.toml").read_text(encoding="utf-8")),
    "derived": toml_loads((_ROOT / "derived" / "stacks.toml").read_text(encoding="utf-8")),
}


@given(mutations(_FILES))
@example((("bitsandbytes.toml", "xpu", "torch"), "replace", "0"))  # long run: InvalidSpecifier
def test_parse_db_on_a_mutated_db(mutation: Mutation) -> None:
    with contextlib.suppress(CompatDBError):
        assert isinstance(parse_db(mutate(_FILES, mutation)), CompatDB)


@given(st.dictionaries(st.sampled_from(sorted(_FILES)), json_values, max_size=4))
def test_parse_db_on_documents_of_any_shape(files: dict[str, Any]) -> None:
    with contextlib.suppress(CompatDBError):
        parse_db({**_FILES, **files})


@given(mutations(_STACKS))
def test_parse_stacks_on_mutated_stack_facts(mutation: Mutation) -> None:
    docs = mutate(_STACKS, mutation)
    with contextlib.suppress(CompatDBError):
        assert isinstance(parse_stacks(docs.get("curated"), docs.get("derived")), StackDB)


@given(
    mutations(_FIT),
    st.dictionaries(
        st.sampled_from(["transformers", "peft", "accelerate", "bitsandbytes"]),
        st.one_of(tricky_text, st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True)),
        max_size=2,
    ),
)
def test_parse_rules_on_mutated_fit_rules(mutation: Mutation, versions: dict[str, str]) -> None:
    with contextlib.suppress(CompatDBError, FitInputError):
        rules = parse_rules(mutate(_FIT, mutation))
        assert isinstance(rules, FitRules)
        rules.for_versions(versions)


# -- the derivation's readers (scripts/update_compat_db.py) -----------------------------------

_wheel_names = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{}-{}-{}-{}-{}.whl".format,
        st.sampled_from(["torch", "bitsandbytes", "x"]),
        st.sampled_from(["2.4.1", "0.45.0", "1!2.0+cu121", "x"]),
        st.sampled_from(["cp311", "cp3", "cp313t", "py3", "cp39.cp310", "", "cp\u0663"]),
        st.sampled_from(["cp311", "abi3", "none", "cp313t"]),
        st.one_of(
            st.sampled_from(
                [
                    "manylinux_2_28_x86_64",
                    "manylinux2014_aarch64",
                    "win_amd64",
                    "macosx_14_0_arm64",
                    "macosx_99999999999999999999_0_arm64",
                    "macosx_11_0_universal2",
                    "any",
                    "linux_riscv64",
                ]
            ),
            st.text(max_size=12),
        ),
    ),
)


@given(st.lists(_wheel_names, max_size=4))
def test_wheel_name_readers(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(InvalidWheelFilename, InvalidVersion):
            wheels.platform_of_wheel(name)
    with contextlib.suppress(InvalidWheelFilename, InvalidVersion):
        wheels.python_tags(names)
    with contextlib.suppress(InvalidWheelFilename, InvalidVersion):
        wheels.macos_floors(names)


_requirement = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{}{} ; {}".format,
        st.sampled_from(["nvidia-cuda-runtime-cu12", "cuda-toolkit", "x"]),
        st.sampled_from(["==12.1.105", "==x", "", "==12", "[cudart]==13.0.1", ">=1"]),
        st.sampled_from(
            ['platform_system == "Linux"', 'python_version < "3.9"', "extra == 'x'", "junk"]
        ),
    ),
)


@given(
    st.lists(_requirement, max_size=5),
    st.sampled_from(["linux-x86_64", "windows-x86_64", "macos-arm64", "other"]),
    st.one_of(st.sampled_from(["3.11", "3.13"]), st.text(max_size=5)),
)
def test_cuda_from_requires(requires: list[str], platform: str, python: str) -> None:
    found = wheels.cuda_from_requires(requires, platform, python)
    assert found is None or isinstance(found, str)


class _Answer:
    def __init__(self, body: object) -> None:
        self.body, self.status_code = body, 200
        self.text = body if isinstance(body, str) else ""

    def raise_for_status(self) -> None:
        pass

    def json(self) -> object:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


class _Index:
    """A stand-in for requests.Session answering every GET with the same document."""

    def __init__(self, body: object) -> None:
        self.body = body

    def get(self, *_args: object, **_kw: object) -> _Answer:
        return _Answer(self.body)


_file = st.fixed_dictionaries(
    {"filename": _wheel_names, "url": st.text(max_size=20)},
    optional={
        "hashes": st.one_of(json_values, st.fixed_dictionaries({"sha256": json_values})),
        "size": json_values,
        "requires-python": json_values,
        "upload-time": json_values,
        "yanked": json_values,
    },
)
_simple = st.one_of(
    json_values,
    st.fixed_dictionaries({"files": st.one_of(json_values, st.lists(_file, max_size=3))}),
    st.just(requests.JSONDecodeError("Expecting value", "<html>", 0)),
)


@pytest.fixture(scope="module")
def index_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index-cache")


@given(_simple)
def test_index_answers(body: object) -> None:
    """A simple-API page of any shape: the releases, or an ExternalToolError naming it."""
    reader = pypi.PypiReader(cache=Path("/nonexistent"), session=_Index(body))  # type: ignore[arg-type]
    with contextlib.suppress(ExternalToolError):
        releases = reader.releases("torch")
        assert all(isinstance(v, list) for v in releases.values())


_shas = itertools.count()


@given(st.text(max_size=400), st.one_of(st.none(), st.binary(max_size=200)))
def test_wheel_metadata_and_its_cache(index_cache: Path, text: str, cached: bytes | None) -> None:
    """Any METADATA text, and any bytes left in the derivation's cache for it: the headers
    (a corrupt cache entry is read again from the index)."""
    sha = f"{next(_shas):064x}"
    if cached is not None:
        (index_cache / "metadata").mkdir(exist_ok=True)
        (index_cache / "metadata" / f"{sha}.json").write_bytes(cached)
    reader = pypi.PypiReader(cache=index_cache, session=_Index(text))  # type: ignore[arg-type]
    fields = reader.wheel_metadata({"url": "https://index.invalid/x.whl", "sha256": sha})
    assert isinstance(fields["requires_python"], str)
    assert all(isinstance(r, str) for r in fields["requires_dist"])


# -- the shrunk inputs that crashed, kept as examples ------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"files": [{"filename": "0-0-A-0-0.whl", "url": ""}]},  # KeyError: 'hashes'
        {"files": [None]},  # TypeError
        {},  # KeyError: 'files'
        None,  # TypeError
        requests.JSONDecodeError("Expecting value", "<html>", 0),  # an HTML error page
    ],
)
def test_a_page_that_is_not_the_simple_api_is_an_external_tool_error(body: object) -> None:
    reader = pypi.PypiReader(cache=Path("/nonexistent"), session=_Index(body))  # type: ignore[arg-type]
    with pytest.raises(ExternalToolError, match="not a PEP 691 simple-API page"):
        reader.releases("torch")


@pytest.mark.parametrize("cached", [b"\x80", b"0", b"", b'{"requires_python": 3}'])
def test_a_corrupt_cache_entry_is_read_again(tmp_path: Path, cached: bytes) -> None:
    """UnicodeDecodeError, TypeError and JSONDecodeError before."""
    sha = "0" * 64
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / f"{sha}.json").write_bytes(cached)
    text = "Requires-Python: >=3.9\nRequires-Dist: numpy\n\nbody"
    reader = pypi.PypiReader(cache=tmp_path, session=_Index(text))  # type: ignore[arg-type]
    fields = reader.wheel_metadata({"url": "https://index.invalid/x.whl", "sha256": sha})
    assert fields == {"requires_python": ">=3.9", "requires_dist": ["numpy"]}
