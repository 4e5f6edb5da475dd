"""Read which AMD GPU targets (``gfx``) are compiled into a HIP binary.

A HIP shared library carries its device code as *offload bundles* in one ELF section,
``.hip_fatbin`` (PE: ``.hip_fat``), laid out by ``clang-offload-bundler``::

    bundle:     24-byte magic "__CLANG_OFFLOAD_BUNDLE__", u64 entry count, then per entry
                u64 offset, u64 size, u64 id length, id ("hipv4-amdgcn-amd-amdhsa--gfx942",
                "host-x86_64-unknown-linux-gnu-")
    compressed: magic "CCOB", u16 version, u16 method (0 zlib, 1 zstd), then
                v1: u32 uncompressed size, u64 hash
                v2: u32 total size, u32 uncompressed size, u64 hash
                v3: u64 total size, u64 uncompressed size, u64 hash
                and the compressed bytes of one bundle (``--offload-compress``)

A device entry's id names its target: ``gfx90a``, or ``gfx90a:xnack-`` when it was built
for one mode of a feature. Only the bundle's header is decompressed, never the code.

The parser is pure (:func:`parse_hip_targets` takes bytes); :func:`read_hip_targets`
opens a file. zstd needs Python 3.14's ``compression.zstd`` or the ``zstandard``
package; without either a zstd bundle is a ValueError that says so.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "BUNDLE_MAGIC",
    "COMPRESSED_MAGIC",
    "HipInventory",
    "gfx_sort_key",
    "parse_bundle_ids",
    "parse_hip_targets",
    "read_hip_targets",
]

BUNDLE_MAGIC: Final = b"__CLANG_OFFLOAD_BUNDLE__"
COMPRESSED_MAGIC: Final = b"CCOB"
_SECTIONS: Final = (".hip_fatbin", ".hip_fat")
_DEVICE_PREFIX: Final = re.compile(r"^hipv4-amdgcn-amd-amdhsa-[^-]*-")
_TARGET_RE: Final = re.compile(r"gfx[0-9a-f]{3,5}(?::[a-z0-9_-]+[+-])*")
_HEAD_BYTES: Final = 1 << 20  # a bundle header with hundreds of entries fits many times
_MAX_ENTRIES: Final = 4096
_MAX_BUNDLES: Final = 4096
_MAX_ID: Final = 1024
_ZLIB: Final = 0
_ZSTD: Final = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class HipInventory:
    """The AMD GPU targets found in one binary: ``gfx942``, ``gfx90a:xnack-``, sorted."""

    format: str  # elf | pe | unknown
    targets: tuple[str, ...]
    bundles: int = 0

    @property
    def processors(self) -> tuple[str, ...]:
        """The targets without their feature modes (``gfx90a:xnack-`` -> ``gfx90a``)."""
        return tuple(sorted({t.split(":")[0] for t in self.targets}, key=gfx_sort_key))


def gfx_sort_key(target: str) -> tuple[int, str]:
    """``gfx908`` before ``gfx90a`` before ``gfx1030``: by the length of the processor name,
    then by name."""
    return len(target.split(":", maxsplit=1)[0]), target


def parse_bundle_ids(data: bytes) -> list[str]:
    """The entry ids of one uncompressed bundle (its start is enough). Raises ValueError."""
    return _bundle(data)[0]


def _bundle(data: bytes) -> tuple[list[str], int]:
    """The entry ids of one uncompressed bundle and where its last entry ends."""
    if not data.startswith(BUNDLE_MAGIC):
        raise ValueError("not a clang offload bundle")
    pos = len(BUNDLE_MAGIC)
    (count,) = _unpack("<Q", data, pos)
    if count > _MAX_ENTRIES:
        raise ValueError(f"offload bundle claims {count} entries")
    pos += 8
    ids, end = [], pos
    for _ in range(count):
        offset, size, length = _unpack("<QQQ", data, pos)
        pos += 24
        if length > _MAX_ID or pos + length > len(data):
            raise ValueError("offload bundle entry id is cut off or too long")
        ids.append(data[pos : pos + length].decode("ascii", "replace"))
        pos += length
        end = max(end, pos, offset + size)
    return ids, end


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except (struct.error, OverflowError) as exc:  # OverflowError: an offset past any file
        raise ValueError(f"truncated offload bundle: {exc}") from exc


def _zstd_head(payload: bytes, size: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:  # Python 3.14+
        try:
            out: bytes = zstd.ZstdDecompressor().decompress(payload, max_length=size)
        except zstd.ZstdError as exc:
            raise ValueError(f"bad zstd data in an offload bundle: {exc}") from exc
        return out
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ValueError(
            "the offload bundle is zstd-compressed: install the 'zstandard' package "
            "(pip install zstandard) or use Python 3.14+"
        ) from None
    try:
        with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
            head: bytes = reader.read(size)
    except zstandard.ZstdError as exc:
        raise ValueError(f"bad zstd data in an offload bundle: {exc}") from exc
    return head


def _compressed_head(data: bytes) -> tuple[bytes, int]:
    """The start of the bundle a ``CCOB`` block holds, and the block's length (0: unknown)."""
    version, method = _unpack("<HH", data, 4)
    if version == 1:
        (usize,) = _unpack("<I", data, 8)
        header, total = 20, 0
    elif version == 2:  # noqa: PLR2004 - the format's version numbers
        total, usize = _unpack("<II", data, 8)
        header = 24
    elif version == 3:  # noqa: PLR2004
        total, usize = _unpack("<QQ", data, 8)
        header = 32
    else:
        raise ValueError(f"compressed offload bundle version {version} is not known")
    payload = data[header : total or None] if total <= len(data) else data[header:]
    want = min(usize, _HEAD_BYTES)
    if method == _ZLIB:
        try:
            head = zlib.decompressobj().decompress(payload, want)
        except zlib.error as exc:
            raise ValueError(f"bad zlib data in an offload bundle: {exc}") from exc
    elif method == _ZSTD:
        head = _zstd_head(payload, want)
    else:
        raise ValueError(f"compressed offload bundle method {method} is not known")
    return head, total


