"""The files a lock run writes: a table of outputs, each one entry and one function.

Every lock group gets the entries of :data:`OUTPUTS` it wants (its pylock.toml and
requirements.txt always; a Dockerfile and the uv project on request); the set gets its
manifest. A new output is a new entry: a file name for the group and a function that
renders its text.

All files of a run are rendered in memory first, then written together through
``core.files.write_all``: every file or none.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bnb_provision import __version__
from bnb_provision.core.data import data_dir
from bnb_provision.core.files import write_all
from bnb_provision.errors import LockfileError
from bnb_provision.lock.compile import Compiled
from bnb_provision.lock.manifest import LockClass, Manifest
from bnb_provision.lock.names import MANIFEST_FILE, pylock_file, requirements_file
from bnb_provision.lock.pins import Needs
from bnb_provision.lock.requirements import index_lines, pylock_to_requirements
from bnb_provision.lock.spec import LockOptions, LockSpec

__all__ = [
    "OUTPUTS",
    "Output",
    "holds_text",
    "manifest_for",
    "needs_of",
    "render_group",
    "retire",
    "stale_outputs",
    "write_files",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Output:
    """One kind of output file of a lock group."""

    kind: str
    file_name: Callable[[LockSpec], str]
    wanted: Callable[[LockSpec, LockOptions], bool]
    render: Callable[[Compiled, LockOptions], str]


def _render(template: str, **values: str) -> str:
    text = (data_dir("templates") / template).read_text(encoding="utf-8")
    return string.Template(text).substitute(values)


def holds_text(spec: LockSpec) -> str:
    """``bitsandbytes 0.50.2`` / ``gptqmodel 7.7.0``: the stack's own library."""
    name, version = spec.holds
    return f"{name} {version}" if name else f"bitsandbytes {spec.bitsandbytes}"


def needs_of(spec: LockSpec) -> Needs:
    """What the lock needs of a machine: a driver and GPUs for a CUDA build."""
    return Needs(cuda=spec.cuda, driver_floor=spec.driver_floor, gpu_archs=spec.gpu_archs)


def _requirements(c: Compiled, opts: LockOptions) -> str:
    spec = c.spec
    header = _render(
        "lock-header.txt.tmpl",
        tool_version=__version__,
        db_version=spec.db_version,
        torch=spec.torch,
        variant=spec.variant,
        holds=holds_text(spec),
        python=spec.python,
        platform=spec.platform,
        needs=needs_of(spec).line(),
        machines=", ".join(spec.machines),
        regenerate=opts.regenerate,
    )
    header += "".join(f"# Warning: {w}\n" for w in spec.warnings)
    return pylock_to_requirements(c.pylock, header, index_lines(spec, opts))


def _dockerfile(c: Compiled, opts: LockOptions) -> str:
    return _render(
        "Dockerfile.tmpl",
        tool_version=__version__,
        lock_name=requirements_file(c.spec.name),
        db_version=c.spec.db_version,
        regenerate=opts.regenerate,
        base_image=f"python:{c.spec.python}-slim",
    )


OUTPUTS: Final[tuple[Output, ...]] = (
    Output(
        kind="pylock",
        file_name=lambda spec: pylock_file(spec.name),
        wanted=lambda _spec, _opts: True,
        render=lambda c, _opts: c.pylock_text,
    ),
    Output(
        kind="requirements",
        file_name=lambda spec: requirements_file(spec.name),
        wanted=lambda _spec, _opts: True,
        render=_requirements,
    ),
    Output(
        kind="dockerfile",
        file_name=lambda spec: f"Dockerfile.{spec.name}",
        wanted=lambda spec, opts: opts.dockerfile and spec.os == "linux",
        render=_dockerfile,
    ),
    Output(
        kind="uv-project",
        file_name=lambda spec: f"uv-project.{spec.name}.toml",
        wanted=lambda _spec, opts: opts.uv_project,
        render=lambda c, _opts: c.spec.uv_input,
    ),
)


