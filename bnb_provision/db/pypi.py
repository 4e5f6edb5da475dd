"""Reading a package index (PyPI) for the derived DB: release files from the PEP 691 JSON
simple API, each wheel's METADATA (its PEP 658 file, or the zip member read with HTTP
range requests), a source distribution's PKG-INFO (for packages that ship no wheel), and
the native libraries inside bitsandbytes wheels with their kernels (NVIDIA architectures
from CUDA fatbins, AMD gfx targets from HIP offload bundles).

Results per file are cached as JSON under ``cache``, keyed by the file's sha256, so a
re-run downloads nothing it already has.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
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
from packaging.version import InvalidVersion

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.files import write_atomic
from bnb_provision.core.jsonio import JsonInputError, decode_json
from bnb_provision.detect.fatbin import read_kernels
from bnb_provision.detect.hipbundle import read_hip_targets
from bnb_provision.detect.target import parse_bnb_library_name
from bnb_provision.errors import ExternalToolError

__all__ = ["PYPI", "Log", "PypiReader"]

PYPI: Final = "https://pypi.org"
TIMEOUT: Final = 60
_ZIP64_MARK: Final = 0xFFFFFFFF
_HTTP_NOT_FOUND: Final = 404
_HTTP_PARTIAL: Final = 206
_DEFLATED: Final = 8
_LIBRARIES: Final = "libraries-2"
"""The cache folder of a wheel's libraries; ``-2`` since the ROCm ones carry gfx targets."""
Log = Callable[[str], None]


def _file_entry(url: str, f: Fields) -> dict[str, Any]:
    """One file of a PEP 691 page, checked (raises FieldError naming the bad field)."""
    hashes = f.table("hashes")
    assert hashes is not None
    size = f.data.get("size")
    return {
        "filename": f.text("filename"),
        "url": urljoin(url, f.text("url")),
        "sha256": hashes.text("sha256"),
        "size": size if isinstance(size, int) and not isinstance(size, bool) else 0,
        "requires_python": f.text("requires-python", None) or "",
        "upload_time": f.text("upload-time", None) or "",
        "yanked": bool(f.data.get("yanked")),
    }


def _version_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _metadata_fields(text: str) -> dict[str, Any]:
    """Requires-Python and Requires-Dist from a METADATA file's headers."""
    lines = text.split("\n\n", 1)[0].splitlines()
    return {
        "requires_python": next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Python:")),
            "",
        ),
        "requires_dist": [
            ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")
        ],
    }


def _is_metadata(value: object) -> bool:
    """Whether a cached value is :func:`_metadata_fields`' answer."""
    if not isinstance(value, dict) or not isinstance(value.get("requires_python"), str):
        return False
    dist = value.get("requires_dist")
    return isinstance(dist, list) and all(isinstance(r, str) for r in dist)


def _is_libraries(value: object) -> bool:
    """Whether a cached value is a list of library rows (``file``, ``backend``, ...)."""
    return isinstance(value, list) and all(
        isinstance(row, dict) and isinstance(row.get("file"), str) for row in value
    )


