"""The message catalog and its curated rows: extraction from Python source, templates and
their linear-time patterns, the checks every load runs, and (with -m network) the catalog
regenerated from PyPI reproduces the shipped file."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import CompatDBError
from bnb_provision.explain.catalog import CATALOG_FILE, CURATED_FILE, build_catalog, load_catalog
from bnb_provision.explain.curated import Cause, Context, MessageRule, Signature
from bnb_provision.explain.derive import LIBRARIES, compact_releases, derive_catalog, render_catalog
from bnb_provision.explain.extract import extract_messages
from bnb_provision.explain.sources import PypiFiles
from bnb_provision.explain.templates import (
    Field,
    head_of,
    lead_words,
    linear_problem,
    parse_template,
    pattern_of,
    render_template,
)

ROOT = Path(__file__).resolve().parent.parent
DB = ROOT / "compat_db"


def _files() -> dict[str, dict[str, Any]]:
    return {
        name: toml_loads((DB / name).read_text(encoding="utf-8"))
        for name in (CATALOG_FILE, CURATED_FILE)
    }


def _templates(source: str) -> list[str]:
    return [render_template(m.template) for m in extract_messages(source)]


# -- extraction ------------------------------------------------------------------------


def test_extracts_raise_warn_print_and_log_calls_with_their_formatting() -> None:
    source = """
import logging, warnings
logger = logging.getLogger(__name__)

def load(path, version, cc):
    if not path.exists():
        raise RuntimeError(f"Configured CUDA binary not found at {path}")
    warnings.warn("The installed version of bitsandbytes was compiled without GPU support. "
                  "8-bit optimizers are unavailable.")
    logger.warning("Could not find the bitsandbytes %s binary at %r", version, path)
    print("CUDA SETUP: Detected CUDA version", version)
    msg = "Found GPU{} which is of cuda capability {}.{}".format(0, cc.major, cc.minor)
    msg += " It is too old."
    warnings.warn(msg)
    raise ValueError("Only " + str(version) + " is supported by this loader")
    setup.add_log_entry(f"CUDA SETUP: Loading binary {path}...")
