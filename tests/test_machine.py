from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.detect.machine import MACHINE_SCHEMA
from bnb_provision.detect.snapshot import load_machine, machine_from_dict
from bnb_provision.errors import SnapshotError

SNAP = Path(__file__).parent / "fixtures" / "snapshots"


def test_h100_snapshot_from_the_device() -> None:
    m = load_machine(SNAP / "h100-bnb-0.50.2.json")
    assert m.nvidia is not None
    assert (m.nvidia.driver, m.nvidia.cuda_driver, m.nvidia.source) == (
        "580.159.04",
        "13.0",
        "nvml",
    )
    g = m.gpus[0]
    assert (g.name, g.compute_capability, g.memory_total_mib) == (
        "NVIDIA H100 80GB HBM3",
        (9, 0),
        81559,
    )
    assert m.os.distro == "Ubuntu 24.04.3 LTS" and m.os.libc == "glibc 2.39"
    assert m.env is not None and m.env.torch is not None
    assert (m.env.torch.version, m.env.torch.cuda) == ("2.11.0+cu130", "13.0")
    for name in ("transformers", "accelerate", "peft"):
        assert m.env.version_of(name) is not None
    bnb = m.env.bitsandbytes
    assert bnb is not None and bnb.version == "0.50.2"
    lib = bnb.library("cuda", "130")
    assert lib is not None and lib.kernels is not None
    assert lib.kernels.sass == (75, 80, 86, 89, 90, 100, 120)


def test_round_trip() -> None:
    data = json.loads((SNAP / "h100-bnb-0.50.2.json").read_text())
    m = machine_from_dict(data)
    again = m.to_dict()
    assert again["gpus"] == data["gpus"]
    assert again["env"]["bitsandbytes"] == data["env"]["bitsandbytes"]
    assert machine_from_dict(again) == m


def test_hand_written_partial_snapshot() -> None:
    m = machine_from_dict(
        {
            "os": {"system": "Linux", "arch": "x86_64"},
            "python": {"version": "3.11"},
            "nvidia": {"driver": "550.54.14"},
            "gpus": [{"name": "NVIDIA GeForce GTX 1080 Ti"}, {"compute_capability": "8.6"}],
        }
    )
    assert m.os.system == "linux"
    assert m.gpus[0].compute_capability is None and m.gpus[1].compute_capability == (8, 6)
    assert m.nvidia is not None and m.nvidia.source == "snapshot"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"python": {"version": "3.12"}}, "os: required field is missing"),
        ({"os": {"system": "plan9"}, "python": {"version": "3.12"}}, "os.system: expected linux"),
        ({"os": {"system": "linux"}}, "python: required field is missing"),
        (
            {"os": {"system": "linux"}, "python": {"version": "2.7"}},
            "python.version: expected a Python 3",
        ),
        (
            {"os": {"system": "linux"}, "python": {"version": "3.12"}, "nvidia": {"driver": "new"}},
            "nvidia.driver: expected a driver version",
        ),
        (
            {
                "os": {"system": "linux"},
                "python": {"version": "3.12"},
                "nvidia": {"driver": "550"},
                "gpus": [{"name": "x", "compute_capability": "eight"}],
            },
            'gpus[0].compute_capability: expected "X.Y"',
        ),
        (
            {"os": {"system": "linux"}, "python": {"version": "3.12"}, "gpus": [{"name": "A100"}]},
            "gpus are listed but nvidia is null",
        ),
        (
            {"os": {"system": "linux", "arhc": "x86_64"}, "python": {"version": "3.12"}},
            "os.arhc: unknown field (did you mean 'arch'?)",
        ),
        (
            {
                "schema": "bnb-provision.machine/9",
                "os": {"system": "linux"},
                "python": {"version": "3.12"},
            },
            "upgrade bnb-provision",
        ),
        (
            {"schema": "other/1", "os": {"system": "linux"}, "python": {"version": "3.12"}},
            "schema: expected",
        ),
        ([1, 2], "expected a table"),
    ],
)
def test_bad_snapshots(data: object, message: str) -> None:
    with pytest.raises(SnapshotError, match="snapshot: ") as info:
        machine_from_dict(data)
    assert message in str(info.value)


def test_unreadable_snapshot_files(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read it"):
        load_machine(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(SnapshotError, match=r"not valid JSON \(line 1"):
        load_machine(bad)


def test_schema_constant() -> None:
    assert MACHINE_SCHEMA == "bnb-provision.machine/1"


def test_identity_leaves_out_what_changes_between_runs(fixtures: Path) -> None:
    from dataclasses import replace

    snap = next((fixtures / "snapshots").glob("*.json"))
    m = load_machine(snap)
    busier = replace(m, gpus=tuple(replace(g, memory_free_mib=1) for g in m.gpus), warnings=("x",))
    assert busier.identity() == m.identity() and busier.to_dict() != m.to_dict()
    assert "warnings" not in m.identity()


# -- snapshot files as users' shells write them ------------------------------------------

_PARTIAL = (
    '{"os": {"system": "linux", "arch": "x86_64"}, "python": {"version": "3.11"}, '
    '"nvidia": {"driver": "550.54.14"}, "gpus": [{"name": "NVIDIA GeForce GTX 1080 Ti"}]}'
)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
    ],
    ids=["utf8", "utf8-bom", "powershell-utf16le", "utf16be"],
)
def test_snapshots_in_every_encoding_a_shell_writes(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    path = tmp_path / "machine.json"
    path.write_bytes(bom + _PARTIAL.encode(encoding))
    machine = load_machine(path)
    assert machine.nvidia is not None and machine.nvidia.driver == "550.54.14"
    assert machine.gpus[0].name == "NVIDIA GeForce GTX 1080 Ti"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x81 not text", "not UTF-8 or UTF-16"),
        (b"[" * 5000 + b"]" * 5000, "nested 5000 levels"),
        (b'{"python": {"version": "3.11"}, "x": ' + b"9" * 5000 + b"}", "not a snapshot"),
        (b"{", "not valid JSON"),
        (b"[]", "expected a table"),
    ],
    ids=["not-utf8", "deep", "5000-digit-number", "truncated", "array"],
)
def test_bad_snapshot_files_are_snapshot_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "machine.json"
    path.write_bytes(data)
    with pytest.raises(SnapshotError, match=message):
        load_machine(path)


def test_an_oversized_snapshot_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    from bnb_provision.detect.snapshot import MAX_SNAPSHOT_BYTES

    path = tmp_path / "machine.json"
    with path.open("wb") as f:
        f.truncate(MAX_SNAPSHOT_BYTES + 10)  # sparse: no disk used
    with pytest.raises(SnapshotError, match="larger than"):
        load_machine(path)


@pytest.mark.fuzz
@given(st.binary(max_size=400))
def test_any_bytes_give_a_machine_or_a_snapshot_error(data: bytes) -> None:
    from bnb_provision.detect.snapshot import decode_snapshot

    with contextlib.suppress(SnapshotError):
        machine_from_dict(decode_snapshot(data, "fuzz"), label="fuzz")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(["os", "python", "nvidia", "gpus", "env", "schema", "tool", "warnings"])


@pytest.mark.fuzz
@given(st.dictionaries(_keys, _json, max_size=6))
def test_any_json_gives_a_machine_or_a_snapshot_error(data: dict[str, object]) -> None:
    with contextlib.suppress(SnapshotError):
        machine_from_dict(data, label="fuzz")
