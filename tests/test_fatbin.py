from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bnb_provision.detect.fatbin import (
    FATBIN_MAGIC,
    KernelInventory,
    parse_binary_kernels,
    parse_fatbins,
    parse_pe_kernels,
    read_kernels,
)

KERNELS = Path(__file__).parent / "fixtures" / "kernels"


def test_whole_program_library_has_sass_and_ptx_in_runtime_section() -> None:
    k = read_kernels(KERNELS / "whole.so")
    assert k.format == "elf"
    assert k.sass == (75, 90)
    assert k.ptx == (90,)
    assert k.rel_sass == ()
    assert k.rel_ptx == ()


def test_relocatable_library_keeps_sections_apart() -> None:
    # built like bitsandbytes: -rdc + device link; PTX only in __nv_relfatbin
    k = read_kernels(KERNELS / "rdc.so")
    assert 80 in k.sass and k.ptx == ()
    assert k.rel_sass == (80,)
    assert k.rel_ptx == (80,)


@pytest.mark.parametrize(
    ("cc", "expected"),
    [
        ((7, 5), "sass"),
        ((8, 6), None),
        ((9, 0), "sass"),
        ((10, 0), "ptx"),
        ((12, 0), "ptx"),
        ((7, 0), None),
        ((6, 1), None),
    ],
)
def test_coverage_rules(cc: tuple[int, int], expected: str | None) -> None:
    k = read_kernels(KERNELS / "whole.so")  # sm_75, sm_90, compute_90
    assert k.covers(*cc) == expected


def test_relocatable_ptx_counts_for_newer_gpus() -> None:
    k = read_kernels(KERNELS / "rdc.so")
    assert k.covers(9, 0) == "ptx"  # JIT-linked from __nv_relfatbin (seen on an H100)
    assert k.covers(8, 6) == "sass"


def _runtime_section(path: Path) -> bytes:
    """The raw bytes of .nv_fatbin, cut out with our own ELF reader's offsets."""
    data = path.read_bytes()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = data[hdrs[shstrndx][4] :]
    for h in hdrs:
        if names[h[0] :].split(b"\0", 1)[0] == b".nv_fatbin":
            return data[h[4] : h[4] + h[5]]
    raise AssertionError("no .nv_fatbin")


def _pe_with_section(name: bytes, blob: bytes) -> bytes:
    """A minimal PE image with one section holding ``blob`` (as a DLL would)."""
    pe_off = 0x40
    opt_size = 0xF0
    table = pe_off + 24 + opt_size
    raw_ptr = 0x400
    head = bytearray(raw_ptr)
    head[0:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, pe_off)
    head[pe_off : pe_off + 4] = b"PE\0\0"
    struct.pack_into("<HH", head, pe_off + 4, 0x8664, 1)
    struct.pack_into("<H", head, pe_off + 20, opt_size)
    head[table : table + 8] = name.ljust(8, b"\0")
    struct.pack_into("<IIII", head, table + 8, len(blob), 0x1000, len(blob), raw_ptr)
    return bytes(head) + blob


def test_pe_reader_on_a_real_fatbin() -> None:
    blob = _runtime_section(KERNELS / "whole.so")
    k = parse_pe_kernels(_pe_with_section(b".nv_fatb", blob))
    assert (k.format, k.sass, k.ptx) == ("pe", (75, 90), (90,))
    assert parse_binary_kernels(_pe_with_section(b".nv_fatb", blob)).sass == (75, 90)


def test_fatbin_parser_stops_on_garbage() -> None:
    blob = _runtime_section(KERNELS / "whole.so")
    count, entries = parse_fatbins(blob + b"\x01" * 64)
    assert count >= 1 and {e.kind for e in entries} == {"sass", "ptx"}
    assert parse_fatbins(b"")[0] == 0
    # a header that claims more bytes than exist is ignored
    bad = struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, 10_000)
    assert parse_fatbins(bad) == (0, [])


def test_non_binaries_have_no_kernels(tmp_path: Path) -> None:
    text = tmp_path / "x.so"
    text.write_bytes(b"not a binary" * 20)
    assert read_kernels(text) == KernelInventory(format="unknown", sass=(), ptx=())
    tiny = tmp_path / "tiny.so"
    tiny.write_bytes(b"\x7fELF")
    assert read_kernels(tiny).format == "unknown"
    with pytest.raises(ValueError, match="not a PE"):
        parse_pe_kernels(b"ELF" * 100)


def test_cpu_only_elf_has_no_device_code() -> None:
    import ctypes.util

    libm = ctypes.util.find_library("m")
    candidates = [Path("/lib/x86_64-linux-gnu") / (libm or ""), Path("/usr/lib64") / (libm or "")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        pytest.skip("no libm found")
    k = read_kernels(path)
    assert k.format == "elf" and not k.has_device_code


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_library_built_now_with_nvcc(tmp_path: Path) -> None:
    src = tmp_path / "k.cu"
    src.write_text('extern "C" __global__ void k(float *x) { x[threadIdx.x] *= 2.0f; }\n')
    out = tmp_path / "libk.so"
    subprocess.run(
        [
            "nvcc",
            "-cudart",
            "shared",
            "-Xcompiler",
            "-fPIC",
            "-shared",
            "-gencode",
            "arch=compute_80,code=sm_80",
            "-gencode",
            "arch=compute_86,code=sm_86",
            "-gencode",
            "arch=compute_120,code=compute_120",
            str(src),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    k = read_kernels(out)
    assert k.sass == (80, 86)
    assert k.ptx == (120,)
    assert k.covers(8, 9) == "sass" and k.covers(12, 1) == "ptx" and k.covers(7, 5) is None


def test_a_crafted_sparse_2gb_section_is_read_in_bounded_time(tmp_path: Path) -> None:
    """issue 12: a .nv_fatbin section header claiming 2 GB of (sparse, zero) bytes took 57 s
    and 2 GB of memory; the padding between containers is now bounded."""
    import time

    from bnb_provision.detect.fatbin import read_kernels

    data = bytearray((KERNELS / "whole.so").read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    crafted_sections = 0
    for i in range(shnum):
        base = shoff + i * shentsize
        name_off = struct.unpack_from("<I", data, base)[0]
        name = bytes(data[str_off + name_off : data.index(b"\0", str_off + name_off)])
        if name == b".nv_fatbin":
            struct.pack_into("<QQ", data, base + 24, len(data), 2 << 30)  # offset, size
            crafted_sections += 1
    assert crafted_sections == 1
    crafted = tmp_path / "crafted.so"
    with crafted.open("wb") as f:
        f.write(data)
        f.truncate(len(data) + (2 << 30))  # sparse: no disk, no memory
    start = time.monotonic()
    inventory = read_kernels(crafted)
    assert time.monotonic() - start < 5
    assert inventory.sass == ()