"""
    assert _templates(source) == [
        "Configured CUDA binary not found at {path}",
        "The installed version of bitsandbytes was compiled without GPU support. 8-bit optimizers are unavailable.",
        "Could not find the bitsandbytes {version} binary at {path}",
        "CUDA SETUP: Detected CUDA version {version}",
        "Found GPU{value} which is of cuda capability {cc_major}.{cc_minor} It is too old.",
        "Only {version} is supported by this loader",
        "CUDA SETUP: Loading binary {path}...",
    ]
    calls = [m.call for m in extract_messages(source)]
    assert calls == [
        "raise RuntimeError",
        "warn",
        "log.warning",
        "print",
        "warn",
        "raise ValueError",
        "log.add_log_entry",
    ]


def test_short_or_dynamic_texts_are_not_messages() -> None:
    source = 'raise ValueError(err)\nprint(x)\nwarn("too short")\nraise KeyError(f"{a}: {b}")\n'
    assert _templates(source) == []


def test_keyword_filter_keeps_only_relevant_messages() -> None:
    source = 'raise ValueError("bitsandbytes is not installed here")\nraise ValueError("an unrelated message here")\n'
    kept = [
        render_template(m.template)
        for m in extract_messages(source, keep=re.compile("bitsandbytes"))
    ]
    assert kept == ["bitsandbytes is not installed here"]


# -- templates and patterns -----------------------------------------------------------


def test_template_round_trip_and_literal_braces() -> None:
    text = "target_dtype {{target_dtype}} is replaced by {value} for 8-bit"
    parts = parse_template(text)
    assert parts == ("target_dtype {target_dtype} is replaced by ", Field("value"), " for 8-bit")
    assert render_template(parts) == text
    with pytest.raises(ValueError, match="bad field"):
        parse_template("a {not a name} b")


def test_head_is_the_first_sentence_and_a_banner_is_optional() -> None:
    parts = parse_template(
        "CUDA SETUP: Required library version not found: {name}. Maybe you need to compile it."
    )
    assert (
        render_template(head_of(parts)) == "CUDA SETUP: Required library version not found: {name}."
    )
    rx = re.compile(pattern_of(parts))
    assert rx.search("cuda setup: required library version not found: libbitsandbytes_cuda116.so.")
    m = rx.search("required library version not found: libbitsandbytes_cuda100.so.")
    assert m and m.group("name") == "libbitsandbytes_cuda100.so"
    assert lead_words(parts) == ("required", "library", "version", "not", "found")


def test_fields_stop_at_what_follows_them() -> None:
    rx = re.compile(
        pattern_of(parse_template("{device} with CUDA capability sm_{cc} is not compatible."))
    )
    m = rx.search("nvidia geforce rtx 5090 with cuda capability sm_120 is not compatible.")
    assert m and m.group("cc") == "120"
    rx = re.compile(pattern_of(parse_template("Your {name} GPU has compute capability {cc}.")))
    m = rx.search("your tesla t4 gpu has compute capability 7.5.")
    assert m and m.group("name") == "tesla t4" and m.group("cc") == "7.5"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("a+b", "unbounded"),
        ("(?:ab{1,3}){1,5}", "nested"),
        (r"(a)\1", "back-reference"),
        ("a{1,5000}", "unbounded"),
        ("(?:a|b){1,3}c{0,2}", None),
    ],
)
def test_linear_check(pattern: str, problem: str | None) -> None:
    found = linear_problem(pattern)
    assert (found is None) if problem is None else (found is not None and problem in found)


# -- the shipped catalog ----------------------------------------------------------------


def test_shipped_catalog_counts_per_library_and_release() -> None:
    catalog = load_catalog()
    per_library = Counter(m.library for m in catalog.messages)
    assert set(per_library) == {spec.name for spec in LIBRARIES}
    assert per_library["bitsandbytes"] >= 250 and per_library["transformers"] >= 80
    assert catalog.examined["bitsandbytes"][0] == "0.37.0"
    assert catalog.examined["torch"][0].startswith("2.0")
    # every examined release holds messages
    for library, releases in catalog.examined.items():
        seen = {v for m in catalog.messages if m.library == library for v in m.versions}
        assert seen == set(releases), library


def test_every_shipped_pattern_is_linear_and_matches_its_own_message() -> None:
    for m in load_catalog().messages:
        assert linear_problem(m.pattern) is None, m.template
        parts = parse_template(m.template)
        sample = "".join("x9" if isinstance(p, Field) else p for p in parts).lower()
        assert re.search(m.pattern, sample), m.template
        assert pattern_of(parts) == m.pattern


def test_a_message_in_some_releases_narrows_the_installed_version() -> None:
    from bnb_provision.explain.explanation import explain_text

    e = explain_text(
        "CUDA_SETUP: WARNING! libcudart.so not found in any environmental path. Searching in backup paths...\n"
        "DEBUG: Possible options found for libcudart.so: set()\n"
        "CUDA SETUP: PyTorch settings found: CUDA_VERSION=118, Highest Compute Capability: 8.6."
    )
    assert e.facts["bnb_range"].value == "0.40.1-0.43.0"
    assert e.facts["torch_cuda"].value == "11.8" and e.facts["compute_capability"].value == "8.6"


def test_compact_release_sets() -> None:
    from packaging.version import Version

    examined = tuple(Version(v) for v in ("0.37.0", "0.38.0", "0.39.0", "0.41.0", "0.43.0"))
    present = [Version("0.37.0"), Version("0.38.0"), Version("0.41.0")]
    assert compact_releases(present, examined) == "0.37.0-0.38.0, 0.41.0"


# -- checks on load ----------------------------------------------------------------------


def _broken(section: str, index: int, key: str, value: object) -> dict[str, dict[str, Any]]:
    files = _files()
    files[CURATED_FILE][section][index][key] = value
    return files


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("cause", "category", "gpu_trouble", "cause[0].category: unknown category 'gpu_trouble'"),
        ("cause", "fix", "run bnb-provision plan --gpu X.Y", "cause[0].fix: 'X.Y' is a hole"),
        (
            "cause",
            "fix",
            ["install {nonsense}", "b"],
            "cause[0].fix[0]: unknown placeholder {nonsense}",
        ),
        (
            "cause",
            "title",
            ["only {gpu}"],
            "cause[0].title: the last variant must have no {placeholder}",
        ),
        (
            "signature",
            "pattern",
            "no kernel image+",
            "signature[0].pattern: an unbounded quantifier",
        ),
        ("signature", "pattern", "No Kernel Image", "signature[0].pattern: write it in lower case"),
        (
            "message",
            "contains",
            ["a text no message has"],
            "message[0]: matches no bitsandbytes message",
        ),
        ("message", "causes", [{"id": "no-such-cause", "weight": 3}], "message[0].causes[0].id"),
        ("signature", "checked", "yesterday", "signature[0].checked: expected a date"),
    ],
)
def test_bad_curated_rows_fail_with_their_path(
    section: str, key: str, value: object, message: str
) -> None:
    with pytest.raises(CompatDBError) as err:
        build_catalog(_broken(section, 0, key, value))
    assert message in str(err.value)
    assert str(err.value).startswith(("explain.toml: ", "derived/messages.toml"))


def test_bad_catalog_rows_fail_with_their_path() -> None:
    files = _files()
    files[CATALOG_FILE]["messages"][3]["releases"] = "9.9.9"
    with pytest.raises(CompatDBError, match=r"derived/messages.toml: messages\[3\].releases"):
        build_catalog(files)
    files = _files()
    files[CATALOG_FILE]["messages"][0]["pattern"] = "(?:a+)+"
    with pytest.raises(CompatDBError, match=r"messages\[0\].pattern: an unbounded quantifier"):
        build_catalog(files)


def test_every_curated_row_is_sourced() -> None:
    curated = load_catalog().curated
    rows: list[Cause | MessageRule | Signature | Context] = [
        *curated.causes.values(),
        *curated.rules,
        *curated.signatures,
        *curated.contexts,
    ]
    assert all(r.source.startswith("https://") for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.checked) for r in rows)


# -- regeneration ------------------------------------------------------------------------


@pytest.mark.network
def test_regenerating_the_catalog_from_pypi_reproduces_the_shipped_file() -> None:
    cache = Path.home() / ".cache" / "bnb-provision" / "messages"

    def pypi() -> PypiFiles:
        return PypiFiles(cache=cache, session=requests.Session(), log=lambda _m: None)

    fresh = render_catalog(derive_catalog(pypi, lambda _m: None))
    assert fresh == (DB / CATALOG_FILE).read_text(encoding="utf-8")
