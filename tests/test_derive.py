from __future__ import annotations

from pathlib import Path

import pytest
import requests

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.derive import Deriver, document, table
from bnb_provision.db.wheels import (
    MARKER_ENVS,
    cuda_from_requires,
    macos_floors,
    platform_of_wheel,
)
from bnb_provision.vocab import PLATFORMS
from tests.support.index import make_wheel, serve_index

KERNELS = Path(__file__).parent / "fixtures" / "kernels"
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    ("filename", "platform"),
    [
        ("bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl", "linux-x86_64"),
        ("bitsandbytes-0.50.2-py3-none-manylinux_2_24_aarch64.whl", "linux-aarch64"),
        ("bitsandbytes-0.50.2-py3-none-win_amd64.whl", "windows-x86_64"),
        ("bitsandbytes-0.50.2-py3-none-win_arm64.whl", "windows-aarch64"),
        ("bitsandbytes-0.50.2-py3-none-macosx_14_0_arm64.whl", "macos-arm64"),
        ("bitsandbytes-0.41.1-py3-none-any.whl", "any"),
        ("torch-2.2.2-cp311-none-macosx_10_9_x86_64.whl", "macos-x86_64"),
        ("torch-2.1.0-cp311-cp311-manylinux1_x86_64.whl", "linux-x86_64"),
    ],
)
def test_platform_of_wheel(filename: str, platform: str) -> None:
    assert platform_of_wheel(filename) == platform


# Requires-Dist lines as torch's real METADATA carries them
TORCH_21 = [
    (
        'nvidia-cuda-runtime-cu12 (==12.1.105) ; platform_system == "Linux" and '
        'platform_machine == "x86_64"'
    ),
    "filelock",
]
TORCH_211 = [
    'cuda-toolkit[cublas,cudart,cufft]==13.0.2; platform_system == "Linux"',
    'cuda-bindings<14,>=13.0.3; platform_system == "Linux"',
]


def test_every_platform_has_marker_values() -> None:
    assert set(MARKER_ENVS) == set(PLATFORMS)


def test_cuda_from_requires_honours_markers() -> None:
    assert cuda_from_requires(TORCH_21, "linux-x86_64", "3.11") == "12.1"
    assert cuda_from_requires(TORCH_21, "linux-aarch64", "3.11") is None
    assert cuda_from_requires(TORCH_21, "macos-arm64", "3.11") is None
    assert cuda_from_requires(TORCH_211, "linux-aarch64", "3.12") == "13.0"
    assert cuda_from_requires(TORCH_211, "windows-x86_64", "3.12") is None


def test_bnb_derivation_against_a_local_index(tmp_path: Path) -> None:
    """The whole path: simple API, PEP 658 metadata, wheel download, fatbin reading, cache."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(
        wheels,
        "bitsandbytes",
        "0.50.2",
        {
            "bitsandbytes/__init__.py": b"",
            "bitsandbytes/libbitsandbytes_cpu.so": b"\x7fELF" + b"\0" * 100,
            "bitsandbytes/libbitsandbytes_cuda130.so": (KERNELS / "whole.so").read_bytes(),
            "bitsandbytes/libbitsandbytes_cuda126.so": (KERNELS / "rdc.so").read_bytes(),
        },
        tag="py3-none-manylinux_2_24_x86_64",
        requires=("torch<3,>=2.4", "numpy>=1.17"),
        requires_python=">=3.10",
    )
    with serve_index(list(wheels.iterdir())) as (url, seen):
        d = Deriver(cache=tmp_path / "cache", session=requests.Session(), index=url)
        text = d.bnb_toml()
        downloads = sum(1 for p in seen if p.startswith("/files/") and p.endswith(".whl"))
        again = d.bnb_toml()
        downloads_again = sum(1 for p in seen if p.startswith("/files/") and p.endswith(".whl"))
    assert text == again
    assert downloads == 1 and downloads_again == 1  # the re-run downloaded nothing
    data = toml_loads(text)
    rel = data["release"][0]
    assert rel["version"] == "0.50.2" and rel["torch"] == "<3,>=2.4"
    assert rel["requires_python"] == ">=3.10" and rel["platforms"] == ["linux-x86_64"]
    libs = {lib["file"]: lib for lib in data["library"]}
    assert libs["libbitsandbytes_cuda130.so"]["sass"] == [75, 90]
    assert libs["libbitsandbytes_cuda130.so"]["ptx"] == [90]
    assert libs["libbitsandbytes_cuda126.so"]["rel_ptx"] == [80]
    assert libs["libbitsandbytes_cpu.so"]["backend"] == "cpu"


def test_rocm_libraries_get_their_gfx_targets(tmp_path: Path) -> None:
    """A ROCm library's gfx targets come from its offload bundles (a library clang 19
    built, zstd-compressed as bitsandbytes' are), into the derived row."""
    pytest.importorskip("zstandard")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    hip = Path(__file__).parent / "fixtures" / "hip"
    make_wheel(
        wheels,
        "bitsandbytes",
        "0.50.2",
        {
            "bitsandbytes/__init__.py": b"",
            "bitsandbytes/libbitsandbytes_rocm72.so": (hip / "zstd.so").read_bytes(),
            "bitsandbytes/libbitsandbytes_rocm64.so": (hip / "plain.so").read_bytes(),
        },
        tag="py3-none-manylinux_2_24_x86_64",
        requires=("torch<3,>=2.4",),
        requires_python=">=3.10",
    )
    with serve_index(list(wheels.iterdir())) as (url, _):
        d = Deriver(cache=tmp_path / "cache", session=requests.Session(), index=url)
        data = toml_loads(d.bnb_toml())
    libs = {lib["file"]: lib for lib in data["library"]}
    for name in ("libbitsandbytes_rocm72.so", "libbitsandbytes_rocm64.so"):
        assert libs[name]["backend"] == "rocm"
        assert libs[name]["gfx"] == ["gfx90a", "gfx942:xnack-", "gfx1100"]
        assert "sass" not in libs[name]


