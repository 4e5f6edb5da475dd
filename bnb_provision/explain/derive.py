"""The message catalog, derived from the libraries' release files on PyPI.

For each library in :data:`LIBRARIES`, every release (bitsandbytes) or the newest release
of every minor (the others) from a first version on is read: the ``.py`` members the spec
names, out of one wheel per release (the smallest, or the platform the spec prefers:
torch's macOS arm64 wheels carry the same Python sources as its CUDA ones). Each message
(:mod:`bnb_provision.explain.extract`) is kept once per library with the releases it
appears in, its template, its pattern, the file it is in (in the newest release that has
it) and that wheel's URL. :func:`render_catalog` writes ``compat_db/derived/messages.toml``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from packaging.version import Version

from bnb_provision.core.files import write_atomic
from bnb_provision.core.tomlio import toml_value
from bnb_provision.explain.extract import extract_messages
from bnb_provision.explain.sources import Log, PypiFiles, ReleaseFile
from bnb_provision.explain.templates import parse_template, pattern_of, render_template

__all__ = [
    "LIBRARIES",
    "CatalogRow",
    "Examined",
    "LibrarySpec",
    "compact_releases",
    "derive_library",
    "render_catalog",
]

_BNB_WORDS: Final = (
    r"(?i)bitsandbytes|\bbnb|quantiz|\b[48]-?bit|load_in_|int8|kbit|dispatched|offload"
    r"|no gpu found"
)
# transformers' big modules: only what concerns bitsandbytes and 8/4-bit loading
_BNB_STRICT: Final = (
    r"(?i)bitsandbytes|\bbnb|load_in_|llm_int8|\b[48]-?bit|dispatched on the cpu"
    r"|gpu is needed for quantization"
)
_CUDA_WORDS: Final = r"(?i)cuda|capabilit|\bsm_|\barch|nvcc|gpu|driver|triton|ptxas"


@dataclass(frozen=True, kw_only=True, slots=True)
class LibrarySpec:
    """Which releases of a PyPI project are read, and which of their files."""

    name: str
    first: str
    per_minor: bool
    platform: tuple[str, ...] = ()  # substrings the preferred wheel's platform tag has
    members: tuple[tuple[str, str | None], ...] = ()  # (path regex, keyword regex or None)


LIBRARIES: Final[tuple[LibrarySpec, ...]] = (
    LibrarySpec(
        name="bitsandbytes",
        first="0.37.0",
        per_minor=False,
        members=((r"bitsandbytes/(?!.*test).*\.py", None),),
    ),
    LibrarySpec(
        name="transformers",
        first="4.30.0",
        per_minor=True,
        members=(
            (r"transformers/quantizers/quantizer_bnb_[48]bit\.py", None),
            (r"transformers/(integrations|utils)/bitsandbytes\.py", None),
            (r"transformers/utils/quantization_config\.py", _BNB_STRICT),
            (r"transformers/utils/import_utils\.py", _BNB_STRICT),
            (r"transformers/modeling_utils\.py", _BNB_STRICT),
            (r"transformers/trainer\.py", _BNB_STRICT),
        ),
    ),
    LibrarySpec(
        name="accelerate",
        first="0.20.0",
        per_minor=True,
        members=(
            (r"accelerate/utils/bnb\.py", None),
            (r"accelerate/(big_modeling|utils/imports|utils/modeling)\.py", _BNB_WORDS),
        ),
    ),
    LibrarySpec(
        name="peft",
        first="0.4.0",
        per_minor=True,
        members=(
            (r"peft/tuners/lora/bnb\.py", None),
            (r"peft/(tuners/lora|tuners/lora/model|utils/other|import_utils)\.py", _BNB_WORDS),
        ),
    ),
    LibrarySpec(
        name="torch",
        first="2.0.0",
        per_minor=True,
        platform=("macosx", "arm64"),
        members=(
            (r"torch/cuda/__init__\.py", None),
            (r"torch/(cuda/)?amp/grad_scaler\.py", None),
            (r"torch/utils/cpp_extension\.py", _CUDA_WORDS),
            (r"torch/(_inductor/scheduler|_dynamo/device_interface)\.py", r"(?i)triton"),
        ),
    ),
    LibrarySpec(
        name="triton",
        first="2.0.0",
        per_minor=True,
        platform=("x86_64",),
        members=(
            (
                (
                    r"triton/(compiler|compiler/compiler|compiler/backends/cuda|common/backend|runtime/driver"
                    r"|backends/nvidia/(compiler|driver))\.py"
                ),
                _CUDA_WORDS,
            ),
        ),
    ),
)


@dataclass(kw_only=True, slots=True)
class CatalogRow:
    """One message of one library, with the examined releases it appears in."""

    library: str
    template: str
    pattern: str
    call: str
    file: str
    url: str
    releases: list[Version] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class Examined:
    """A library's examined releases (oldest first) and its messages."""

    spec: LibrarySpec
    releases: tuple[Version, ...]
    rows: tuple[CatalogRow, ...]


