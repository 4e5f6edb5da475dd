from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnb_provision.detect.machine import MACHINE_SCHEMA, load_machine, machine_from_dict
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
