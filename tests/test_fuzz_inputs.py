"""The rest of what users hand over is read totally (issue 12): the machine flags
(``--gpu/--driver/--python/--os-version``) and the command line's value types, a
``--machine`` folder of snapshots, a wheelhouse's file names, a fleet run's results folder
and uv's error output. Each gives a value, the project's own error or click's usage
error, never another exception; nothing outside a results folder is read or removed.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.cli.params import CUDA_PIN, INDEX_TEMPLATE, MODEL_SIZE, VERSION_PIN, UserPath
from bnb_provision.core.uv import network_failure
from bnb_provision.db.load import load_db
from bnb_provision.detect.interpreter import requested_version
from bnb_provision.errors import LockfileError, SnapshotError, TargetEnvError
from bnb_provision.fleet.job import NODE_FILES, prepare_output
from bnb_provision.fleet.report import FleetReport, read_results
from bnb_provision.plan.constraints import MachineFlags
from bnb_provision.plan.inputs import apply_flags, load_machines, target_from_machine
from bnb_provision.plan.wheelhouse import Wheelhouse, read_wheelhouse, wheel_fits
from tests.support.folders import fresh_folder
from tests.support.mutation import json_values, tricky_text

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parent / "fixtures"
_DB = load_db()
_SNAPSHOTS = [p.read_bytes() for p in sorted((FIXTURES / "team").glob("*.json"))]
_words = st.one_of(
    tricky_text,
    st.text(max_size=16),
    st.sampled_from(
        [
            "8.6",
            "12.0",
            "9.0a",
            "gfx1100",
            "gfx90a",
            "RTX 4090",
            "4090",
            "A100",
            "M3 Max",
            "Arc A770",
            "580.95.05",
            "550",
            "3.12",
            "3.99",
            "14.5",
            "\u0668.\u0666",
        ]
    ),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs-fuzz")


# -- machine flags and the command line's value types ------------------------------------------


@given(
    st.builds(
        MachineFlags,
        os=st.one_of(st.none(), st.sampled_from(["linux", "windows", "macos", "wsl", "x"])),
        arch=st.one_of(st.none(), st.sampled_from(["x86_64", "aarch64", "arm64", "amd64", "x"])),
        driver=st.one_of(st.none(), _words),
        gpus=st.lists(_words, max_size=3).map(tuple),
        python=st.one_of(st.none(), _words),
        os_version=st.one_of(st.none(), _words),
    ),
    st.sampled_from([None, *range(len(_SNAPSHOTS))]),
)
def test_machine_flags(flags: MachineFlags, snapshot: int | None) -> None:
    """``plan --os/--arch/--driver/--gpu/--python/--os-version`` (on a snapshot, or
    alone): the resolver's target, or a SnapshotError naming the flag."""
    base = None
    if snapshot is not None:
        from bnb_provision.detect.snapshot import decode_snapshot, machine_from_dict

        base = machine_from_dict(decode_snapshot(_SNAPSHOTS[snapshot], "team"), label="team")
    with contextlib.suppress(SnapshotError):
        target_from_machine(apply_flags(base, flags, _DB), _DB)


@given(_words, st.sampled_from([VERSION_PIN, CUDA_PIN, INDEX_TEMPLATE, MODEL_SIZE]))
def test_option_value_types(value: str, kind: click.ParamType[Any]) -> None:
    with contextlib.suppress(click.BadParameter):
        kind.convert(value, None, None)


@given(
    st.one_of(
        _words, st.from_regex(r"(cpython@)?[0-9]{1,6000}(\.[0-9]{1,20}){0,3}", fullmatch=True)
    )
)
def test_python_requests(value: str) -> None:
    """``--python``: a version asked for (``(3, 12)``), an interpreter (None), or refused."""
    with contextlib.suppress(TargetEnvError):
        version = requested_version(value)
        assert version is None or version[0] == 3


@given(st.one_of(_words, st.just("a" * 5000)))
def test_user_paths(workdir: Path, value: str) -> None:
    for kind in (UserPath(), UserPath(exists=True), UserPath(dir_okay=False, exists=True)):
        with contextlib.suppress(click.BadParameter):
            kind.convert(value, None, None)


# -- a --machine folder, a wheelhouse ----------------------------------------------------------


@given(
    st.lists(
        st.one_of(
            st.sampled_from(_SNAPSHOTS),
            st.binary(max_size=200),
            json_values.map(lambda v: json.dumps(v).encode()),
        ),
        min_size=1,
        max_size=3,
    ),
    st.one_of(st.none(), st.sampled_from(["3.12", "3.9", "x"])),
)
def test_a_folder_of_snapshots(workdir: Path, files: list[bytes], python: str | None) -> None:
    folder = fresh_folder(workdir, "d")
    for i, raw in enumerate(files):
        (folder / f"m{i}.json").write_bytes(raw)
    with contextlib.suppress(SnapshotError):
        machines = load_machines((folder,), MachineFlags(python=python), _DB)
        for machine in machines:
            with contextlib.suppress(SnapshotError):
                target_from_machine(machine, _DB)


_wheel_names = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="/\x00"), min_size=1, max_size=40),
    st.builds(
        "{}-{}-{}-{}-{}.whl".format,
        st.sampled_from(["torch", "bitsandbytes", "transformers", "x"]),
        st.sampled_from(["2.8.0", "2.8.0+cu128", "0.47.0", "1!2", "x", "2.8.0+cpu"]),
        st.sampled_from(
            ["cp312", "cp3", "py3", "cp312t", "cp\u0663\u0661\u0662", "cp3" + "1" * 30]
        ),
        st.sampled_from(["cp312", "abi3", "none"]),
        st.sampled_from(["manylinux_2_28_x86_64", "win_amd64", "macosx_14_0_arm64", "any", "x"]),
    ),
    st.builds("{}-{}.tar.gz".format, st.sampled_from(["torch", "x"]), _words),
)