def _chosen_releases(spec: LibrarySpec, files: dict[Version, list[ReleaseFile]]) -> list[Version]:
    first = Version(spec.first)
    final = sorted(
        v
        for v, fs in files.items()
        if v >= first and not v.is_prerelease and not v.is_devrelease and not v.local
        if any(not f.yanked for f in fs)
    )
    if not spec.per_minor:
        return final
    newest: dict[tuple[int, int], Version] = {}
    for v in final:
        newest[(v.major, v.minor)] = v
    return sorted(newest.values())


def _pick_file(spec: LibrarySpec, files: list[ReleaseFile]) -> ReleaseFile | None:
    wheels = [f for f in files if f.is_wheel and not f.yanked]
    preferred = [
        f for f in wheels if all(any(p in tag for tag in f.platform_tags) for p in spec.platform)
    ]
    pool = preferred or wheels or [f for f in files if not f.yanked]
    return min(pool, key=lambda f: (f.size, f.filename)) if pool else None


def _member_rules(spec: LibrarySpec) -> list[tuple[re.Pattern[str], re.Pattern[str] | None]]:
    return [(re.compile(p), re.compile(k) if k else None) for p, k in spec.members]


@functools.cache
def _extractor_digest() -> str:
    """Identifies the extraction code: a cached extraction from other code is not reused."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("extract.py", "templates.py", "derive.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _read_release(
    spec: LibrarySpec, f: ReleaseFile, pypi: PypiFiles, log: Log
) -> list[tuple[str, str, str]]:
    """(call, template, member path) of every message in one release file; cached beside
    the file's members, keyed by the extraction code and the spec."""
    cached = pypi.cache / f"{f.sha256}.{_extractor_digest()}.{spec.name}.json"
    try:
        rows = json.loads(cached.read_text(encoding="utf-8"))
        return [(str(a), str(b), str(c)) for a, b, c in rows]
    except (OSError, ValueError):
        pass
    out = _extract_release(spec, f, pypi, log)
    pypi.cache.mkdir(parents=True, exist_ok=True)
    write_atomic(cached, json.dumps(out))
    return out


def _extract_release(
    spec: LibrarySpec, f: ReleaseFile, pypi: PypiFiles, log: Log
) -> list[tuple[str, str, str]]:
    rules = _member_rules(spec)

    def wanted(name: str) -> bool:
        return any(p.fullmatch(name) for p, _ in rules)

    out: list[tuple[str, str, str]] = []
    for name, text in sorted(pypi.members(f, wanted).items()):
        keep = next(k for p, k in rules if p.fullmatch(name))
        try:
            found = extract_messages(text, keep=keep)
        except SyntaxError as exc:
            log(f"  {f.filename}: {name} is not parsable Python ({exc.msg}); skipped")
            continue
        out += [(m.call, render_template(m.template), name) for m in found]
    return out


