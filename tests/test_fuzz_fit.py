"""fit's readers are total (issue 12): any ``config.json``, safetensors header or index, and
any size a user types give a report, a value or a FitInputError saying what is wrong, in
bounded time, never another exception.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.errors import FitInputError
from bnb_provision.fit.model import read_model
from bnb_provision.fit.options import FitOptions, run_fit
from bnb_provision.fit.report import FitReport
from bnb_provision.fit.units import parse_memory_mib, parse_params
from tests.support.folders import fresh_folder
from tests.support.mutation import Mutation, json_values, mutate, mutations, tricky_text

pytestmark = pytest.mark.fuzz

_RAW = json.loads(
    (Path(__file__).parent / "fixtures" / "fit" / "raw" / "run2-calibration.json").read_text()
)["models"]
_CONFIGS = {name: m["checkpoint"]["config"] for name, m in sorted(_RAW.items())}
_TENSORS = _RAW["llama-3.2-1b"]["checkpoint"]["tensors"]
_SIZE = {"BF16": 2, "F16": 2, "F32": 4}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fit-fuzz")


def _fit(folder: Path, mode: str) -> None:
    """The whole command's library call on the folder: a report or a FitInputError."""
    with contextlib.suppress(FitInputError):
        report = run_fit(FitOptions(model=str(folder), gpu_memory=("24GiB",), mode=mode))  # type: ignore[arg-type]
        assert isinstance(report, FitReport)
        assert report.model.params >= 0


# -- sizes as typed ----------------------------------------------------------------------------

_sizes = st.one_of(
    st.text(max_size=20),
    tricky_text,
    st.builds(
        "{}{}".format,
        st.from_regex(r"[0-9]{300,400}", fullmatch=True),
        st.sampled_from(["", "M", "G", "GiB", "b"]),
    ),
    st.builds(
        "{}{}{}".format,
        st.from_regex(r"[0-9_]{0,400}(\.[0-9]{0,3})?(e[+-]?[0-9]{1,4})?", fullmatch=True),
        st.sampled_from(["", " ", "\u00a0"]),
        st.sampled_from(["", "k", "M", "B", "b", "T", "GiB", "GB", "MiB", "g", "t", "KB", "x"]),
    ),
)


@given(_sizes)
def test_parameter_counts_and_memory_sizes(text: str) -> None:
    with contextlib.suppress(FitInputError):
        params = parse_params(text)
        assert 1e6 <= params <= 1e15
    with contextlib.suppress(FitInputError):
        mib = parse_memory_mib(text)
        assert isinstance(mib, int)
        assert mib >= 1


# -- config.json -------------------------------------------------------------------------------

_DIMENSIONS = [
    "hidden_size",
    "num_hidden_layers",
    "vocab_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "num_local_experts",
    "moe_intermediate_size",
    "kv_lora_rank",
    "q_lora_rank",
    "sliding_window",
    "sliding_window_pattern",
]
_numbers = st.one_of(
    st.integers(-2, 300),
    st.sampled_from([0, 1, 64, 4096, 2**15, 10**6, 2**31, 2**40, 2**40 + 1, 10**400]),
    tricky_text,
    st.floats(),
)


@st.composite
def _mutated_config(draw: st.DrawFn) -> object:
    config = draw(st.sampled_from(list(_CONFIGS.values())))
    mutation: Mutation = draw(mutations(config))
    changed = mutate(config, mutation)
    for key in draw(st.lists(st.sampled_from(_DIMENSIONS), max_size=2)):
        if isinstance(changed, dict):
            changed = {**changed, key: draw(_numbers)}
    return changed


@given(
    st.one_of(_mutated_config(), st.dictionaries(st.text(max_size=12), json_values, max_size=5)),
    st.sampled_from(["load", "qlora", "inference"]),
)
def test_any_config_json(workdir: Path, config: Any, mode: str) -> None:
    folder = fresh_folder(workdir, "m")
    (folder / "config.json").write_text(json.dumps(config))
    _fit(folder, mode)


@given(st.one_of(st.binary(max_size=300), st.sampled_from([b"[" * 5000, b"1" * 5000])))
def test_any_bytes_as_config_json(workdir: Path, raw: bytes) -> None:
    folder = fresh_folder(workdir, "m")
    (folder / "config.json").write_bytes(raw)
    with contextlib.suppress(FitInputError):
        read_model(folder)


# -- safetensors headers and the index ---------------------------------------------------------


def _header(tensors: dict[str, Any]) -> tuple[dict[str, Any], int]:
    header, offset = {}, 0
    for name, (shape, dtype) in tensors.items():
        n = _SIZE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    return header, offset


