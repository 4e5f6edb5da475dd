"""The message catalog (``compat_db/derived/messages.toml``) with the curated rows on top
(``compat_db/explain.toml``), loaded and checked.

Parsing the TOML (most of the cost) is cached as plain JSON in the user's cache, keyed by
the two files' sizes and mtimes and the code's identity; a cache entry is written only
after the files passed every check, including the linear-time check of each pattern. The
cheap checks (fields, releases, rows that map no message) run on every load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import CompatDBError
from bnb_provision.explain.curated import CauseRef, Curated, MessageRule, parse_curated
from bnb_provision.explain.templates import (
    lead_text,
    lead_words,
    linear_problem,
    parse_template,
    tail_text,
)

__all__ = [
    "CATALOG_FILE",
    "CURATED_FILE",
    "Catalog",
    "Message",
    "load_catalog",
    "load_catalog_text",
]

CATALOG_FILE: Final = "derived/messages.toml"
CURATED_FILE: Final = "explain.toml"
_CACHE_KIND: Final = "explain-catalog"


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One message of the catalog."""

    index: int
    library: str
    releases: str  # compact, as written
    versions: tuple[str, ...]  # every examined release it appears in
    call: str
    template: str
    pattern: str
    file: str
    url: str
    lead: tuple[str, ...]  # words a text holding the message (even cut short) holds
    lead_text: str  # its first words, lower case, for messages cut short
    tail: str  # the text after the pattern's part, to tell messages with one head apart


@dataclass(frozen=True, kw_only=True, slots=True)
class Catalog:
    """Messages, the releases examined per library, and the curated rows."""

    examined: dict[str, tuple[str, ...]]
    messages: tuple[Message, ...]
    curated: Curated
    _rules: dict[int, tuple[MessageRule, ...]] = field(default_factory=dict, repr=False)

    def rules_of(self, message: Message) -> tuple[MessageRule, ...]:
        """The curated rows that map ``message``."""
        return self._rules.get(message.index, ())

    def causes_of(self, message: Message) -> tuple[CauseRef, ...]:
        return tuple(ref for rule in self.rules_of(message) for ref in rule.causes)


def _expand(releases: str, examined: tuple[str, ...], f: Fields) -> tuple[str, ...]:
    index = {v: i for i, v in enumerate(examined)}
    out: list[str] = []
    for span in (s.strip() for s in releases.split(",")):
        first, _, last = span.partition("-")
        last = last or first
        f.check(
            first in index and last in index and index[first] <= index[last],
            "releases",
            f"{span!r} is not a run of this library's examined releases",
        )
        out += examined[index[first] : index[last] + 1]
    return tuple(out)


def _messages(
    data: dict[str, Any], *, deep: bool
) -> tuple[dict[str, tuple[str, ...]], list[Message]]:
    doc = Fields(data, "")
    examined: dict[str, tuple[str, ...]] = {}
    for lib in doc.tables("libraries"):
        examined[lib.text("name")] = tuple(lib.str_list("examined"))
        lib.check(lib.text("every") in {"release", "minor"}, "every", "expected release or minor")
        lib.done()
    out = []
    for i, m in enumerate(doc.tables("messages")):
        library = m.text("library")
        m.check(library in examined, "library", f"{library!r} is not in libraries")
        template, pattern = m.text("template"), m.text("pattern")
        try:
            parts = parse_template(template)
        except ValueError as exc:
            raise FieldError(f"{m.sub('template')}: {exc}") from None
        if deep:
            problem = linear_problem(pattern)
            m.check(problem is None, "pattern", f"{problem}: patterns must match in linear time")
        url = m.text("url")
        m.check(url.startswith("https://"), "url", f"expected an https URL, got {url!r}")
        out.append(
            Message(
                index=i,
                library=library,
                releases=m.text("releases"),
                versions=_expand(m.text("releases"), examined[library], m),
                call=m.text("call"),
                template=template,
                pattern=pattern,
                file=m.text("file"),
                url=url,
                lead=lead_words(parts),
                lead_text=lead_text(parts),
                tail=tail_text(parts),
            )
        )
        m.done()
    doc.done()
    return examined, out


def _link(messages: list[Message], curated: Curated) -> dict[int, tuple[MessageRule, ...]]:
    linked: dict[int, list[MessageRule]] = {}
    for n, rule in enumerate(curated.rules):
        hits = [
            m
            for m in messages
            if m.library == rule.library and all(c in m.template for c in rule.contains)
        ]
        if not hits:
            raise CompatDBError(
                f"{CURATED_FILE}: message[{n}]: matches no {rule.library} message of "
                f"{CATALOG_FILE} ({rule.contains!r}); fix `contains`, or regenerate the "
                "catalog with scripts/update_messages.py"
            )
        for m in hits:
            linked.setdefault(m.index, []).append(rule)
    return {k: tuple(v) for k, v in linked.items()}


def build_catalog(files: dict[str, dict[str, Any]], *, deep: bool = True) -> Catalog:
    """A checked catalog from the two files' parsed TOML. Raises :class:`CompatDBError`."""
    for name in (CATALOG_FILE, CURATED_FILE):
        if name not in files:
            raise CompatDBError(f"{name} is missing from compat_db/; reinstall bnb-provision")
    try:
        examined, messages = _messages(files[CATALOG_FILE], deep=deep)
    except FieldError as exc:
        raise CompatDBError(f"{CATALOG_FILE}: {exc}") from None
    curated = parse_curated(files[CURATED_FILE], CURATED_FILE)
    return Catalog(
        examined=examined,
        messages=tuple(messages),
        curated=curated,
        _rules=_link(messages, curated),
    )


def load_catalog_text(catalog_text: str, curated_text: str | None = None) -> Catalog:
    """A catalog from TOML text (the shipped curated file unless another is given)."""
    from bnb_provision.core.data import data_dir

    curated = curated_text
    if curated is None:
        curated = (data_dir("compat_db") / CURATED_FILE).read_text(encoding="utf-8")
    return build_catalog(
        {CATALOG_FILE: toml_loads(catalog_text), CURATED_FILE: toml_loads(curated)}
    )


def _signature(root: Path) -> str:
    parts = [str(root.resolve())]
    for name in (CATALOG_FILE, CURATED_FILE):
        try:
            st = (root / name).stat()
        except OSError:
            parts.append(f"{name}\0missing")
            continue
        parts.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}")
    return "\0".join(parts)


def _read(root: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for name in (CATALOG_FILE, CURATED_FILE):
        path = root / name
        try:
            files[name] = toml_loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise CompatDBError(f"{name}: cannot be read as TOML ({exc})") from exc
    return files


@functools.cache
def load_catalog(root: Path | None = None) -> Catalog:
    """The shipped catalog (or the one under ``root``), checked."""
    from bnb_provision.core import cache
    from bnb_provision.core.data import data_dir

    folder = root or data_dir("compat_db")
    try:
        key = cache.key_for(_CACHE_KIND, _signature(folder)) if cache.enabled() else None
    except OSError:
        key = None
    cached = cache.read_json(_CACHE_KIND, key) if key else None
    if isinstance(cached, dict) and set(cached) == {CATALOG_FILE, CURATED_FILE}:
        return build_catalog(cached, deep=False)
    files = _read(folder)
    catalog = build_catalog(files, deep=True)
    if key:
        cache.write_json(_CACHE_KIND, key, files, keep=4)
    return catalog