@dataclass
class PypiReader:
    """Reads a package index. ``cache`` keeps per-file results keyed by sha256."""

    cache: Path
    session: requests.Session
    log: Log = lambda _msg: None
    index: str = PYPI

    def releases(self, package: str) -> dict[str, list[dict[str, Any]]]:
        """Files per version, from the PEP 691 JSON simple API.

        Each file dict has ``filename``, ``url`` (absolute), ``sha256``,
        ``size``, ``requires_python``, ``upload_time`` and ``yanked``.
        """
        url = f"{self.index}/simple/{package}/"
        r = self.session.get(
            url, timeout=TIMEOUT, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        r.raise_for_status()
        out: dict[str, list[dict[str, Any]]] = {}
        try:
            for f in Fields(r.json(), url).tables("files"):
                version = _version_of(f.text("filename"))
                if version is not None:
                    out.setdefault(version, []).append(_file_entry(url, f))
        except (FieldError, requests.JSONDecodeError) as exc:
            raise ExternalToolError(f"{url}: not a PEP 691 simple-API page ({exc})") from exc
        return out

    def _cached(
        self, kind: str, sha: str, make: Callable[[], Any], valid: Callable[[Any], bool]
    ) -> Any:
        """The value cached for the file ``sha``, else ``make()``'s, cached; an entry that
        cannot be read or is not ``valid`` is made again."""
        path = self.cache / kind / f"{sha}.json"
        try:
            value = decode_json(path.read_bytes())
        except (OSError, JsonInputError):
            value = None
        if value is not None and valid(value):
            return value
        value = make()
        write_atomic(path, json.dumps(value))
        return value

    def wheel_metadata(self, file: dict[str, Any]) -> dict[str, Any]:
        """Requires-Python and Requires-Dist of one wheel, from its PEP 658 metadata file."""

        def fetch() -> dict[str, Any]:
            r = self.session.get(file["url"] + ".metadata", timeout=TIMEOUT)
            if r.status_code == _HTTP_NOT_FOUND:  # no PEP 658 file: read the zip by range
                text = self._zip_member(file, ".dist-info/METADATA").decode("utf-8", "replace")
            else:
                r.raise_for_status()
                text = r.text
            return _metadata_fields(text)

        return dict(self._cached("metadata", file["sha256"], fetch, _is_metadata))

    def sdist_metadata(self, file: dict[str, Any]) -> dict[str, Any]:
        """Requires-Python and Requires-Dist of a source distribution, from the PKG-INFO at
        the top of the archive (downloaded once, checked against its sha256, cached)."""

        def fetch() -> dict[str, Any]:
            self.log(f"reading {file['filename']} ({file['size'] // 1000} kB)")
            with tempfile.TemporaryDirectory(prefix="bnb-derive-") as tmp:
                archive = Path(tmp) / file["filename"]
                self._download(file, archive)
                return _metadata_fields(_pkg_info(archive))

        return dict(self._cached("sdist-metadata", file["sha256"], fetch, _is_metadata))

    def _range(self, url: str, start: int, end: int) -> bytes:
        r = self.session.get(url, headers={"Range": f"bytes={start}-{end}"}, timeout=TIMEOUT)
        r.raise_for_status()
        if r.status_code != _HTTP_PARTIAL:
            raise ValueError(f"{url}: the server ignored the range request")
        return r.content

    def _central_directory(self, file: dict[str, Any]) -> bytes:
        url, size = file["url"], int(file["size"])
        tail = self._range(url, max(0, size - 65536), size - 1)
        eocd = tail.rfind(b"PK\x05\x06")
        if eocd < 0:
            raise ValueError(f"{file['filename']}: no zip end record")
        cd_size, cd_off = struct.unpack_from("<II", tail, eocd + 12)
        if _ZIP64_MARK in (cd_size, cd_off):
            loc = tail.rfind(b"PK\x06\x07")
            (z64_off,) = struct.unpack_from("<Q", tail, loc + 8)
            z64 = self._range(url, z64_off, z64_off + 55)
            cd_size, cd_off = struct.unpack_from("<QQ", z64, 40)
        return self._range(url, cd_off, cd_off + cd_size - 1)

    def _zip_member(self, file: dict[str, Any], suffix: str) -> bytes:
        """One top-level member of a remote zip, read with HTTP range requests only."""
        url = file["url"]
        cd = self._central_directory(file)
        pos = 0
        while pos + 46 <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
            (method,) = struct.unpack_from("<H", cd, pos + 10)
            csize, _usize = struct.unpack_from("<II", cd, pos + 20)
            nlen, xlen, clen = struct.unpack_from("<HHH", cd, pos + 28)
            (local,) = struct.unpack_from("<I", cd, pos + 42)
            name = cd[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
            if name.endswith(suffix) and name.count("/") == 1:
                head = self._range(url, local, local + 29)
                lnlen, lxlen = struct.unpack_from("<HH", head, 26)
                start = local + 30 + lnlen + lxlen
                raw = self._range(url, start, start + csize - 1)
                return zlib.decompress(raw, -15) if method == _DEFLATED else raw
            pos += 46 + nlen + xlen + clen
        raise ValueError(f"{file['filename']}: no member ending in {suffix}")

    def _download(self, file: dict[str, Any], whl: Path) -> None:
        """The whole wheel, checked against its sha256."""
        h = hashlib.sha256()
        with self.session.get(file["url"], stream=True, timeout=TIMEOUT) as r:
            r.raise_for_status()
            with whl.open("wb") as fh:
                for chunk in r.iter_content(1 << 20):
                    fh.write(chunk)
                    h.update(chunk)
        if h.hexdigest() != file["sha256"]:
            raise ValueError(f"{file['filename']}: sha256 mismatch")

    def wheel_libraries(self, file: dict[str, Any]) -> list[dict[str, Any]]:
        """Every ``libbitsandbytes_*`` in a wheel, with its kernels (CUDA) or gfx targets
        (ROCm)."""

        def fetch() -> list[dict[str, Any]]:
            self.log(f"downloading {file['filename']} ({file['size'] // 1_000_000} MB)")
            with tempfile.TemporaryDirectory(prefix="bnb-derive-") as tmp:
                whl = Path(tmp) / file["filename"]
                self._download(file, whl)
                return _libraries_in(whl, Path(tmp))

        return list(self._cached(_LIBRARIES, file["sha256"], fetch, _is_libraries))


def _pkg_info(archive: Path) -> str:
    """The top-level ``PKG-INFO`` of an sdist (``.tar.gz`` or ``.zip``), as text."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            name = next(
                (n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")), None
            )
            if name is None:
                raise ValueError(f"{archive.name}: no PKG-INFO at its top")
            return zf.read(name).decode("utf-8", "replace")
    with tarfile.open(archive, "r:gz") as tf:
        member = next(
            (m for m in tf if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")), None
        )
        fh = tf.extractfile(member) if member is not None and member.isfile() else None
        if fh is None:
            raise ValueError(f"{archive.name}: no PKG-INFO at its top")
        return fh.read().decode("utf-8", "replace")


def _libraries_in(whl: Path, scratch: Path) -> list[dict[str, Any]]:
    """The bitsandbytes native libraries of a wheel; CUDA ones with the kernels inside,
    ROCm ones with the gfx targets of their offload bundles."""
    out = []
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            backend, version = parse_bnb_library_name(name)
            if backend == "other":
                continue
            row: dict[str, Any] = {"file": name, "backend": backend, "version": version}
            if backend.startswith("cuda") or backend == "rocm":
                lib = scratch / name
                with zf.open(info) as src, lib.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if backend == "rocm":
                    row["gfx"] = list(read_hip_targets(lib).targets)
                else:
                    k = read_kernels(lib)
                    row.update(sass=list(k.sass), ptx=list(k.ptx), rel_ptx=list(k.rel_ptx))
                lib.unlink()
            out.append(row)
    return out