def _scan(section: bytes) -> tuple[int, list[str]]:
    """Every bundle in a section's bytes: how many, and their entry ids."""
    ids: list[str] = []
    count = pos = 0
    while count < _MAX_BUNDLES:
        found = [
            i
            for i in (section.find(BUNDLE_MAGIC, pos), section.find(COMPRESSED_MAGIC, pos))
            if i >= 0
        ]
        if not found:
            break
        at = min(found)
        if section.startswith(COMPRESSED_MAGIC, at):
            head, total = _compressed_head(section[at:])
            ids += parse_bundle_ids(head)
            pos = at + max(total, len(COMPRESSED_MAGIC))
        else:
            entries, end = _bundle(section[at:])
            ids += entries
            pos = at + max(end, len(BUNDLE_MAGIC))
        count += 1
    return count, ids


def _targets(ids: list[str]) -> tuple[str, ...]:
    out = set()
    for entry in ids:
        rest = _DEVICE_PREFIX.sub("", entry)
        if rest != entry and _TARGET_RE.fullmatch(rest):
            out.add(rest)
    return tuple(sorted(out, key=gfx_sort_key))


def _elf_sections(data: bytes) -> list[bytes]:
    if len(data) < 0x40:  # noqa: PLR2004 - the ELF header's size
        raise ValueError("not an ELF file")
    bo = "<" if data[5] == 1 else ">"
    if data[4] != 2:  # noqa: PLR2004 - ELFCLASS64: HIP targets 64-bit hosts only
        return []
    (shoff,) = _unpack(bo + "Q", data, 0x28)
    shentsize, shnum, shstrndx = _unpack(bo + "HHH", data, 0x3A)
    if shoff == 0 or shnum == 0 or shstrndx >= shnum or shentsize < 64:  # noqa: PLR2004
        return []
    headers = [_unpack(bo + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[str_off : str_off + min(str_size, 1 << 20)]
    out = []
    for h in headers:
        name = names[h[0] : names.find(b"\0", h[0])].decode("ascii", "replace")
        if name in _SECTIONS and h[1] != 8:  # noqa: PLR2004 - SHT_NOBITS holds no bytes
            out.append(data[h[4] : h[4] + h[5]])
    return out


def _pe_sections(data: bytes) -> list[bytes]:
    (pe_off,) = _unpack("<I", data, 0x3C)
    if data[pe_off : pe_off + 4] != b"PE\0\0":
        raise ValueError("not a PE file")
    (nsect,) = _unpack("<H", data, pe_off + 6)
    (opt_size,) = _unpack("<H", data, pe_off + 20)
    table = pe_off + 24 + opt_size
    out = []
    for i in range(min(nsect, 96)):
        base = table + 40 * i
        name = data[base : base + 8].rstrip(b"\0").decode("ascii", "replace")
        vsize, _vaddr, raw_size, raw_ptr = _unpack("<IIII", data, base + 8)
        if name in _SECTIONS:
            out.append(data[raw_ptr : raw_ptr + min(vsize or raw_size, raw_size)])
    return out


def parse_hip_targets(data: bytes) -> HipInventory:
    """The gfx targets in a binary's HIP sections (ELF or PE; anything else has none).

    Raises ValueError for a malformed file or bundle.
    """
    head = data[:4]
    if head == b"\x7fELF":
        fmt, sections = "elf", _elf_sections(data)
    elif head[:2] == b"MZ":
        fmt, sections = "pe", _pe_sections(data)
    else:
        return HipInventory(format="unknown", targets=())
    bundles, ids = 0, []
    for section in sections:
        n, found = _scan(section)
        bundles += n
        ids += found
    return HipInventory(format=fmt, targets=_targets(ids), bundles=bundles)


def read_hip_targets(path: str | Path) -> HipInventory:
    """The gfx targets of a shared library on disk."""
    data = Path(path).read_bytes()
    if len(data) < 64:  # noqa: PLR2004 - smaller than any ELF/PE header
        return HipInventory(format="unknown", targets=())
    return parse_hip_targets(data)
