"""The HIP offload-bundle reader: gfx targets from binaries clang really wrote
(tests/fixtures/hip/build.sh), every compressed layout, PE and ELF, and malformed input."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bnb_provision.detect.hipbundle import (
    BUNDLE_MAGIC,
    gfx_sort_key,
    parse_bundle_ids,
    parse_hip_targets,
    read_hip_targets,
)

HIP = Path(__file__).parent / "fixtures" / "hip"
TARGETS = ("gfx90a", "gfx942:xnack-", "gfx1100")


def _bundle_of(path: Path) -> bytes:
    """The uncompressed bundle clang wrote into plain.so's .hip_fatbin."""
    data = path.read_bytes()
    at = data.index(BUNDLE_MAGIC)
    return data[at : at + 0x6508]


def _elf_with(blob: bytes) -> bytes:
    """plain.so with its .hip_fatbin bytes replaced by ``blob`` (same length or shorter)."""
    data = bytearray((HIP / "plain.so").read_bytes())
    at = data.index(BUNDLE_MAGIC)
    data[at : at + 0x6508] = blob.ljust(0x6508, b"\0")
    return bytes(data)


def _pe_with_section(name: bytes, blob: bytes) -> bytes:
    """A minimal PE image with one section holding ``blob`` (as a DLL would)."""
    pe_off, opt_size, raw_ptr = 0x40, 0xF0, 0x400
    table = pe_off + 24 + opt_size
    head = bytearray(raw_ptr)
    head[0:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, pe_off)
    head[pe_off : pe_off + 4] = b"PE\0\0"
    struct.pack_into("<HH", head, pe_off + 4, 0x8664, 1)
    struct.pack_into("<H", head, pe_off + 20, opt_size)
    head[table : table + 8] = name.ljust(8, b"\0")
    struct.pack_into("<IIII", head, table + 8, len(blob), 0x1000, len(blob), raw_ptr)
    return bytes(head) + blob


def _ccob(bundle: bytes, *, version: int, method: int, payload: bytes) -> bytes:
    head = b"CCOB" + struct.pack("<HH", version, method)
    if version == 1:
        return head + struct.pack("<IQ", len(bundle), 0) + payload
    if version == 2:
        return head + struct.pack("<IIQ", 24 + len(payload), len(bundle), 0) + payload
    return head + struct.pack("<QQQ", 32 + len(payload), len(bundle), 0) + payload


def test_uncompressed_bundle_from_clang() -> None:
    inv = read_hip_targets(HIP / "plain.so")
    assert inv.format == "elf"
    assert inv.targets == TARGETS
    assert inv.processors == ("gfx90a", "gfx942", "gfx1100")
    assert inv.bundles == 1


def test_zstd_bundle_from_clang() -> None:
    pytest.importorskip("zstandard")
    data = (HIP / "zstd.so").read_bytes()
    assert data[data.index(b"CCOB") + 4] == 2  # clang 19 writes version 2
    assert read_hip_targets(HIP / "zstd.so").targets == TARGETS


@pytest.mark.parametrize("version", [1, 2, 3])
def test_zlib_bundles_of_each_header_version(version: int) -> None:
    bundle = _bundle_of(HIP / "plain.so")
    blob = _ccob(bundle, version=version, method=0, payload=zlib.compress(bundle))
    assert parse_hip_targets(_elf_with(blob)).targets == TARGETS


def test_zstd_version_3_header() -> None:
    zstandard = pytest.importorskip("zstandard")
    bundle = _bundle_of(HIP / "plain.so")
    payload = zstandard.ZstdCompressor().compress(bundle)
    blob = _ccob(bundle, version=3, method=1, payload=payload)
    two = _ccob(bundle, version=2, method=1, payload=payload)
    assert parse_hip_targets(_elf_with(blob + two)).targets == TARGETS
    assert parse_hip_targets(_elf_with(blob + two)).bundles == 2


def test_windows_dll_section() -> None:
    bundle = _bundle_of(HIP / "plain.so")
    inv = parse_hip_targets(_pe_with_section(b".hip_fat", bundle))
    assert inv.format == "pe"
    assert inv.targets == TARGETS


def test_a_cuda_library_has_no_gfx_targets() -> None:
    inv = read_hip_targets(Path(__file__).parent / "fixtures" / "kernels" / "whole.so")
    assert inv.targets == ()
    assert inv.bundles == 0


def test_not_a_binary() -> None:
    assert parse_hip_targets(b"hello world, no binary here" * 4).format == "unknown"


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"CCOB" + struct.pack("<HH", 9, 0) + b"\0" * 40, "version 9"),
        (b"CCOB" + struct.pack("<HHIQ", 1, 7, 10, 0) + b"\0" * 40, "method 7"),
        (b"CCOB" + struct.pack("<HHIQ", 1, 0, 10, 0) + b"not zlib data", "bad zlib"),
        (BUNDLE_MAGIC + struct.pack("<Q", 1 << 40), "claims"),
        (BUNDLE_MAGIC + struct.pack("<QQQQ", 1, 0, 0, 5000), "cut off"),
    ],
)
def test_malformed_bundles(blob: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hip_targets(_elf_with(blob))


def test_zstd_without_a_decompressor(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_zstd(name: str, *args: object, **kwargs: object) -> object:
        if name in ("zstandard", "compression"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_zstd)
    with pytest.raises(ValueError, match="install the 'zstandard' package"):
        read_hip_targets(HIP / "zstd.so")


def test_entry_ids_and_sort_order() -> None:
    ids = parse_bundle_ids(_bundle_of(HIP / "plain.so"))
    assert ids[0] == "host-x86_64-unknown-linux--"
    assert "hipv4-amdgcn-amd-amdhsa--gfx942:xnack-" in ids
    assert sorted(["gfx1030", "gfx90a", "gfx908"], key=gfx_sort_key) == [
        "gfx908",
        "gfx90a",
        "gfx1030",
    ]


_REAL = [(HIP / n).read_bytes() for n in ("plain.so", "zstd.so")]


@pytest.mark.fuzz
@given(st.sampled_from(_REAL), st.integers(0, 40_000), st.binary(min_size=1, max_size=64))
@example(_REAL[0], 5, b"\x00")  # long run: an entry offset past any file, OverflowError
def test_reader_is_total_on_damaged_binaries(data: bytes, where: int, junk: bytes) -> None:
    at = where % len(data)
    damaged = data[:at] + junk + data[at + len(junk) :]
    with contextlib.suppress(ValueError):
        inv = parse_hip_targets(damaged)
        assert all(t.startswith("gfx") for t in inv.targets)


@pytest.mark.fuzz
@given(st.binary(max_size=600))
def test_reader_is_total_on_any_bytes(data: bytes) -> None:
    for blob in (data, _elf_with(data), _pe_with_section(b".hip_fat", data)):
        with contextlib.suppress(ValueError):
            parse_hip_targets(blob)
