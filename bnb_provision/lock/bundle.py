"""bundle: every file a lock installs in a wheelhouse, hash-checked, for air-gapped machines.

A package's source distribution is fetched only when none of its wheels installs on the
lock's platform (nothing would ever install it otherwise)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import unquote, urlparse

import requests

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.files import atomic_output
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import ExternalToolError, LockfileError

__all__ = ["BUNDLE_SCHEMA", "BundleResult", "bundle_lock"]

BUNDLE_SCHEMA: Final = "bnb-provision.bundle/1"

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class BundleResult:
    """A filled wheelhouse: the files downloaded now and those already there."""

    directory: Path
    downloaded: tuple[str, ...]
    present: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # listed in the lock, never installed from it

    def to_dict(self) -> dict[str, Any]:
        """The ``bnb-provision.bundle/1`` JSON document."""
        return {
            "schema": BUNDLE_SCHEMA,
            "directory": str(self.directory),
            "downloaded": list(self.downloaded),
            "present": list(self.present),
            "skipped": list(self.skipped),
        }


def _entry(pkg: Fields, e: Fields) -> tuple[str, str, str]:
    """(url or path, file name, sha256) of one wheel or sdist entry."""
    url: str | None = e.text("url", None) or e.text("path", None)
    hashes = e.table("hashes", None)
    sha: str | None = hashes.text("sha256", None) if hashes is not None else None
    if not url or not sha:
        raise FieldError(f"{e.path}: a file without url or sha256 ({pkg.data.get('name')})")
    name: str = e.text("name", None) or unquote(Path(urlparse(url).path).name)
    e.check(
        bool(name) and Path(name).name == name and name not in (".", "..") and "\0" not in name,
        "name",
        f"not a plain file name: {name!r}",
    )
    return url, name, sha


def _target(pylock: dict[str, Any]) -> tuple[str, str] | None:
    """(platform, Python) of a lock bnb-provision wrote (its ``[tool.bnb-provision]``)."""
    tool = pylock.get("tool")
    meta = tool.get("bnb-provision") if isinstance(tool, dict) else None
    if isinstance(meta, dict):
        platform, python = meta.get("platform"), meta.get("python")
        if isinstance(platform, str) and isinstance(python, str):
            return platform, python
    return None


def _files(pylock: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(url, file name, sha256) of every file the lock installs, and the names of those it
    lists but never installs. A package's sdist is installed only when none of its wheels
    fits; in a lock bnb-provision wrote, a wheel for another platform or Python neither.
    Raises FieldError naming a bad entry."""
    from bnb_provision.plan.wheelhouse import wheel_fits

    target = _target(pylock)
    out, skipped = [], []
    for pkg in Fields(pylock, "").tables("packages", []):
        wheels = [_entry(pkg, e) for e in pkg.tables("wheels", [])]
        sdist_entry = pkg.table("sdist", None)
        sdist = _entry(pkg, sdist_entry) if sdist_entry is not None else None
        fits = [w for w in wheels if target is None or wheel_fits(w[1], *target)]
        take = fits or ([sdist] if sdist else wheels)
        out += take
        skipped += [f[1] for f in (*wheels, *([sdist] if sdist else [])) if f not in take]
    return out, skipped


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_into(fh: BinaryIO, url: str, lock: Path, session: requests.Session) -> str:
    """Copy the file at ``url`` (http(s), file: or a path relative to the lock) into
    ``fh``; returns its sha256."""
    h = hashlib.sha256()
    if urlparse(url).scheme in ("http", "https"):
        try:
            with session.get(url, stream=True, timeout=120) as r:
                r.raise_for_status()
                for chunk in r.iter_content(1 << 20):
                    fh.write(chunk)
                    h.update(chunk)
        except requests.RequestException as exc:
            raise ExternalToolError(f"could not download {url}: {exc}") from exc
        return h.hexdigest()
    src = Path(unquote(urlparse(url).path) if url.startswith("file:") else url)
    if not src.is_absolute():
        src = lock.parent / src
    try:
        source = src.open("rb")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise LockfileError(f"{lock}: it lists {url}, which cannot be read ({exc})") from exc
    with source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            fh.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def _fetch(
    target: Path, url: str, sha: str, lock: Path, session: requests.Session, log: Log
) -> bool:
    """Put the file at ``url`` at ``target`` unless it is there already (False then)."""
    if target.exists() and _sha256(target) == sha:
        return False
    log(f"downloading {target.name}")
    with atomic_output(target) as fh:
        digest = _copy_into(fh, url, lock, session)
        if digest != sha:
            raise LockfileError(f"{target.name}: sha256 {digest} does not match the lock's {sha}")
    return True


def bundle_lock(
    lock: Path,
    directory: Path,
    *,
    session: requests.Session | None = None,
    log: Log = lambda _m: None,
) -> BundleResult:
    """Fetch the files of ``lock`` (a pylock.toml) into ``directory``; verify each sha256."""
    try:
        files, skipped = _files(toml_loads(lock.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError) as exc:  # FieldError is a ValueError
        raise LockfileError(f"{lock}: cannot read it as a pylock.toml ({exc})") from exc
    s = session or requests.Session()
    directory.mkdir(parents=True, exist_ok=True)
    downloaded: list[str] = []
    present: list[str] = []
    for url, name, sha in files:
        target = directory / name
        try:
            fetched = _fetch(target, url, sha, lock, s, log)
        except OSError as exc:  # a full disk, a name too long for the file system
            raise LockfileError.cannot_write(exc, target) from exc
        (downloaded if fetched else present).append(name)
    return BundleResult(
        directory=directory,
        downloaded=tuple(downloaded),
        present=tuple(present),
        skipped=tuple(skipped),
    )