def derive_library(spec: LibrarySpec, pypi: PypiFiles, log: Log, *, workers: int = 6) -> Examined:
    """Read every chosen release of one library and collect its messages."""
    files = pypi.releases(spec.name)
    chosen = _chosen_releases(spec, files)
    picked = [(v, _pick_file(spec, files[v])) for v in chosen]
    picked = [(v, f) for v, f in picked if f is not None]
    log(f"{spec.name}: {len(picked)} release(s) from {spec.first}")

    def one(item: tuple[Version, ReleaseFile | None]) -> list[tuple[str, str, str]]:
        assert item[1] is not None
        return _read_release(spec, item[1], pypi, log)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, picked))
    rows: dict[str, CatalogRow] = {}
    for (version, f), messages in zip(picked, results, strict=True):
        assert f is not None
        for call, template, member in messages:
            row = rows.get(template)
            if row is None:
                row = rows[template] = CatalogRow(
                    library=spec.name,
                    template=template,
                    pattern="",
                    call=call,
                    file=member,
                    url=f.url,
                )
            if version not in row.releases:
                row.releases.append(version)
            row.call, row.file, row.url = call, member, f.url  # the newest release's
    for row in rows.values():
        row.pattern = pattern_of(parse_template(row.template))
    ordered = sorted(rows.values(), key=lambda r: (r.file, r.template))
    return Examined(spec=spec, releases=tuple(v for v, _ in picked), rows=tuple(ordered))


def compact_releases(present: list[Version], examined: tuple[Version, ...]) -> str:
    """``0.37.0-0.41.3, 0.43.0``: runs of consecutive examined releases."""
    index = {v: i for i, v in enumerate(examined)}
    spans: list[list[int]] = []
    for i in sorted(index[v] for v in present):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(
        str(examined[a]) if a == b else f"{examined[a]}-{examined[b]}" for a, b in spans
    )


HEADER: Final = """\
# Every error and warning message bitsandbytes, transformers, accelerate, peft, torch and
# triton can print from the Python files explain reads, extracted from their release files
# on PyPI by scripts/update_messages.py. Do not edit: run the script (it prints a diff and
# writes with --write). Curated causes for these messages are in compat_db/explain.toml.
#
# libraries: each library's examined releases, oldest first (every release, or the newest
#   of every minor), and which of them.
# messages: one row per message and library. releases: the examined releases it appears
#   in ("a-b" is every examined release from a to b); call: how it is emitted; template:
#   the message with {fields} for formatted values; pattern: the linear-time regular
#   expression (over lower-cased text) for its first sentence; file: where it is in the
#   newest release that has it; url: that release's file on PyPI.
"""


def render_catalog(examined: list[Examined]) -> str:
    libs = [
        "{"
        + ", ".join(
            [
                f"name = {toml_value(e.spec.name)}",
                f"every = {toml_value('minor' if e.spec.per_minor else 'release')}",
                f"examined = {toml_value([str(v) for v in e.releases])}",
            ]
        )
        + "}"
        for e in examined
    ]
    rows = []
    for e in examined:
        for r in e.rows:
            values = {
                "library": r.library,
                "releases": compact_releases(r.releases, e.releases),
                "call": r.call,
                "template": r.template,
                "pattern": r.pattern,
                "file": r.file,
                "url": r.url,
            }
            rows.append("{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in values.items()) + "}")
    return (
        HEADER
        + "\nlibraries = [\n"
        + "".join(f"  {x},\n" for x in libs)
        + "]\n\nmessages = [\n"
        + "".join(f"  {x},\n" for x in rows)
        + "]\n"
    )


def derive_catalog(
    pypi_factory: Callable[[], PypiFiles], log: Log, only: tuple[str, ...] = ()
) -> list[Examined]:
    """Every library of :data:`LIBRARIES` (or those named in ``only``), in order."""
    return [
        derive_library(spec, pypi_factory(), log)
        for spec in LIBRARIES
        if not only or spec.name in only
    ]
