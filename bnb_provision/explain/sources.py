"""Python source files out of release files on PyPI, without downloading whole wheels.

A wheel is a zip: its central directory sits at the end, so two HTTP range requests
(the tail, then the directory if the tail does not hold it) list every member with its
offset, and one more request per cluster of members fetches just the ``.py`` files
wanted. An sdist (a tarball, read only where a release has no wheel) is downloaded whole.

What was read is cached per file, keyed by the file's sha256 (``<cache>/<sha256>.json``:
the member names and the texts fetched so far), so a re-run downloads nothing it has.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin

import requests
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bnb_provision.core.files import write_atomic

__all__ = ["PYPI", "Log", "PypiFiles", "ReleaseFile"]

PYPI: Final = "https://pypi.org"
TIMEOUT: Final = 60
_TAIL: Final = 65536
_MERGE_GAP: Final = 512 * 1024  # members closer than this come in one request
_LOCAL_EXTRA: Final = 1024  # room for a local header's extra field
_STORED, _DEFLATED = 0, 8
_HTTP_PARTIAL: Final = 206
_U32: Final = 0xFFFFFFFF
Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleaseFile:
    """One file of one release on PyPI."""

    project: str
    version: Version
    filename: str
    url: str
    sha256: str
    size: int
    yanked: bool

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def platform_tags(self) -> frozenset[str]:
        if not self.is_wheel:
            return frozenset()
        return frozenset(t.platform for t in parse_wheel_filename(self.filename)[3])


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    method: int
    csize: int
    offset: int


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def _eocd(tail: bytes, tail_start: int) -> tuple[int, int]:
    """(central directory offset, size) from the end of a zip, ZIP64 included."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0:
        raise ValueError("no end-of-central-directory record (not a zip file?)")
    cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
    if _U32 in {cd_size, cd_offset}:
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0:
            raise ValueError("ZIP64 end record announced but its locator is missing")
        (z64_at,) = struct.unpack_from("<Q", tail, loc + 8)
        rec = z64_at - tail_start
        if rec < 0:
            raise ValueError("ZIP64 end record outside the tail read")
        cd_size, cd_offset = struct.unpack_from("<QQ", tail, rec + 40)
    return cd_offset, cd_size


def _zip64_extra(extra: bytes, sizes: tuple[int, int, int]) -> tuple[int, int]:
    """(compressed size, local header offset) where the 32-bit fields overflowed: the
    ZIP64 extra field holds, in order, each of usize, csize, offset that is 0xFFFFFFFF."""
    usize, csize, offset = sizes
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            if usize == _U32:
                next(values, None)
            if csize == _U32:
                csize = next(values, csize)
            if offset == _U32:
                offset = next(values, offset)
            break
        pos += 4 + length
    return csize, offset