def test_shipped_rocm_libraries_name_their_gfx_targets() -> None:
    """Every ROCm library in the shipped derived file has the gfx list its binary holds."""
    data = toml_loads((ROOT / "compat_db/derived/bitsandbytes.toml").read_text())
    rocm = [lib for lib in data["library"] if lib["backend"] == "rocm"]
    assert len(rocm) >= 30
    assert all(lib["gfx"] and all(g.startswith("gfx") for g in lib["gfx"]) for lib in rocm)
    latest = {lib["file"]: lib["gfx"] for lib in rocm if lib["bnb"] == "0.50.2"}
    assert "gfx942" in latest["libbitsandbytes_rocm72.so"]
    assert "gfx1250" in latest["libbitsandbytes_rocm714.so"]  # CDNA5, from ROCm 7.14 builds


def test_metadata_by_range_requests_when_no_pep658(tmp_path: Path) -> None:
    wheels = tmp_path / "w"
    wheels.mkdir()
    w = make_wheel(
        wheels,
        "peft",
        "0.21.2",
        {"peft/__init__.py": b"x" * 5000},
        requires=("torch>=1.13.0", "accelerate>=0.21.0"),
        requires_python=">=3.10",
    )
    with serve_index([w]) as (url, _):
        d = Deriver(cache=tmp_path / "cache", session=requests.Session(), index=url)
        file = d.releases("peft")["0.21.2"][0]
        file["url"] = file["url"].replace("/files/", "/files/")  # the real file
        member = d._zip_member(file, ".dist-info/METADATA").decode()
    assert "Requires-Dist: accelerate>=0.21.0" in member


@pytest.mark.network
def test_regeneration_reproduces_the_shipped_release_lists(tmp_path: Path) -> None:
    """Against real PyPI: the derived torch file and bitsandbytes' release rows match."""
    session = requests.Session()
    d = Deriver(cache=tmp_path / "cache", session=session)
    shipped_torch = (ROOT / "compat_db/derived/torch.toml").read_text()
    assert d.torch_toml() == shipped_torch
    fresh = toml_loads(d.bnb_toml(libraries=False))["release"]
    shipped = toml_loads((ROOT / "compat_db/derived/bitsandbytes.toml").read_text())["release"]
    assert fresh[: len(shipped)] == shipped


@pytest.mark.network
def test_regeneration_reproduces_one_wheels_kernels(tmp_path: Path) -> None:
    """Against real PyPI: the 1 MB win_arm64 wheel of 0.50.2 gives the shipped library rows."""
    d = Deriver(cache=tmp_path / "cache", session=requests.Session())
    files = d.releases("bitsandbytes")["0.50.2"]
    arm = next(f for f in files if f["filename"].endswith("win_arm64.whl"))
    fresh = [{k: v for k, v in lib.items() if v is not None} for lib in d.wheel_libraries(arm)]
    shipped = [
        lib
        for lib in toml_loads((ROOT / "compat_db/derived/bitsandbytes.toml").read_text())["library"]
        if lib["bnb"] == "0.50.2" and lib["platform"] == "windows-aarch64"
    ]
    for lib in shipped:
        del lib["bnb"], lib["platform"]
    assert fresh == shipped


@pytest.mark.parametrize(
    "name",
    [
        "torch.toml",
        "bitsandbytes.toml",
        "transformers.toml",
        "accelerate.toml",
        "peft.toml",
        "trl.toml",
        "torchvision.toml",
        "torchaudio.toml",
    ],
)
def test_the_writer_reproduces_the_shipped_files_byte_for_byte(name: str) -> None:
    """Each block of a shipped derived file, parsed and written again, is the same text:
    a regeneration changes only the facts that changed."""
    text = (ROOT / "compat_db" / "derived" / name).read_text(encoding="utf-8")
    head, _, body = text.partition("\n[[")  # head: the comment lines and the blank one
    pieces = ("[[" + body).split("\n[[")
    blocks = [pieces[0], *("[[" + p for p in pieces[1:])]
    written = []
    for block in blocks:
        ((key, (row,)),) = toml_loads(block).items()
        written.append(table(f"[[{key}]]", row))
    assert len(written) > 3
    assert document(tuple(head.split("\n")), written) == text