_HEADER, _DATA = _header({k: (shape, dtype) for k, (dtype, shape) in _TENSORS.items()})


def _write_shard(path: Path, header: object, data: int, *, prefix: bytes | None = None) -> None:
    raw = json.dumps(header).encode()
    with path.open("wb") as fh:
        fh.write((struct.pack("<Q", len(raw)) if prefix is None else prefix) + raw)
        fh.truncate(8 + len(raw) + data)  # sparse: the data is never read


@given(
    st.one_of(
        st.builds(mutate, st.just(_HEADER), mutations(_HEADER)),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    ),
    st.one_of(st.just(_DATA), st.integers(0, 2 * _DATA)),
    st.one_of(st.none(), st.binary(min_size=8, max_size=8)),
)
def test_safetensors_headers(
    workdir: Path, header: object, data: int, prefix: bytes | None
) -> None:
    folder = fresh_folder(workdir, "m")
    (folder / "config.json").write_text(json.dumps(_CONFIGS["llama-3.2-1b"]))
    _write_shard(folder / "model.safetensors", header, data, prefix=prefix)
    with contextlib.suppress(FitInputError):
        read_model(folder / "model.safetensors")
    _fit(folder, "load")


@given(st.binary(max_size=400))
def test_any_bytes_as_a_safetensors_file(workdir: Path, raw: bytes) -> None:
    folder = fresh_folder(workdir, "m")
    (folder / "config.json").write_text(json.dumps(_CONFIGS["llama-3.2-1b"]))
    (folder / "model.safetensors").write_bytes(raw)
    with contextlib.suppress(FitInputError):
        read_model(folder / "model.safetensors")


@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "weight_map": st.dictionaries(
                    st.text(max_size=8), st.one_of(tricky_text, st.text(max_size=8)), max_size=4
                )
            }
        ),
    )
)
def test_any_index(workdir: Path, index: object) -> None:
    folder = fresh_folder(workdir, "m")
    (folder / "config.json").write_text(json.dumps(_CONFIGS["llama-3.2-1b"]))
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    _write_shard(folder / "model.safetensors", _HEADER, _DATA)
    with contextlib.suppress(FitInputError):
        read_model(folder)


# -- the shrunk inputs that crashed, kept as examples ------------------------------------------


@pytest.mark.parametrize("text", ["9" * 400 + "G", "1" + "0" * 310 + "MiB"])
def test_a_memory_size_beyond_a_float_is_refused(text: str) -> None:
    """OverflowError (int of an infinite float) before."""
    with pytest.raises(FitInputError, match="too large"):
        parse_memory_mib(text)


def test_a_shard_name_too_long_for_the_file_system_is_a_shard_not_there(tmp_path: Path) -> None:
    """OSError (ENAMETOOLONG) before: the index is read, the config stands in for the shard."""
    (tmp_path / "config.json").write_text(json.dumps(_CONFIGS["llama-3.2-1b"]))
    index = {"weight_map": {"": "a" * 5000}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert read_model(tmp_path).tensors_from == "config.json"


@pytest.mark.parametrize(
    ("entry", "data"),
    [
        ({"dtype": ["BF16"], "shape": [1], "data_offsets": [0, 2]}, 2),  # TypeError: unhashable
        ({"dtype": "F32", "shape": [10**310], "data_offsets": [0, 8]}, 8),  # OverflowError
        ({"dtype": "F64", "shape": [2**41, 0], "data_offsets": [0, 0]}, 0),  # no such dimension
    ],
)
def test_a_header_entry_of_another_type_or_size_is_refused(
    tmp_path: Path, entry: dict[str, Any], data: int
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_CONFIGS["llama-3.2-1b"]))
    _write_shard(tmp_path / "model.safetensors", {"w": entry}, data)
    with pytest.raises(FitInputError, match="tensor 'w'"):
        read_model(tmp_path / "model.safetensors")


@pytest.mark.parametrize(
    "config",
    [
        {"hidden_size": 64, "num_hidden_layers": 10**8, "vocab_size": 10},  # hung, then memory
        {"hidden_size": 64, "num_hidden_layers": 64, "vocab_size": 10, "num_experts": 2**30},
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "vocab_size": 10,
            "vision_config": {"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 10**9},
        },
    ],
)
def test_a_config_of_more_layers_than_any_model_is_refused_at_once(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FitInputError, match="more than fit reads"):
        read_model(tmp_path)


def test_a_vision_tower_with_patch_size_zero_is_no_division_by_zero(tmp_path: Path) -> None:
    config = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "vocab_size": 10,
        "vision_config": {
            "hidden_size": 8,
            "intermediate_size": 8,
            "num_hidden_layers": 1,
            "patch_size": 0,
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert read_model(tmp_path).params > 0
