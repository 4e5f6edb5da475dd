"""Read which GPU architectures are compiled into a CUDA binary.

A CUDA shared library carries its device code in *fatbinaries*: containers of
SASS (machine code for one ``sm_XY``) and PTX (portable code the driver can JIT
for any newer GPU). They sit in ELF sections (Linux) or PE sections (Windows):

* ``.nv_fatbin`` (PE: ``.nv_fatb``) holds the fatbinaries the CUDA runtime
  registers and runs. For device-linked libraries this is SASS only.
* ``__nv_relfatbin`` (PE: ``__nv_rel``) holds the fatbinaries of relocatable
  objects (``-rdc``). The runtime can JIT-link their PTX when no SASS fits, so
  their PTX extends coverage too (tested on an H100: see
  ``docs/hardware-validation.md``), but their SASS is never run directly.

Layout (the same information ``cuobjdump --list-elf/--list-ptx`` prints)::

    fatbin header: u32 magic 0xBA55ED50, u16 version, u16 header_size, u64 body_size
    entry:         u16 kind (1 = PTX, 2 = ELF/SASS), u16 flags, u32 header_size,
                   u64 payload_size, ..., u32 arch at offset 28 (90 for sm_90)

The parser is pure (:func:`parse_elf_kernels`, :func:`parse_pe_kernels` and
:func:`parse_fatbins` take bytes); :func:`read_kernels` opens a file.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision.core.cuda import Coverage, CudaVersion, covers

__all__ = [
    "FATBIN_MAGIC",
    "FatbinEntry",
    "KernelInventory",
    "describe_archs",
    "parse_binary_kernels",
    "parse_elf_kernels",
    "parse_fatbins",
    "parse_pe_kernels",
    "read_kernels",
]

FATBIN_MAGIC: Final = 0xBA55ED50
_KIND_PTX: Final = 1
_KIND_SASS: Final = 2
_RUNTIME_SECTIONS: Final = (".nv_fatbin", ".nv_fatb")
_RELOCATABLE_SECTIONS: Final = ("__nv_relfatbin", "__nv_rel")
_ENTRY_MIN_HEADER: Final = 32
_HEADER_SIZE: Final = 16
# bounds that no real library comes near, so that a crafted file cannot make the scan
# walk gigabytes of padding or collect millions of entries
_MAX_PADDING: Final = 64 * 1024
_MAX_ENTRIES: Final = 1 << 16
_MAX_SECTIONS: Final = 1 << 16


def _unpack(fmt: str, data: bytes | memoryview | mmap.mmap, offset: int) -> tuple[int, ...]:
    """struct.unpack_from, with a truncated or out-of-range read as ValueError."""
    if offset < 0:
        raise ValueError(f"negative offset {offset}")
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error as exc:
        raise ValueError(f"truncated binary: {exc}") from exc


@dataclass(frozen=True, kw_only=True, slots=True)
class FatbinEntry:
    """One code object inside a fatbinary."""

    kind: str  # "sass", "ptx" or "other"
    arch: int  # 90 for sm_90 / compute_90
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelInventory:
    """The architectures found in one binary, section by section.

    ``sass`` and ``ptx`` come from the runtime section; ``rel_sass`` and
    ``rel_ptx`` from relocatable objects. ``format`` is ``elf``, ``pe`` or
    ``unknown``; ``fatbins`` counts containers found.
    """

    format: str
    sass: tuple[int, ...]
    ptx: tuple[int, ...]
    rel_sass: tuple[int, ...] = ()
    rel_ptx: tuple[int, ...] = ()
    fatbins: int = 0

    @property
    def has_device_code(self) -> bool:
        return bool(self.sass or self.ptx or self.rel_ptx)

    def covers(
        self,
        major: int,
        minor: int,
        *,
        toolkit: CudaVersion | None = None,
        driver_cuda: CudaVersion | None = None,
    ) -> Coverage | None:
        """How this binary runs on a GPU of compute capability ``major.minor``
        (:func:`bnb_provision.core.cuda.covers`; relocatable PTX counts, where the driver
        (``driver_cuda``) is as new as the ``toolkit`` that built it)."""
        ptx = (*self.ptx, *self.rel_ptx)
        return covers(
            (major, minor), sass=self.sass, ptx=ptx, toolkit=toolkit, driver_cuda=driver_cuda
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "sass": list(self.sass),
            "ptx": list(self.ptx),
            "relocatable_sass": list(self.rel_sass),
            "relocatable_ptx": list(self.rel_ptx),
            "fatbins": self.fatbins,
        }


def parse_fatbins(data: bytes | memoryview | mmap.mmap) -> tuple[int, list[FatbinEntry]]:
    """Parse every fatbinary laid end to end in ``data`` (one section's bytes).

    Returns the number of fatbinaries and their entries. Padding between
    containers is skipped; anything that is not a fatbinary ends the scan.
    """
    entries: list[FatbinEntry] = []
    count = 0
    pos = padding = 0
    end = len(data)
    while pos + _HEADER_SIZE <= end and len(entries) < _MAX_ENTRIES:
        (magic,) = _unpack("<I", data, pos)
        if magic != FATBIN_MAGIC:
            # containers are 8-byte aligned; skip (a little) zero padding between them
            if data[pos : pos + 8] == b"\0" * 8 and padding < _MAX_PADDING:
                pos += 8
                padding += 8
                continue
            break
        padding = 0
        _version, header_size, body_size = _unpack("<HHQ", data, pos + 4)
        if header_size < _HEADER_SIZE or pos + header_size + body_size > end:
            break
        count += 1
        body_end = pos + header_size + body_size
        _entries(data, pos + header_size, body_end, entries)
        pos = body_end
    return count, entries


def _entries(
    data: bytes | memoryview | mmap.mmap, entry: int, body_end: int, out: list[FatbinEntry]
) -> None:
    """The code objects of one fatbinary's body, appended to ``out``."""
    while entry + _ENTRY_MIN_HEADER <= body_end and len(out) < _MAX_ENTRIES:
        kind, _flags, ehdr, payload = _unpack("<HHIQ", data, entry)
        (arch,) = _unpack("<I", data, entry + 28)
        if ehdr < _ENTRY_MIN_HEADER:
            break
        name = {_KIND_PTX: "ptx", _KIND_SASS: "sass"}.get(kind, "other")
        out.append(FatbinEntry(kind=name, arch=arch, size=payload))
        entry += ehdr + payload


def _split(entries: list[FatbinEntry]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    sass = tuple(sorted({e.arch for e in entries if e.kind == "sass"}))
    ptx = tuple(sorted({e.arch for e in entries if e.kind == "ptx"}))
    return sass, ptx


def _inventory(fmt: str, sections: dict[str, memoryview | bytes]) -> KernelInventory:
    run_entries: list[FatbinEntry] = []
    rel_entries: list[FatbinEntry] = []
    total = 0
    for name, blob in sections.items():
        n, found = parse_fatbins(blob)
        total += n
        if name in _RUNTIME_SECTIONS:
            run_entries += found
        elif name in _RELOCATABLE_SECTIONS:
            rel_entries += found
    sass, ptx = _split(run_entries)
    rel_sass, rel_ptx = _split(rel_entries)
    return KernelInventory(
        format=fmt, sass=sass, ptx=ptx, rel_sass=rel_sass, rel_ptx=rel_ptx, fatbins=total
    )


def parse_elf_kernels(data: bytes | memoryview | mmap.mmap) -> KernelInventory:
    """Read the fatbin sections of an ELF file (32/64-bit, either byte order).

    Raises ValueError for a file that is not ELF or whose headers point outside it.
    """
    if len(data) < 0x40 or bytes(data[:4]) != b"\x7fELF":  # noqa: PLR2004 - ELF header size
        raise ValueError("not an ELF file")
    is64 = data[4] == 2  # noqa: PLR2004 - ELFCLASS64
    bo = "<" if data[5] == 1 else ">"
    if is64:
        (shoff,) = _unpack(bo + "Q", data, 0x28)
        shentsize, shnum, shstrndx = _unpack(bo + "HHH", data, 0x3A)
        sh_fmt = bo + "IIQQQQIIQQ"
    else:
        (shoff,) = _unpack(bo + "I", data, 0x20)
        shentsize, shnum, shstrndx = _unpack(bo + "HHH", data, 0x2E)
        sh_fmt = bo + "IIIIIIIIII"
    if shoff == 0 or shnum == 0 or shoff + shnum * shentsize > len(data):
        return KernelInventory(format="elf", sass=(), ptx=())
    if shentsize < struct.calcsize(sh_fmt) or shstrndx >= shnum:
        raise ValueError("ELF section headers are malformed")
    headers = [_unpack(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    names = bytes(data[str_off : str_off + min(str_size, 1 << 20)])
    wanted = {*_RUNTIME_SECTIONS, *_RELOCATABLE_SECTIONS}
    view = memoryview(data) if not isinstance(data, memoryview) else data
    sections: dict[str, memoryview | bytes] = {}
    for h in headers:
        name_off, sh_type, offset, size = h[0], h[1], h[4], h[5]
        name = names[name_off : names.find(b"\0", name_off)].decode("ascii", "replace")
        if name in wanted and sh_type != 8:  # noqa: PLR2004 - SHT_NOBITS holds no bytes
            sections[name] = view[offset : offset + size]
    return _inventory("elf", sections)


def parse_pe_kernels(data: bytes | memoryview | mmap.mmap) -> KernelInventory:
    """Read the fatbin sections of a Windows PE file (a ``.dll``).

    Raises ValueError for a file that is not PE or whose headers point outside it.
    """
    if len(data) < 0x40 or bytes(data[:2]) != b"MZ":  # noqa: PLR2004 - DOS header size
        raise ValueError("not a PE file")
    (pe_off,) = _unpack("<I", data, 0x3C)
    if bytes(data[pe_off : pe_off + 4]) != b"PE\0\0":
        raise ValueError("not a PE file")
    (nsect,) = _unpack("<H", data, pe_off + 6)
    (opt_size,) = _unpack("<H", data, pe_off + 20)
    table = pe_off + 24 + opt_size
    view = memoryview(data) if not isinstance(data, memoryview) else data
    sections: dict[str, memoryview | bytes] = {}
    for i in range(min(nsect, _MAX_SECTIONS)):
        base = table + 40 * i
        name = bytes(data[base : base + 8]).rstrip(b"\0").decode("ascii", "replace")
        vsize, _vaddr, raw_size, raw_ptr = _unpack("<IIII", data, base + 8)
        if name in (*_RUNTIME_SECTIONS, *_RELOCATABLE_SECTIONS):
            size = min(vsize or raw_size, raw_size)
            sections[name] = view[raw_ptr : raw_ptr + size]
    return _inventory("pe", sections)


def parse_binary_kernels(data: bytes | memoryview | mmap.mmap) -> KernelInventory:
    """Dispatch on the file's magic: ELF or PE; anything else has no kernels."""
    head = bytes(data[:4])
    if head == b"\x7fELF":
        return parse_elf_kernels(data)
    if head[:2] == b"MZ":
        return parse_pe_kernels(data)
    return KernelInventory(format="unknown", sass=(), ptx=())


def describe_archs(sass: tuple[int, ...], ptx: tuple[int, ...] = ()) -> str:
    """``sm_75 sm_80 compute_80``."""
    parts = [f"sm_{a}" for a in sass] + [f"compute_{a}" for a in ptx]
    return " ".join(parts) if parts else "no device code"


def read_kernels(path: str | Path) -> KernelInventory:
    """Read the kernel inventory of a shared library on disk (memory-mapped)."""
    with Path(path).open("rb") as fh:
        size = fh.seek(0, 2)
        if size < 64:  # noqa: PLR2004 - smaller than any ELF/PE header
            return KernelInventory(format="unknown", sass=(), ptx=())
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                return parse_binary_kernels(view)
            finally:
                view.release()
