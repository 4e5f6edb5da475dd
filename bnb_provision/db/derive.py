"""Derive compat DB facts from real artifacts on PyPI.

* release lists, upload dates, ``Requires-Python`` and ``Requires-Dist`` from
  PyPI's JSON API;
* the platforms each release has wheels for, from the file names;
* the CUDA build PyPI serves per platform for torch, from each wheel's
  METADATA (PEP 658 ``.metadata`` files: no wheel download);
* every native library a bitsandbytes wheel ships and the kernels inside it,
  from the wheel itself (downloaded once; the result is cached by sha256 so a
  re-run downloads nothing it has).

The functions return TOML text; ``scripts/update_compat_db.py`` diffs it
against ``compat_db/derived/`` and writes only with ``--write``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bnb_provision.core.cuda import variant_of_cuda
from bnb_provision.core.files import write_atomic
from bnb_provision.detect.fatbin import read_kernels
from bnb_provision.detect.target import parse_bnb_library_name

__all__ = [
    "PYPI",
    "Deriver",
    "platform_of_wheel",
]

PYPI: Final = "https://pypi.org"
TIMEOUT: Final = 60
_ZIP64_MARK: Final = 0xFFFFFFFF
Log = Callable[[str], None]


def platform_of_wheel(filename: str) -> str | None:
    """``...-manylinux_2_28_x86_64.whl`` -> ``linux-x86_64``; ``any`` -> ``any``."""
    _, _, _, tags = parse_wheel_filename(filename)
    plats = {t.platform for t in tags}
    for p in sorted(plats):
        if p == "any":
            return "any"
        if "linux" in p:
            return (
                "linux-aarch64"
                if p.endswith("aarch64")
                else ("linux-x86_64" if p.endswith("x86_64") else None)
            )
        if p.startswith("win"):
            return {"win_amd64": "windows-x86_64", "win_arm64": "windows-aarch64"}.get(p)
        if p.startswith("macosx"):
            return "macos-arm64" if p.endswith(("arm64", "universal2")) else "macos-x86_64"
    return None


def _python_tags(filenames: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for fn in filenames:
        _, _, _, tags = parse_wheel_filename(fn)
        for t in tags:
            m = re.fullmatch(r"cp(\d)(\d+)(t?)", t.interpreter)
            if m:
                out.add(f"{m.group(1)}.{m.group(2)}{m.group(3)}")
    return sorted(out, key=lambda s: (int(s.split(".")[1].rstrip("t")), s.endswith("t")))


MARKER_ENVS: Final = {
    "linux-x86_64": {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    },
    "linux-aarch64": {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "aarch64",
        "os_name": "posix",
    },
    "windows-x86_64": {
        "platform_system": "Windows",
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "os_name": "nt",
    },
    "windows-aarch64": {
        "platform_system": "Windows",
        "sys_platform": "win32",
        "platform_machine": "ARM64",
        "os_name": "nt",
    },
    "macos-arm64": {
        "platform_system": "Darwin",
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "os_name": "posix",
    },
    "macos-x86_64": {
        "platform_system": "Darwin",
        "sys_platform": "darwin",
        "platform_machine": "x86_64",
        "os_name": "posix",
    },
}


def _applies(req: Requirement, platform: str, python: str) -> bool:
    if req.marker is None:
        return True
    env = {
        **MARKER_ENVS.get(platform, {}),
        "python_version": python,
        "python_full_version": python + ".0",
        "extra": "",
    }
    return req.marker.evaluate(env)


def _cuda_from_requires(requires: list[str], platform: str, python: str) -> str | None:
    """The CUDA runtime a wheel pins on ``platform``.

    ``nvidia-cuda-runtime-cu12==12.1.105`` -> ``12.1``.
    """
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(req.name)
        if not re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?|cuda-toolkit", name):
            continue
        if not _applies(req, platform, python):
            continue
        if name == "cuda-toolkit" and req.extras and "cudart" not in req.extras:
            continue
        for spec in req.specifier:
            m = re.match(r"(\d+)\.(\d+)", spec.version)
            if m and spec.operator in ("==", "~=", ">="):
                return f"{m.group(1)}.{m.group(2)}"
    return None


def _toml_str(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _inline(d: dict[str, Any]) -> str:
    parts = []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, bool):
            parts.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            parts.append(f"{k} = {v}")
        elif isinstance(v, list):
            parts.append(
                f"{k} = ["
                + ", ".join(_toml_str(x) if isinstance(x, str) else str(x) for x in v)
                + "]"
            )
        else:
            parts.append(f"{k} = {_toml_str(v)}")
    return "{ " + ", ".join(parts) + " }"


@dataclass
class Deriver:
    """Reads PyPI. ``cache`` keeps per-file results keyed by sha256."""

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
        for f in r.json()["files"]:
            name = f["filename"]
            try:
                if name.endswith(".whl"):
                    version = str(parse_wheel_filename(name)[1])
                elif name.endswith((".tar.gz", ".zip")):
                    version = str(parse_sdist_filename(name)[1])
                else:
                    continue
            except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
                continue
            out.setdefault(version, []).append(
                {
                    "filename": name,
                    "url": urljoin(url, f["url"]),
                    "sha256": f["hashes"]["sha256"],
                    "size": f.get("size") or 0,
                    "requires_python": f.get("requires-python") or "",
                    "upload_time": f.get("upload-time") or "",
                    "yanked": bool(f.get("yanked")),
                }
            )
        return out

    def _cached(self, kind: str, sha: str, make: Callable[[], Any]) -> Any:
        path = self.cache / kind / f"{sha}.json"
        if path.exists():
            return json.loads(path.read_text())
        value = make()
        write_atomic(path, json.dumps(value))
        return value

    def wheel_metadata(self, file: dict[str, Any]) -> dict[str, Any]:
        """Requires-Python and Requires-Dist of one wheel, from its PEP 658 metadata file."""

        def fetch() -> dict[str, Any]:
            r = self.session.get(file["url"] + ".metadata", timeout=TIMEOUT)
            if r.status_code == 404:  # noqa: PLR2004 - no PEP 658 file: read the zip by range
                text = self._zip_member(file, ".dist-info/METADATA").decode("utf-8", "replace")
            else:
                r.raise_for_status()
                text = r.text
            lines = text.split("\n\n", 1)[0].splitlines()
            return {
                "requires_python": next(
                    (
                        ln.split(":", 1)[1].strip()
                        for ln in lines
                        if ln.startswith("Requires-Python:")
                    ),
                    "",
                ),
                "requires_dist": [
                    ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:")
                ],
            }

        return dict(self._cached("metadata", file["sha256"], fetch))

    def _range(self, url: str, start: int, end: int) -> bytes:
        r = self.session.get(url, headers={"Range": f"bytes={start}-{end}"}, timeout=TIMEOUT)
        r.raise_for_status()
        if r.status_code != 206:  # noqa: PLR2004
            raise ValueError(f"{url}: the server ignored the range request")
        return r.content

    def _zip_member(self, file: dict[str, Any], suffix: str) -> bytes:
        """One member of a remote zip, read with HTTP range requests only."""
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
        cd = self._range(url, cd_off, cd_off + cd_size - 1)
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
                return zlib.decompress(raw, -15) if method == 8 else raw  # noqa: PLR2004
            pos += 46 + nlen + xlen + clen
        raise ValueError(f"{file['filename']}: no member ending in {suffix}")

    def wheel_libraries(self, file: dict[str, Any]) -> list[dict[str, Any]]:
        """Every ``libbitsandbytes_*`` in a wheel, with its kernels."""

        def fetch() -> list[dict[str, Any]]:
            self.log(f"downloading {file['filename']} ({file['size'] // 1_000_000} MB)")
            with tempfile.TemporaryDirectory(prefix="bnb-derive-") as tmp:
                whl = Path(tmp) / file["filename"]
                h = hashlib.sha256()
                with self.session.get(file["url"], stream=True, timeout=TIMEOUT) as r:
                    r.raise_for_status()
                    with whl.open("wb") as fh:
                        for chunk in r.iter_content(1 << 20):
                            fh.write(chunk)
                            h.update(chunk)
                if h.hexdigest() != file["sha256"]:
                    raise ValueError(f"{file['filename']}: sha256 mismatch")
                out = []
                with zipfile.ZipFile(whl) as zf:
                    for info in zf.infolist():
                        name = info.filename.rsplit("/", 1)[-1]
                        backend, version = parse_bnb_library_name(name)
                        if backend == "other":
                            continue
                        row: dict[str, Any] = {"file": name, "backend": backend, "version": version}
                        if backend.startswith("cuda"):
                            lib = Path(tmp) / name
                            with zf.open(info) as src, lib.open("wb") as dst:
                                while chunk := src.read(1 << 20):
                                    dst.write(chunk)
                            k = read_kernels(lib)
                            lib.unlink()
                            row.update(sass=list(k.sass), ptx=list(k.ptx), rel_ptx=list(k.rel_ptx))
                        out.append(row)
                return out

        return list(self._cached("libraries", file["sha256"], fetch))

    # -- torch ------------------------------------------------------------

    def torch_toml(self, lowest: str = "2.1.0") -> str:
        rel = self.releases("torch")
        lines = [
            "# DERIVED by scripts/update_compat_db.py from the PyPI simple API (PEP 691)",
            "# and wheel METADATA (PEP 658).",
            "# Do not edit by hand: re-run the script. source: https://pypi.org/simple/torch/",
            "",
        ]
        for v in sorted((Version(x) for x in rel if _final(x)), reverse=False):
            if v < Version(lowest):
                continue
            files = [f for f in rel[str(v)] if f["filename"].endswith(".whl") and not f["yanked"]]
            if not files:
                continue
            by_plat: dict[str, list[dict[str, Any]]] = {}
            for f in files:
                p = platform_of_wheel(f["filename"])
                if p:
                    by_plat.setdefault(p, []).append(f)
            pypi: list[str] = []
            for plat in sorted(by_plat):
                newest = max(by_plat[plat], key=lambda f: f["filename"])
                cuda = _cuda_from_requires(
                    self.wheel_metadata(newest)["requires_dist"],
                    plat,
                    _python_tags([newest["filename"]])[-1].rstrip("t"),
                )
                pypi.append(f"{plat}=" + (variant_of_cuda(cuda) if cuda else "cpu"))
            row = {
                "version": str(v),
                "date": min(f["upload_time"] for f in files)[:10],
                "requires_python": files[0]["requires_python"],
                "pythons": _python_tags(f["filename"] for f in files),
                "pypi": pypi,
            }
            lines.append(f"[[release]]\n{_flat(row)}")
        return "\n".join(lines) + "\n"

    # -- bitsandbytes ----------------------------------------------------

    def bnb_toml(self, lowest: str = "0.39.0", libraries: bool = True) -> str:
        rel = self.releases("bitsandbytes")
        lines = [
            "# DERIVED by scripts/update_compat_db.py from the PyPI simple API (PEP 691)",
            "# and the wheels",
            "# themselves (kernels read from each native library's fatbin sections).",
            "# Do not edit by hand. source: https://pypi.org/simple/bitsandbytes/",
            "",
        ]
        for v in sorted(
            Version(x) for x in rel if _parse(x) is not None and not Version(x).is_prerelease
        ):
            if v < Version(lowest):
                continue
            files = [f for f in rel[str(v)] if f["filename"].endswith(".whl") and not f["yanked"]]
            if not files:
                continue
            info = self.wheel_metadata(max(files, key=lambda f: f["filename"]))
            torch_req = ""
            for req in info["requires_dist"]:
                m = re.match(r"^torch\s*(\(?[^;]*\)?)\s*(;.*)?$", req)
                if m and not (m.group(2) and "extra" in m.group(2)):
                    torch_req = m.group(1).strip("() ")
            plats = sorted({p for f in files if (p := platform_of_wheel(f["filename"]))})
            row = {
                "version": str(v),
                "date": min(f["upload_time"] for f in files)[:10],
                "requires_python": info.get("requires_python") or "",
                "torch": str(SpecifierSet(torch_req)) if torch_req else "",
                "platforms": plats,
            }
            lines.append(f"[[release]]\n{_flat(row)}")
            if not libraries:
                continue
            for f in sorted(files, key=lambda f: f["filename"]):
                plat = platform_of_wheel(f["filename"])
                for lib in self.wheel_libraries(f):
                    lib_row = {"bnb": str(v), "platform": plat, **lib}
                    lines.append(f"[[library]]\n{_flat(lib_row)}")
        return "\n".join(lines) + "\n"

    # -- Hugging Face and friends ------------------------------------------------

    def package_toml(self, package: str, lowest: str, extra_names: tuple[str, ...] = ()) -> str:
        """Latest patch of each minor: Requires-Python and torch/bitsandbytes requirements."""
        rel = self.releases(package)
        newest: dict[tuple[int, int], Version] = {}
        for x in rel:
            v = _parse(x)
            if v is None or v.is_prerelease or v < Version(lowest) or not rel[x]:
                continue
            if all(f["yanked"] for f in rel[x]):
                continue
            key = (v.major, v.minor)
            newest[key] = max(newest.get(key, v), v)
        lines = [
            f"# DERIVED by scripts/update_compat_db.py (latest patch of each {package} minor).",
            f"# source: https://pypi.org/simple/{package}/",
            "",
        ]
        for v in sorted(newest.values()):
            wheels = [f for f in rel[str(v)] if f["filename"].endswith(".whl")]
            if not wheels:
                continue
            info = self.wheel_metadata(wheels[0])
            reqs = {}
            for req in info["requires_dist"]:
                m = re.match(r"^([A-Za-z0-9_.-]+)\s*(\(?[^;]*\)?)\s*(;.*)?$", req)
                if not m or (m.group(3) and "extra" in m.group(3)):
                    continue
                name = m.group(1).lower().replace("_", "-")
                if name in ("torch", "accelerate", "bitsandbytes", "transformers", *extra_names):
                    reqs[name] = str(SpecifierSet(m.group(2).strip("() ")))
            date = min(f["upload_time"] for f in rel[str(v)])[:10]
            row = {
                "package": package,
                "version": str(v),
                "date": date,
                "requires_python": info.get("requires_python") or "",
                "requires": [f"{k}{s}" for k, s in sorted(reqs.items())],
            }
            lines.append(f"[[release]]\n{_flat(row)}")
        return "\n".join(lines) + "\n"


def _flat(row: dict[str, Any]) -> str:
    return "\n".join(_inline({k: v})[2:-2] for k, v in row.items() if v is not None)


def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _final(text: str) -> bool:
    v = _parse(text)
    return v is not None and not v.is_prerelease and not v.is_devrelease and v.local is None