@given(st.lists(_wheel_names, max_size=6), st.sampled_from(["3.12", "3.9", "3.\u0661\u0662"]))
def test_a_wheelhouse_of_any_file_names(workdir: Path, names: list[str], python: str) -> None:
    folder = fresh_folder(workdir, "d")
    for name in names:
        with contextlib.suppress(OSError, ValueError):  # a name the file system refuses
            (folder / ("_" if name in (".", "..") else name)).write_bytes(b"")
    house = read_wheelhouse([folder, folder / "missing"])
    assert isinstance(house, Wheelhouse)
    for package in ("torch", "bitsandbytes"):
        house.describe(package, "linux-x86_64", python)
    for name in names:
        wheel_fits(name, "linux-x86_64", python)


# -- a fleet run's results folder --------------------------------------------------------------

_nodes = st.lists(
    st.one_of(
        st.sampled_from(["gpu-01", "10.0.0.5", "fe80::1", "node.example", "../outside"]), _words
    ),
    max_size=4,
)
_node_files = st.dictionaries(
    st.sampled_from(NODE_FILES),
    st.one_of(
        st.binary(max_size=100),
        st.sampled_from([b"0", b"1", b"", b"[" * 3000, b'{"schema": "bnb-provision.machine/1"}']),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from(_SNAPSHOTS),
    ),
)


@given(
    st.sampled_from(["snapshot", "init", "x", ""]),
    _nodes,
    st.lists(_node_files, max_size=4),
    st.booleans(),
)
def test_a_fleet_results_folder(
    workdir: Path, mode: str, nodes: list[str], files: list[dict[str, bytes]], header: bool
) -> None:
    """``fleet report DIR``: a report, or a SnapshotError saying the folder is not a run's;
    ``--force`` clears only the run's own files, inside the folder."""
    parent = fresh_folder(workdir, "d")
    folder = parent / "run"
    folder.mkdir()
    (parent / "outside.json").write_text("{}")
    lines = ([f"# bnb-provision fleet {mode}"] if header else []) + nodes
    (folder / "nodes.txt").write_text("\n".join(lines), errors="surrogateescape")
    for node, node_files in zip(nodes, files, strict=False):
        for suffix, raw in node_files.items():
            with contextlib.suppress(OSError, ValueError):  # a name the file system refuses
                (folder / f"{node}{suffix}").write_bytes(raw)
    with contextlib.suppress(SnapshotError):
        report = read_results(folder)
        assert isinstance(report, FleetReport)
        json.dumps(report.to_dict())
    with contextlib.suppress(LockfileError):
        prepare_output(folder, force=True)
    assert (parent / "outside.json").exists()


@given(st.one_of(st.text(max_size=300), st.builds("Failed to fetch: `{}`".format, _words)))
def test_uv_error_output(stderr: str) -> None:
    found = network_failure(stderr)
    assert found is None or isinstance(found, str)


# -- the shrunk inputs that crashed, kept as examples ------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        MachineFlags(os="macos", os_version="\u0661\u0664"),  # InvalidVersion before
        MachineFlags(driver="\u0665\u0665\u0660"),  # InvalidVersion before
        MachineFlags(python="3.\u0661\u0662"),
    ],
    ids=["os-version", "driver", "python"],
)
def test_flags_in_other_digits_are_refused(flags: MachineFlags) -> None:
    with pytest.raises(SnapshotError, match="expected"):
        apply_flags(None, flags, _DB)


def test_a_python_version_of_too_many_digits_is_not_a_version() -> None:
    """ValueError (int of more than 4300 digits) before: it names an interpreter."""
    assert requested_version("3." + "1" * 5000) is None


def test_an_abi3_wheel_of_a_free_threaded_build_does_not_crash_the_wheelhouse(
    tmp_path: Path,
) -> None:
    """ValueError (int('12t')) before."""
    (tmp_path / "torch-2.8.0-cp312t-abi3-manylinux_2_28_x86_64.whl").write_bytes(b"")
    assert read_wheelhouse([tmp_path]).describe("torch", "linux-x86_64", "3.12") == "no torch"


def _run_folder(tmp_path: Path, *nodes: str) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "nodes.txt").write_text("# bnb-provision fleet snapshot\n" + "\n".join(nodes))
    return folder


@pytest.mark.parametrize("node", ["../outside", "a\x00b", "a" * 300])
def test_a_node_name_that_is_not_a_file_name_is_refused(tmp_path: Path, node: str) -> None:
    """ValueError (a NUL) or OSError (too long) before, or the file beside the folder read."""
    folder = _run_folder(tmp_path, node)
    (tmp_path / "outside.json").write_text(_SNAPSHOTS[0].decode())
    with pytest.raises(SnapshotError, match="is not a node name"):
        read_results(folder)


def test_force_never_removes_files_outside_the_results_folder(tmp_path: Path) -> None:
    """fleet --force removed ../outside.json (and .rc, .log) before."""
    folder = _run_folder(tmp_path, "../outside", "gpu-01")
    (tmp_path / "outside.json").write_text("{}")
    (folder / "gpu-01.json").write_text("{}")
    prepare_output(folder, force=True)
    assert (tmp_path / "outside.json").exists()
    assert not (folder / "gpu-01.json").exists()


def test_a_deeply_nested_node_result_is_a_failed_node(tmp_path: Path) -> None:
    """RecursionError before."""
    folder = _run_folder(tmp_path, "gpu-01")
    (folder / "gpu-01.json").write_bytes(b"[" * 3000)
    (node,) = read_results(folder).nodes
    assert node.status == "failed"
    assert "not readable JSON" in node.why