def test_the_script_prints_a_diff_and_writes_only_when_asked(tmp_path: Path) -> None:
    """scripts/update_compat_db.py, run as a script with the package importable the normal
    way: a diff first, the file with --write, then nothing left to change."""
    import os
    import subprocess
    import sys

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(
        wheels,
        "bitsandbytes",
        "0.50.2",
        {"bitsandbytes/libbitsandbytes_cpu.so": b"\x7fELF" + b"\0" * 100},
        tag="py3-none-manylinux_2_24_x86_64",
        requires=("torch<3,>=2.4",),
        requires_python=">=3.10",
    )
    derived = tmp_path / "derived"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "update_compat_db.py"),
                "--only",
                "bitsandbytes",
                "--index",
                url,
                "--derived",
                str(derived),
                "--cache",
                str(tmp_path / "cache"),
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=True,
            timeout=120,
        )

    with serve_index(list(wheels.iterdir())) as (url, _):
        shown = run()
        assert "+++ b/compat_db/derived/bitsandbytes.toml" in shown.stdout
        assert '+version = "0.50.2"' in shown.stdout
        assert "1 file(s) would change" in shown.stderr and not derived.exists()
        written = run("--write")
        assert "1 file(s) written" in written.stderr
        text = (derived / "bitsandbytes.toml").read_text()
        assert toml_loads(text)["library"][0]["file"] == "libbitsandbytes_cpu.so"
        again = run()
    assert again.stdout == "" and "0 file(s) would change" in again.stderr


def test_macos_floors_come_from_the_platform_tags() -> None:
    """The oldest macOS of each Python's arm64 wheel; free-threaded builds left out."""
    names = [
        "torch-2.10.0-cp312-none-macosx_11_0_arm64.whl",
        "torch-2.10.0-2-cp312-none-macosx_11_0_arm64.whl",  # a re-upload with a build tag
        "torch-2.10.0-cp314-cp314-macosx_14_0_arm64.whl",
        "torch-2.10.0-cp313-cp313t-macosx_14_0_arm64.whl",
        "torch-2.2.2-cp311-none-macosx_10_9_x86_64.whl",  # Intel: not an arm64 floor
        "torch-2.10.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    ]
    assert macos_floors(names) == ["3.12=11.0", "3.14=14.0"]
    assert macos_floors(["bitsandbytes-0.50.2-py3-none-macosx_14_0_arm64.whl"]) == ["py3=14.0"]


def test_companions_and_macos_floors_against_a_local_index(tmp_path: Path) -> None:
    """torchvision's rows: the torch its METADATA requires (None when it names none) and
    its macOS floor; bitsandbytes' row gets its macOS floor; --no-libraries keeps the
    library rows already written instead of downloading wheels."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(
        wheels,
        "torchvision",
        "0.26.0",
        {"torchvision/__init__.py": b""},
        tag="cp312-cp312-macosx_11_0_arm64",
        requires=("numpy", "torch==2.11.0"),
    )
    make_wheel(
        wheels,
        "torchvision",
        "0.29.2",
        {"torchvision/__init__.py": b""},
        tag="py3-none-macosx_14_0_arm64",
        requires=("torch>=2.14.0",),
    )
    make_wheel(
        wheels,
        "torchvision",
        "0.9.9",
        {"torchvision/__init__.py": b""},
        tag="py3-none-manylinux_2_28_x86_64",
        requires=("numpy",),
    )
    make_wheel(wheels, "bitsandbytes", "0.50.2", {"bitsandbytes/__init__.py": b""},
               tag="py3-none-macosx_14_0_arm64", requires=("torch<3,>=2.4",))  # fmt: skip
    kept = [{"bnb": "0.50.2", "platform": "macos-arm64", "file": "libbitsandbytes_cpu.dylib",
             "backend": "cpu"}]  # fmt: skip
    with serve_index(list(wheels.iterdir())) as (url, seen):
        d = Deriver(cache=tmp_path / "cache", session=requests.Session(), index=url)
        vision = toml_loads(d.companion_toml("torchvision", "0.1"))["release"]
        bnb = toml_loads(d.bnb_toml(libraries=False, kept=kept))
    assert not [p for p in seen if p.endswith(".whl") and "bitsandbytes" in p]  # no download
    rows = {r["version"]: r for r in vision}
    assert rows["0.26.0"]["torch"] == "==2.11.0" and rows["0.26.0"]["macos"] == ["3.12=11.0"]
    assert rows["0.29.2"]["torch"] == ">=2.14.0" and rows["0.29.2"]["macos"] == ["py3=14.0"]
    assert "torch" not in rows["0.9.9"] and "macos" not in rows["0.9.9"]
    assert bnb["release"][0]["macos"] == "14.0"
    assert bnb["library"] == kept
