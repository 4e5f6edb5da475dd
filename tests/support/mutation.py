"""Mutations of parsed documents (TOML or JSON as dicts and lists) for the fuzz tests: one
value at a path removed, replaced by another value, retyped or edited. The document is
copied along that path only, so the original is never changed and a mutation is cheap.
"""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st

__all__ = ["Mutation", "json_values", "mutate", "mutations", "paths_of", "tricky_text"]

Key = str | int
Action = Literal["remove", "replace", "retype", "edit"]
Mutation = tuple[tuple[Key, ...], Action, Any]

tricky_text = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e400",
        "inf",
        "nan",
        "9" * 400,
        "x.y",
        "3.99",
        "99.0",
        "2.13.0+cu999",
        ">=",
        "==1.0",
        ">=9,<1",
        "*",
        "\x00",
        "\u0663.\u0661\u0662",  # Arabic-Indic digits: str.isdigit() and \d say yes
        "sm_5",
        "cu",
        "rocm",
        "gfx",
        "linux-x86_64",
        "../x",
        "/",
        "{variant}",
        "{",
        "a" * 2000,
        "https://",
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 10**400, -(10**30), 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    tricky_text,
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(doc: object, prefix: tuple[Key, ...] = ()) -> list[tuple[Key, ...]]:
    """Every path to a value in ``doc`` (keys of tables, indexes of arrays), in order."""
    out: list[tuple[Key, ...]] = []
    items: list[tuple[Key, object]] = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    for key, value in items:
        path = (*prefix, key)
        out.append(path)
        out += paths_of(value, path)
    return out


def _retyped(value: object) -> object:
    """The same content in another type: what a hand edit or a foreign writer gives."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return [value]
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return "null"


def _edited(value: object, junk: object) -> object:
    """A string with junk put in its middle; any other value replaced by the junk."""
    if isinstance(value, str) and isinstance(junk, str):
        middle = len(value) // 2
        return value[:middle] + junk + value[middle:]
    return junk


def _changed(value: object, action: Action, new: object) -> object:
    if action == "retype":
        return _retyped(value)
    if action == "edit":
        return _edited(value, new)
    return new


def mutate(doc: Any, mutation: Mutation) -> Any:
    """``doc`` with one mutation applied, copied along the mutation's path."""
    path, action, new = mutation
    if not path:
        return _changed(doc, action, new)
    key, rest = path[0], path[1:]
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    if not rest and action == "remove":
        del copy[key]
        return copy
    copy[key] = mutate(doc[key], (rest, action, new))
    return copy


@st.composite
def _path(draw: st.DrawFn, paths: list[tuple[Key, ...]]) -> tuple[Key, ...]:
    """A path of the document cut to a random depth, so that a table near the top (one
    of a few) is changed about as often as a leaf deep inside (one of thousands)."""
    path = draw(st.sampled_from(paths))
    return path[: draw(st.integers(1, len(path)))] if path else path


@st.composite
def _walk(draw: st.DrawFn, doc: object) -> tuple[Key, ...]:
    """A path walked down from the top, each key as likely as its siblings: a small table
    beside a large one (a package's version beside a list of a hundred) is reached."""
    path: list[Key] = []
    node = doc
    while isinstance(node, (dict, list)) and node:
        keys: list[Key] = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        path.append(key)
        node = node[key]  # type: ignore[index]
        if draw(st.integers(0, 3)) == 0:
            break
    return tuple(path)


def mutations(doc: object, focus: tuple[tuple[Key, ...], ...] = ()) -> st.SearchStrategy[Mutation]:
    """One mutation of ``doc``: a path in it, what to do there and the value to use;
    ``focus`` names paths worth changing more often than chance gives (a version field)."""
    paths = paths_of(doc) or [()]
    where = st.one_of(_path(paths), _walk(doc), *([st.sampled_from(focus)] if focus else []))
    return st.tuples(
        where,
        st.sampled_from(["remove", "replace", "retype", "edit"]),
        st.one_of(json_values, tricky_text),
    )
