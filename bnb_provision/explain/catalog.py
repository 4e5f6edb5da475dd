"""The message catalog (``compat_db/derived/messages.toml``) with the curated rows on top
(``compat_db/explain.toml``), loaded and checked.

The checked catalog is cached as plain JSON in the user's cache, keyed by the two files'
sizes and mtimes and the code's identity; an entry is written only after the files passed
every check, including the linear-time check of each pattern.
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
    linear_problem,
    match_keys,
    parse_template,
    pattern_of,
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


def _expand(
    releases: str, examined: tuple[str, ...], index: dict[str, int], f: Fields
) -> tuple[str, ...]:
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
    indexes = {lib: {v: i for i, v in enumerate(vs)} for lib, vs in examined.items()}
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
        keys = match_keys(parts)
        out.append(
            Message(
                index=i,
                library=library,
                releases=m.text("releases"),
                versions=_expand(m.text("releases"), examined[library], indexes[library], m),
                call=m.text("call"),
                template=template,
                pattern=pattern,
                file=m.text("file"),
                url=url,
                lead=keys.lead,
                lead_text=keys.lead_text,
                tail=keys.tail,
            )
        )
        m.done()
    doc.done()
    return examined, out


def _link(messages: list[Message], curated: Curated) -> dict[int, tuple[MessageRule, ...]]:
    linked: dict[int, list[MessageRule]] = {}
    by_library: dict[str, list[Message]] = {}
    for m in messages:
        by_library.setdefault(m.library, []).append(m)
    for n, rule in enumerate(curated.rules):
        hits = [
            m
            for m in by_library.get(rule.library, ())
            if all(c in m.template for c in rule.contains)
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
    curated = parse_curated(files[CURATED_FILE], CURATED_FILE, deep=deep)
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


def _to_cache(catalog: Catalog, curated: dict[str, Any]) -> dict[str, Any]:
    """The checked catalog as plain JSON, with what the matcher derives from each message."""
    rule_index = {id(r): i for i, r in enumerate(catalog.curated.rules)}
    return {
        "examined": {k: list(v) for k, v in catalog.examined.items()},
        "messages": [
            [
                *(m.library, m.releases, list(m.versions), m.call, m.template, m.pattern),
                *(m.file, m.url, list(m.lead), m.lead_text, m.tail),
            ]
            for m in catalog.messages
        ],
        "links": {str(i): [rule_index[id(r)] for r in rs] for i, rs in catalog._rules.items()},  # noqa: SLF001
        "curated": curated,
    }


def _message_of(i: int, r: list[Any]) -> Message:
    return Message(
        index=i,
        library=str(r[0]),
        releases=str(r[1]),
        versions=tuple(map(str, r[2])),
        call=str(r[3]),
        template=str(r[4]),
        pattern=str(r[5]),
        file=str(r[6]),
        url=str(r[7]),
        lead=tuple(map(str, r[8])),
        lead_text=str(r[9]),
        tail=str(r[10]),
    )


def _derived_as_written(
    messages: tuple[Message, ...], examined: dict[str, tuple[str, ...]]
) -> bool:
    """Whether every message's releases, pattern and match keys are the ones its library's
    examined releases and its template give (what :func:`_messages` derived and checked).
    Raises KeyError or ValueError for a library or a template that is not one."""
    indexes = {lib: {v: i for i, v in enumerate(vs)} for lib, vs in examined.items()}
    for m in messages:
        where = Fields({}, f"messages[{m.index}]")
        parts = parse_template(m.template)
        keys = match_keys(parts)
        if (
            m.versions != _expand(m.releases, examined[m.library], indexes[m.library], where)
            or m.pattern != pattern_of(parts)
            or (m.lead, m.lead_text, m.tail) != (keys.lead, keys.lead_text, keys.tail)
        ):
            return False
    return True


def _from_cache(data: object) -> Catalog | None:
    """A catalog from :func:`_to_cache`'s output, or None when the entry is not one. What
    runs on the user's text is checked again: the curated rows with their patterns' linear-
    time check, and each message's pattern and keys against what its template gives."""
    try:
        assert isinstance(data, dict)
        curated = parse_curated(data["curated"], CURATED_FILE, deep=True)
        messages = tuple(_message_of(i, r) for i, r in enumerate(data["messages"]))
        links = {int(i): tuple(curated.rules[j] for j in js) for i, js in data["links"].items()}
        examined = {str(k): tuple(map(str, v)) for k, v in data["examined"].items()}
        if not _derived_as_written(messages, examined):
            return None
    except (AssertionError, AttributeError, CompatDBError, LookupError, TypeError, ValueError):
        return None
    return Catalog(examined=examined, messages=messages, curated=curated, _rules=links)


@functools.cache
def load_catalog(root: Path | None = None) -> Catalog:
    """The shipped catalog (or the one under ``root``), checked.

    The checked catalog is cached as plain JSON, keyed by both files' sizes and mtimes and
    by the code's identity (so an entry is only ever read by the code that checked and
    wrote it); the curated rows are parsed and checked again from it on every load, and
    each message's pattern is checked to be its template's.
    """
    from bnb_provision.core import cache
    from bnb_provision.core.data import data_dir

    folder = root or data_dir("compat_db")
    try:
        key = cache.key_for(_CACHE_KIND, _signature(folder)) if cache.enabled() else None
    except OSError:
        key = None
    catalog = _from_cache(cache.read_json(_CACHE_KIND, key)) if key else None
    if catalog is not None:
        return catalog
    files = _read(folder)
    catalog = build_catalog(files, deep=True)
    if key:
        cache.write_json(_CACHE_KIND, key, _to_cache(catalog, files[CURATED_FILE]), keep=4)
    return catalog
