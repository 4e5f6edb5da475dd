"""The GPU catalogue (compat_db/gpus.toml): names as users write them, memory, and the
checks the loader makes on every row."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.core.data import data_dir
from bnb_provision.db.gpus import GpuCatalog, normalize_gpu_name
from bnb_provision.db.load import load_db, read_db_files
from bnb_provision.db.parse import parse_db
from bnb_provision.errors import CompatDBError


@pytest.fixture(scope="module")
def files() -> dict[str, dict[str, Any]]:
    return read_db_files(data_dir("compat_db"))


@pytest.mark.parametrize(
    ("written", "model", "target"),
    [
        ("4090", "GeForce RTX 4090", "8.9"),
        ("rtx4090", "GeForce RTX 4090", "8.9"),
        ("RTX4090", "GeForce RTX 4090", "8.9"),
        ("RTX 4090", "GeForce RTX 4090", "8.9"),
        ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090", "8.9"),
        ("3090", "GeForce RTX 3090", "8.6"),
        ("A6000", "RTX A6000", "8.6"),
        ("A6000 Ada", "RTX 6000 Ada Generation", "8.9"),
        ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada Generation", "8.9"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", "GeForce RTX 4090 Laptop GPU", "8.9"),
        ("4080 SUPER", "GeForce RTX 4080 SUPER", "8.9"),
        ("RTX 3080 Ti", "GeForce RTX 3080 Ti", "8.6"),
        ("H100 SXM", "H100 SXM", "9.0"),
        ("H100 PCIe", "H100 PCIe", "9.0"),
        ("H100 NVL", "H100 NVL", "9.0"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM", "9.0"),
        ("Tesla V100-SXM2-32GB", "Tesla V100", "7.0"),
        ("Radeon RX 7900 XTX", "Radeon RX 7900 XTX", "gfx1100"),
        ("AMD Instinct MI300X", "Instinct MI300X", "gfx942"),
        ("mi250", "Instinct MI250", "gfx90a"),
        ("Intel(R) Arc(TM) A770 Graphics", "Arc A770", "Xe-HPG"),
        ("Intel Data Center GPU Max 1550", "Data Center GPU Max 1550", "Xe-HPC"),
        ("Apple M3", "Apple M3", "Apple9"),
        ("m1 pro", "Apple M1 Pro", "Apple7"),
    ],
)
def test_names_as_users_write_them(written: str, model: str, target: str) -> None:
    match = load_db().gpus().find(written)
    assert match is not None, written
    assert (match.entry.name, match.entry.target) == (model, target)


@pytest.mark.parametrize(
    ("written", "mib"),
    [
        ("RTX 4090", 24576),
        ("A100 80GB", 81920),
        ("NVIDIA A100-SXM4-40GB", 40960),
        ("A100", None),  # two sizes and the name picks neither
        ("MI300X", 196608),  # ROCm's GPU table: 192 GiB
        ("Apple M4", None),  # not recorded
    ],
)
def test_memory_for_fit(written: str, mib: int | None) -> None:
    match = load_db().gpus().find(written)
    assert match is not None
    assert match.memory_mib == mib


def test_every_model_has_a_source_and_its_target() -> None:
    db = load_db()
    assert len(db.gpu_catalog) >= 100
    assert {e.vendor for e in db.gpu_catalog} == {"nvidia", "amd", "intel", "apple"}
    for e in db.gpu_catalog:
        assert e.source.startswith("https://"), e
        assert e.target, e
        assert all(m % 1024 == 0 for m in e.memory_mib), e


def test_suggestions_name_the_nearest_models() -> None:
    gpus = load_db().gpus()
    assert gpus.find("RTX 4095") is None
    assert gpus.suggest("RTX 4095")[:1] == ["GeForce RTX 4090"]
    assert "GeForce RTX 4090" in gpus.suggest("4090 ti")
    assert gpus.suggest("zzzzzz") == []


def test_by_target() -> None:
    names = {e.name for e in load_db().gpus().by_target("gfx942")}
    assert {"Instinct MI300X", "Instinct MI325X"} <= names


def _rows(files: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = files["gpus.toml"]["gpu"]
    return rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r[1]["aliases"].append("4090"),
            "gpu[5] (GeForce RTX 4090): the name '4090' (as matched) already finds gpu[1]",
        ),
        (
            lambda r: r[0].update(cc="8.9"),
            "gpu[0].cc: GeForce RTX 5090 is 8.9 here but nvidia.toml",
        ),
        (lambda r: r[0].update(vendor="nvdia"), "gpu[0].vendor: unknown vendor 'nvdia'"),
        (lambda r: r[0].update(gfx="gfx1100"), "gpu[0].gfx: a nvidia GPU gives 'cc', not 'gfx'"),
        (lambda r: r[0].pop("cc"), "gpu[0].cc: required field is missing (a nvidia GPU"),
        (lambda r: r[0].update(memory_mib=[-1]), "gpu[0].memory_mib: sizes are positive"),
        (lambda r: r[0].update(memory_source="nowhere"), "gpu[0].memory_source: expected a public"),
        (lambda r: r[0].update(sourse="x"), "gpu[0].sourse: unknown field"),
    ],
)
def test_bad_rows_are_refused_with_their_path(
    files: dict[str, Any], change: Any, message: str
) -> None:
    broken = copy.deepcopy(files)
    change(_rows(broken))
    with pytest.raises(CompatDBError) as info:
        parse_db(broken)
    assert message in str(info.value)
    assert str(info.value).startswith("gpus.toml: ")


def test_amd_row_needs_a_gfx_target(files: dict[str, Any]) -> None:
    broken = copy.deepcopy(files)
    amd = next(r for r in _rows(broken) if r["vendor"] == "amd")
    amd["gfx"] = "rdna3"
    with pytest.raises(CompatDBError, match=r"\.gfx: expected gfxNNN, got 'rdna3'"):
        parse_db(broken)


def test_catalogue_file_is_shipped() -> None:
    assert (Path(data_dir("compat_db")) / "gpus.toml").is_file()


@pytest.mark.fuzz
@given(st.text(max_size=80))
def test_name_lookup_is_total(text: str) -> None:
    gpus = load_db().gpus()
    match = gpus.find(text)
    if match is not None:
        assert match.entry in gpus.entries
        assert match.memory_mib is None or match.memory_mib in match.entry.memory_mib
    assert len(gpus.suggest(text)) <= 3


def test_normal_form() -> None:
    assert normalize_gpu_name("NVIDIA GeForce RTX-4090 (Laptop)") == "rtx4090laptop"
    assert normalize_gpu_name("Intel(R) Arc(TM) A770 Graphics") == "arca770"
    assert GpuCatalog(()).find("anything") is None
