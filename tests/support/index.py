"""A real PEP 503 / PEP 691 simple index on 127.0.0.1, serving real wheel files.

Supports HTTP range requests and PEP 658 ``.metadata`` files, like PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
) -> Path:
    """Write a valid wheel (METADATA, WHEEL, RECORD with hashes)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents = dict(files)
    contents[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: bnb-provision-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    record = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            zf.writestr(path, data)
    return out


def make_sdist(directory: Path, name: str, version: str, *, requires: tuple[str, ...] = ()) -> Path:
    """Write a source distribution (``.tar.gz``) whose top folder holds a PKG-INFO (metadata
    2.2, so its fields are static) and a pyproject.toml."""
    import tarfile

    dist = name.replace("-", "_")
    top = f"{dist}-{version}"
    meta = ["Metadata-Version: 2.2", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    members = {
        f"{top}/PKG-INFO": ("\n".join(meta) + "\n").encode(),
        f"{top}/pyproject.toml": f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode(),
    }
    out = directory / f"{top}.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def _metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return zf.read(name)


class _Handler(BaseHTTPRequestHandler):
    wheels: ClassVar[dict[str, list[Path]]] = {}
    files: ClassVar[dict[str, Path]] = {}
    requests_seen: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(
        self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests_seen.append(self.path)
        # percent-decoded, as real servers do (pip asks for torch-2.7.0%2Bcu126-...whl)
        parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            project = canonicalize_name(parts[1])
            wheels = self.wheels.get(project)
            if wheels is None:
                self._send(404, b"not found", "text/plain")
                return
            entries: list[dict[str, Any]] = []
            for w in wheels:
                sha = hashlib.sha256(w.read_bytes()).hexdigest()
                entry: dict[str, Any] = {
                    "filename": w.name,
                    "url": f"/files/{w.name}",
                    "hashes": {"sha256": sha},
                    "size": w.stat().st_size,
                    "upload-time": "2026-01-01T00:00:00Z",
                    "yanked": False,
                }
                if w.name.endswith(".whl"):  # PEP 658: wheels only, as on PyPI
                    entry["core-metadata"] = {"sha256": hashlib.sha256(_metadata(w)).hexdigest()}
                entries.append(entry)
            if "application/vnd.pypi.simple.v1+json" in (self.headers.get("Accept") or ""):
                body = json.dumps(
                    {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
                ).encode()
                self._send(200, body, "application/vnd.pypi.simple.v1+json")
            else:
                links = "".join(
                    f'<a href="{html.escape(e["url"])}#sha256={e["hashes"]["sha256"]}"'
                    + (
                        f' data-dist-info-metadata="sha256={e["core-metadata"]["sha256"]}"'
                        if "core-metadata" in e
                        else ""
                    )
                    + f">{html.escape(e['filename'])}</a><br/>"
                    for e in entries
                )
                self._send(200, f"<html><body>{links}</body></html>".encode(), "text/html")
            return
        if len(parts) == 2 and parts[0] == "files":
            name = parts[1]
            if name.endswith(".metadata") and name[:-9] in self.files:
                self._send(200, _metadata(self.files[name[:-9]]), "text/plain")
                return
            path = self.files.get(name)
            if path is None:
                self._send(404, b"not found", "text/plain")
                return
            data = path.read_bytes()
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start_s, _, end_s = rng[6:].partition("-")
                start, end = int(start_s), min(int(end_s), len(data) - 1)
                self._send(
                    206,
                    data[start : end + 1],
                    "application/octet-stream",
                    {"Content-Range": f"bytes {start}-{end}/{len(data)}"},
                )
                return
            self._send(200, data, "application/octet-stream")
            return
        if parts == ["simple"]:
            links = "".join(f'<a href="/simple/{p}/">{p}</a>' for p in self.wheels)
            self._send(200, links.encode(), "text/html")
            return
        self._send(404, b"not found", "text/plain")


@contextmanager
def serve_index(wheels: list[Path]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``wheels`` at http://127.0.0.1:PORT/simple/; yields (url, requests seen)."""
    by_project: dict[str, list[Path]] = {}
    for w in wheels:
        name = (
            parse_wheel_filename(w.name)[0]
            if w.name.endswith(".whl")
            else parse_sdist_filename(w.name)[0]
        )
        by_project.setdefault(canonicalize_name(name), []).append(w)
    seen: list[str] = []
    handler = type(
        "Handler",
        (_Handler,),
        {"wheels": by_project, "files": {w.name: w for w in wheels}, "requests_seen": seen},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["io", "make_sdist", "make_wheel", "serve_index"]
