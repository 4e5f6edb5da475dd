"""The built wheel ships compat_db/ and templates/ inside the package, and finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    code = "import sys; from hatchling.build import build_wheel; print(build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out / done.stdout.strip().splitlines()[-1]


def test_wheel_contains_the_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "bnb_provision/compat_db/meta.toml",
        "bnb_provision/compat_db/nvidia.toml",
        "bnb_provision/compat_db/derived/bitsandbytes.toml",
        "bnb_provision/detect/_probe_script.py",
        "bnb_provision/env/_verify_script.py",
        "bnb_provision/py.typed",
    ):
        assert required in names, required
    assert any(n.startswith("bnb_provision/templates/") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_finds_its_data(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from bnb_provision.core.data import data_dir; "
        "from bnb_provision.db.load import load_db; "
        "print(data_dir('compat_db')); print(data_dir('templates')); print(load_db().version)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, str(site)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    db_dir, tpl_dir, version = done.stdout.split()
    assert db_dir == str(site / "bnb_provision" / "compat_db")
    assert tpl_dir == str(site / "bnb_provision" / "templates")
    assert version