def render_group(c: Compiled, opts: LockOptions) -> dict[str, tuple[Path, str]]:
    """{kind: (path, text)} of every output the group wants, in table order."""
    return {
        o.kind: (opts.output / o.file_name(c.spec), o.render(c, opts))
        for o in OUTPUTS
        if o.wanted(c.spec, opts)
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_for(
    groups: Sequence[tuple[Compiled, Mapping[str, tuple[Path, str]]]],
    unplanned: Sequence[tuple[str, str]],
    opts: LockOptions,
) -> tuple[Path, str]:
    """The manifest of a lock set: (path, text). Its checksums are of the rendered files."""
    classes = []
    for c, files in groups:
        s = c.spec
        pylock_path, pylock_text = files["pylock"]
        requirements_path, requirements_text = files["requirements"]
        classes.append(
            LockClass(
                name=s.name,
                requirements=requirements_path.name,
                pylock=pylock_path.name,
                os=s.os,
                arch=s.arch,
                python=s.python,
                driver_floor=s.driver_floor,
                gpu_archs=s.gpu_archs,
                torch=s.torch,
                variant=s.variant,
                bitsandbytes=s.bitsandbytes,
                lock_sha256=_sha256(pylock_text),
                machines=s.machines,
                requirements_sha256=_sha256(requirements_text),
                stack=s.stack,
                holds=f"{s.holds[0]}=={s.holds[1]}" if s.holds[0] else "",
            )
        )
    manifest = Manifest(
        folder=opts.output,
        generator=f"bnb-provision {__version__}",
        db_version=groups[0][0].spec.db_version if groups else "",
        classes=tuple(classes),
        unplanned=tuple(f"{m}: {why}" for m, why in unplanned),
        regenerate=opts.regenerate,
    )
    return opts.output / MANIFEST_FILE, manifest.to_toml()


def _changed(path: Path, text: str) -> bool:
    """Whether writing ``text`` changes ``path`` (a symlink there is always replaced)."""
    data = text.encode("utf-8")
    try:
        if path.is_symlink() or path.stat().st_size != len(data):
            return True
        return path.read_bytes() != data
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read the existing file ({exc})") from exc


def write_files(files: Mapping[Path, str], *, force: bool, replace: frozenset[Path]) -> None:
    """Write ``files`` all together (core.files.write_all), or none of them.

    An unchanged file is left alone. An existing file that differs is replaced only with
    ``force`` (or when it is in ``replace``: the manifest), and then kept as a dated
    .bak. Raises LockfileError (exit 8) before anything is written when a file exists,
    and when writing fails (a full or read-only disk), with every old file still there.
    """
    changed = {p: t for p, t in files.items() if _changed(p, t)}
    exist = [p for p in changed if (p.exists() or p.is_symlink()) and p not in replace]
    if len(exist) == 1 and not force:
        raise LockfileError(
            f"{exist[0]} exists; pass --force to replace it (the old file is kept as a dated .bak)"
        )
    if exist and not force:
        raise LockfileError(
            f"{', '.join(str(p) for p in exist)} exist; pass --force to replace them (the old "
            "files are kept as dated .bak files)"
        )
    try:
        write_all(changed, backup=True)
    except OSError as exc:
        raise LockfileError(
            f"could not write the lock files ({exc}); nothing was changed: the previous "
            "files are all as they were"
        ) from exc


def stale_outputs(folder: Path, written: Mapping[Path, str]) -> list[Path]:
    """The files of the classes the manifest in ``folder`` lists that the new set no longer
    writes (a machine left, a group changed its name): what ``lock --force`` retires."""
    from bnb_provision.lock.manifest import read_manifest

    try:
        old = read_manifest(folder / MANIFEST_FILE)
    except LockfileError:
        return []
    keep = {p.name for p in written}
    out = []
    for c in old.classes:
        for name in (c.pylock, c.requirements, f"Dockerfile.{c.name}", f"uv-project.{c.name}.toml"):
            path = folder / name
            if name not in keep and _present(path):
                out.append(path)
    return out


def _present(path: Path) -> bool:
    """A file or a link at ``path``; a name the file system refuses (too long) is none."""
    try:
        return path.is_file() or path.is_symlink()
    except OSError:
        return False


def retire(paths: Sequence[Path]) -> tuple[Path, ...]:
    """Move each of ``paths`` aside as a dated .bak (never deleted); returns the backups."""
    from bnb_provision.core.files import backup_name

    out = []
    for path in paths:
        target = backup_name(path)
        try:
            path.replace(target)
        except OSError as exc:
            raise LockfileError(f"{path}: cannot move it aside as {target.name} ({exc})") from exc
        out.append(target)
    return tuple(out)
