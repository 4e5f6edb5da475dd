"""The lock set's manifest, ``bnb-provision-locks.toml``: which lock each machine class
uses. Typed here (:class:`Manifest`, :class:`LockClass`), checked where it is read, and
written from the same types; ``init --lock FOLDER`` picks its class from it.

The reader is total: a manifest that is not TOML, has another schema, or a class with a
missing or mistyped field raises :class:`LockfileError` naming the file and the field.
Fields it does not know are ignored, so a newer bnb-provision may add some to schema 1.

The manifest records the sha256 of each class's pylock and requirements file; a lock
set is written all together (``writers.write_files``), and :func:`check_lock_file`
refuses a file that is not the one its manifest recorded (an interrupted or partly
copied set, or an edited file), so ``init`` never installs a stale lock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from packaging.version import InvalidVersion, Version

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.tomlio import toml_loads, toml_pairs, toml_table
from bnb_provision.errors import LockfileError
from bnb_provision.lock.names import MANIFEST_FILE, MANIFEST_SCHEMA

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "LockClass",
    "Manifest",
    "check_lock_file",
    "parse_manifest",
    "read_manifest",
]

MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
_PYTHON: Final = re.compile(r"^3\.[0-9]{1,3}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockClass:
    """One machine class of the manifest and its lock files (names in its folder)."""

    name: str
    requirements: str
    pylock: str
    os: str
    arch: str
    python: str  # "3.12"
    driver_floor: str  # "" when the build needs no driver
    gpu_archs: tuple[str, ...]
    torch: str  # public version, "2.13.0"
    variant: str  # "cu128", "cpu"
    bitsandbytes: str  # "" in a lock of another stack
    lock_sha256: str  # of the pylock file
    machines: tuple[str, ...]
    requirements_sha256: str | None = None  # None in manifests written before it was kept
    stack: str = "bnb"
    holds: str = ""  # the stack's own library: "gptqmodel==7.7.0" ("" in older manifests)

    def to_dict(self) -> dict[str, object]:
        shas = {"lock-sha256": self.lock_sha256}
        if self.requirements_sha256:
            shas["requirements-sha256"] = self.requirements_sha256
        extra = {"holds": self.holds} if self.holds else {}
        return {
            "name": self.name,
            "stack": self.stack,
            **extra,
            "requirements": self.requirements,
            "pylock": self.pylock,
            "os": self.os,
            "arch": self.arch,
            "python": self.python,
            "driver-floor": self.driver_floor,
            "gpu-archs": list(self.gpu_archs),
            "torch": self.torch,
            "variant": self.variant,
            **({"bitsandbytes": self.bitsandbytes} if self.bitsandbytes else {}),
            **shas,
            "machines": list(self.machines),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """A lock set: its classes, and the machines that could not be planned (``"m: why"``)."""

    folder: Path  # where the lock files are
    generator: str
    db_version: str
    classes: tuple[LockClass, ...]
    unplanned: tuple[str, ...] = ()
    schema: str = MANIFEST_SCHEMA
    regenerate: str = ""  # the command line that writes the set again ("" in older ones)

    def to_toml(self) -> str:
        top: dict[str, object] = {
            "schema": self.schema,
            "generator": self.generator,
            "db-version": self.db_version,
        }
        if self.regenerate:
            top["regenerate"] = self.regenerate
        if self.unplanned:
            top["unplanned"] = list(self.unplanned)
        parts = [toml_pairs(top)]
        parts += [toml_table("[[class]]", c.to_dict()) for c in self.classes]
        return "\n".join(parts)

    def requirements_of(self, lock_class: LockClass) -> Path:
        return self.folder / lock_class.requirements

    def class_of(self, file_name: str) -> LockClass | None:
        """The class whose requirements or pylock file is ``file_name``."""
        for c in self.classes:
            if file_name in (c.requirements, c.pylock):
                return c
        return None

    def verify(self, lock_class: LockClass) -> None:
        """Check the class's files against the sha256s the manifest recorded. Raises
        LockfileError (exit 8) for a file that is missing or is not the one recorded."""
        expected = [(lock_class.pylock, lock_class.lock_sha256)]
        if lock_class.requirements_sha256:
            expected.append((lock_class.requirements, lock_class.requirements_sha256))
        for name, want in expected:
            path = self.folder / name
            try:
                got = _sha256_of(path)
            except OSError as exc:
                raise LockfileError(
                    f"{path}: the lock manifest lists it, but it cannot be read ({exc}); "
                    "write the set again with bnb-provision lock --force"
                ) from exc
            if got != want:
                raise LockfileError(
                    f"{path}: not the file its manifest recorded (sha256 {got[:16]}..., "
                    f"expected {want[:16]}...): the lock set is inconsistent (an interrupted "
                    "lock run, a partial copy or an edited file). Write it again with "
                    "bnb-provision lock --force, or restore the file."
                )


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_name(f: Fields, key: str) -> str:
    value: str = f.text(key)
    f.check(
        bool(value) and Path(value).name == value and value != ".." and "\x00" not in value,
        key,
        f"expected a file name in the manifest's folder, got {value!r}",
    )
    return value


def _sha256(f: Fields, key: str, *, required: bool = True) -> str | None:
    value: str | None = f.text(key) if required else f.text(key, None)
    if value is not None:
        f.check(bool(_SHA256.match(value)), key, "expected 64 hex digits")
    return value


def _version(f: Fields, key: str) -> str:
    value: str = f.text(key)
    try:
        Version(value)
    except InvalidVersion:
        f.check(False, key, f"expected a version, got {value!r}")
    return value


def _lock_class(f: Fields) -> LockClass:
    name: str = f.text("name")
    f.check(
        bool(name) and not set(name) & set("/\\\x00") and name not in (".", ".."),
        "name",
        f"expected a lock group's name (it names files beside the manifest), got {name!r}",
    )
    requirements, pylock = _file_name(f, "requirements"), _file_name(f, "pylock")
    os_name: str = f.text("os")
    arch: str = f.text("arch")
    python: str = f.text("python")
    f.check(bool(_PYTHON.match(python)), "python", f"expected X.Y, got {python!r}")
    driver_floor: str = f.text("driver-floor", "")
    gpu_archs = tuple(f.str_list("gpu-archs", []))
    torch, variant = _version(f, "torch"), f.text("variant")
    stack: str = f.text("stack", "bnb")
    bitsandbytes = _version(f, "bitsandbytes") if stack == "bnb" else f.text("bitsandbytes", "")
    sha = _sha256(f, "lock-sha256") or ""
    requirements_sha = _sha256(f, "requirements-sha256", required=False)
    return LockClass(
        name=name,
        requirements=requirements,
        pylock=pylock,
        os=os_name,
        arch=arch,
        python=python,
        driver_floor=driver_floor,
        gpu_archs=gpu_archs,
        torch=torch,
        variant=variant,
        bitsandbytes=bitsandbytes,
        lock_sha256=sha,
        machines=tuple(f.str_list("machines", [])),
        requirements_sha256=requirements_sha,
        stack=stack,
        holds=f.text("holds", ""),
    )


def parse_manifest(data: dict[str, Any], folder: Path) -> Manifest:
    """A manifest from its parsed TOML. Raises FieldError naming the bad field."""
    top = Fields(data, "")
    schema: str = top.text("schema")
    top.check(
        schema == MANIFEST_SCHEMA,
        "schema",
        f"expected {MANIFEST_SCHEMA!r}, got {schema!r} (written by another bnb-provision?)",
    )
    classes = tuple(_lock_class(c) for c in top.tables("class"))
    top.check(bool(classes), "class", "the manifest lists no lock class")
    return Manifest(
        folder=folder,
        generator=top.text("generator", ""),
        db_version=top.text("db-version", ""),
        classes=classes,
        unplanned=tuple(top.str_list("unplanned", [])),
        schema=schema,
        regenerate=top.text("regenerate", ""),
    )


def read_manifest(path: Path) -> Manifest:
    """Read and check the manifest at ``path``. Raises LockfileError (exit 8) that names
    the file and, where one is bad, the field."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
        data = toml_loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise LockfileError(
            f"{path}: cannot read it as a lock manifest ({exc}); "
            "write it again with bnb-provision lock --force"
        ) from exc
    try:
        return parse_manifest(data, path.parent)
    except FieldError as exc:
        raise LockfileError(
            f"{path}: {exc}; write it again with bnb-provision lock --force"
        ) from exc


def check_lock_file(lock: Path) -> None:
    """Refuse a lock file (requirements or pylock) that the manifest beside it records
    with another sha256, or beside a manifest that cannot be read. Nothing to check
    without a manifest there, or when it does not list the file."""
    manifest_path = lock.parent / MANIFEST_FILE
    if not manifest_path.is_file():
        return
    manifest = read_manifest(manifest_path)
    lock_class = manifest.class_of(lock.name)
    if lock_class is not None:
        manifest.verify(lock_class)