def _entries(cd: bytes) -> list[_Entry]:
    out: list[_Entry] = []
    pos = 0
    while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        (method,) = struct.unpack_from("<H", cd, pos + 10)
        csize, usize = struct.unpack_from("<II", cd, pos + 20)
        nlen, xlen, clen = struct.unpack_from("<HHH", cd, pos + 28)
        (offset,) = struct.unpack_from("<I", cd, pos + 42)
        name = cd[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
        if _U32 in {csize, usize, offset}:
            extra = cd[pos + 46 + nlen : pos + 46 + nlen + xlen]
            csize, offset = _zip64_extra(extra, (usize, csize, offset))
        out.append(_Entry(name, method, csize, offset))
        pos += 46 + nlen + xlen + clen
    return out


def _inflate(entry: _Entry, blob: bytes, blob_start: int) -> str:
    at = entry.offset - blob_start
    if blob[at : at + 4] != b"PK\x03\x04":
        raise ValueError(f"{entry.name}: no local file header at its offset")
    nlen, xlen = struct.unpack_from("<HH", blob, at + 26)
    start = at + 30 + nlen + xlen
    data = blob[start : start + entry.csize]
    if len(data) != entry.csize:
        raise ValueError(f"{entry.name}: the range read is short")
    if entry.method == _DEFLATED:
        data = zlib.decompressobj(-15).decompress(data)
    elif entry.method != _STORED:
        raise ValueError(f"{entry.name}: zip method {entry.method} is not supported")
    return data.decode("utf-8", "replace")


def _clusters(entries: list[_Entry]) -> list[list[_Entry]]:
    """Members grouped so that each group is one range request."""
    groups: list[list[_Entry]] = []
    end = -1
    for e in sorted(entries, key=lambda e: e.offset):
        if groups and e.offset - end <= _MERGE_GAP:
            groups[-1].append(e)
        else:
            groups.append([e])
        end = max(end, e.offset + 30 + _LOCAL_EXTRA + e.csize + len(e.name.encode()))
    return groups


class PypiFiles:
    """Release files of PyPI projects and the source members inside them (cached)."""

    def __init__(self, *, cache: Path, session: requests.Session, log: Log) -> None:
        self.cache = cache
        self.session = session
        self.log = log

    def releases(self, project: str) -> dict[Version, list[ReleaseFile]]:
        """Every release of ``project`` with its files (PEP 691 JSON simple API)."""
        url = f"{PYPI}/simple/{project}/"
        resp = self.session.get(
            url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=TIMEOUT
        )
        resp.raise_for_status()
        out: dict[Version, list[ReleaseFile]] = {}
        for f in resp.json()["files"]:
            version = _version_of(f["filename"])
            if version is None:
                continue
            out.setdefault(version, []).append(
                ReleaseFile(
                    project=project,
                    version=version,
                    filename=f["filename"],
                    url=urljoin(url, f["url"]),
                    sha256=f["hashes"]["sha256"],
                    size=int(f.get("size") or 0),
                    yanked=bool(f.get("yanked")),
                )
            )
        return out

    def _get(self, url: str, first: int | None = None, last: int | None = None) -> bytes:
        headers = {}
        if first is not None:
            headers["Range"] = f"bytes={first}-{'' if last is None else last}"
        elif last is not None:
            headers["Range"] = f"bytes=-{last}"
        resp = self.session.get(url, headers=headers, timeout=TIMEOUT)
        resp.raise_for_status()
        if headers and resp.status_code != _HTTP_PARTIAL:
            raise ValueError(f"{url}: the server ignored the range request")
        return resp.content

    def _directory(self, f: ReleaseFile) -> list[_Entry]:
        tail_len = min(_TAIL, f.size) if f.size else _TAIL
        tail = self._get(f.url, last=tail_len)
        tail_start = (f.size or len(tail)) - len(tail)
        cd_offset, cd_size = _eocd(tail, tail_start)
        if cd_offset >= tail_start:
            cd = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
        else:
            cd = self._get(f.url, cd_offset, cd_offset + cd_size - 1)
        return _entries(cd)

    def _read_cache(self, f: ReleaseFile) -> dict[str, Any]:
        path = self.cache / f"{f.sha256}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_cache(self, f: ReleaseFile, names: list[str], texts: dict[str, str]) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        payload = {"file": f.filename, "names": names, "texts": texts}
        write_atomic(self.cache / f"{f.sha256}.json", json.dumps(payload, sort_keys=True))

    def members(self, f: ReleaseFile, want: Callable[[str], bool]) -> dict[str, str]:
        """The text of every member of ``f`` whose name ``want`` accepts."""
        cached = self._read_cache(f)
        names: list[str] | None = cached.get("names")
        texts: dict[str, str] = cached.get("texts", {})
        if not f.is_wheel:
            if names is None or any(want(n) and n not in texts for n in names):
                names, fresh = self._fetch_all(f, want)
                texts.update(fresh)
                self._write_cache(f, names, texts)
            return {n: texts[n] for n in names if want(n) and n in texts}
        entries: list[_Entry] = []
        dirty = names is None
        if names is None:
            entries = self._directory(f)
            names = [e.name for e in entries]
        missing = {n for n in names if want(n) and n not in texts}
        if missing:
            entries = entries or self._directory(f)
            texts.update(self._fetch_members(f, [e for e in entries if e.name in missing]))
            dirty = True
        if dirty:
            self._write_cache(f, names, texts)
        return {n: texts[n] for n in names if want(n) and n in texts}

    def _fetch_members(self, f: ReleaseFile, entries: Iterable[_Entry]) -> dict[str, str]:
        out: dict[str, str] = {}
        for group in _clusters(list(entries)):
            first = group[0].offset
            last = max(e.offset + 30 + _LOCAL_EXTRA + e.csize + len(e.name.encode()) for e in group)
            if f.size:
                last = min(last, f.size - 1)
            self.log(f"  {f.filename}: {len(group)} member(s), {last - first + 1} bytes")
            blob = self._get(f.url, first, last)
            for e in group:
                out[e.name] = _inflate(e, blob, first)
        return out

    def _fetch_all(
        self, f: ReleaseFile, want: Callable[[str], bool]
    ) -> tuple[list[str], dict[str, str]]:
        """An sdist: the whole tarball, then the wanted members (paths without the
        top folder, as in a wheel)."""
        self.log(f"  {f.filename}: downloading the sdist ({f.size} bytes)")
        blob = self._get(f.url)
        names: list[str] = []
        texts: dict[str, str] = {}
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                name = member.name.partition("/")[2]
                names.append(name)
                if want(name):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        texts[name] = handle.read().decode("utf-8", "replace")
        return names, texts
