"""``compat_db/fit.toml``: the memory rules of each transformers / peft / bitsandbytes release.

A pure parser (``parse_rules``) over the TOML data and a thin reader (``load_rules``);
``FitRules.for_versions`` picks the rows that hold for the releases a fit is made for.
A bad field fails with its path, e.g. ``fit.toml: reserve[2].percent: expected an integer``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from bnb_provision.core.data import data_dir
from bnb_provision.core.fields import FieldError, Fields
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.errors import CompatDBError, FitInputError

__all__ = ["Calibration", "FitRules", "ReleaseRules", "Row", "load_rules", "parse_rules"]

SCHEMA: Final = "bnb-provision.fit-rules/1"
DEFAULT_VERSIONS: Final = {
    "transformers": "5.17.0",
    "accelerate": "1.15.0",
    "peft": "0.21.0",
    "bitsandbytes": "0.50.2",
}
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_APPLIES: Final = ("quantizer", "single_gpu")
_PEFT_RULES: Final = ("kbit_upcast", "lora_fp32", "moe_param_wrapper")


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One sourced fact: the releases it holds for, its values, where it was read."""

    table: str
    package: str
    versions: SpecifierSet
    values: tuple[tuple[str, Any], ...]
    source: str
    checked: str

    def get(self, key: str) -> Any:
        return dict(self.values)[key]

    def cite(self) -> str:
        return f"{self.package} {self.versions}: {self.source}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Calibration:
    """Constants measured on real loads (see docs/hardware-validation.md)."""

    values: tuple[tuple[str, float], ...]
    source: str
    checked: str

    def __getitem__(self, key: str) -> float:
        return dict(self.values)[key]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReleaseRules:
    """The rules that hold for one set of releases."""

    versions: tuple[tuple[str, str], ...]
    quantizer_reserve: float  # fraction of each GPU kept back by adjust_max_memory
    single_gpu_reserve: float  # fraction kept back by get_balanced_memory on one GPU
    skip_defaults: tuple[str, ...]
    skip_list_replaces_defaults: bool
    fused_expert_types: tuple[str, ...]
    transient: dict[str, float]
    peft: frozenset[str]
    blocksize_4bit: int
    nested_blocksize: int
    min_8bit_size: int
    min_paged_size: int
    state_blocksize: int
    calibration: Calibration
    sources: tuple[str, ...]

    def experts_fused(self, model_type: str) -> bool:
        return any(
            model_type == t or model_type.startswith(t + "_") for t in self.fused_expert_types
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FitRules:
    rows: tuple[Row, ...]
    calibration: Calibration

    def _pick(self, table: str, package: str, version: Version, **match: Any) -> Row:
        for row in self.rows:
            if (
                row.table == table
                and row.package == package
                and row.versions.contains(version, prereleases=True)
                and all(row.get(k) == v for k, v in match.items())
            ):
                return row
        raise FitInputError(
            f"compat_db/fit.toml has no {table} rule for {package} {version}"
            + (f" ({match})" if match else "")
            + "; give a release it covers (--transformers 5.17, --peft 0.21)"
        )

    def for_versions(self, versions: dict[str, str] | None = None) -> ReleaseRules:
        """The rules for these releases (``DEFAULT_VERSIONS`` fill the gaps)."""
        chosen = {**DEFAULT_VERSIONS, **(versions or {})}
        try:
            v = {k: Version(s) for k, s in chosen.items()}
        except InvalidVersion as exc:
            raise FitInputError(f"not a release version: {exc}") from None
        tf = v["transformers"]
        reserve = self._pick("reserve", "transformers", tf, applies="quantizer")
        single_pkg = "transformers" if tf >= Version("5") else "accelerate"
        single = self._pick("reserve", single_pkg, v[single_pkg], applies="single_gpu")
        skip = self._pick("skip", "transformers", tf)
        experts = self._pick("experts", "transformers", tf)
        transient = self._pick("transient", "transformers", tf)
        storage = self._pick("bitsandbytes_storage", "bitsandbytes", v["bitsandbytes"])
        optim = self._pick("bitsandbytes_optimizer", "bitsandbytes", v["bitsandbytes"])
        peft = [
            row
            for row in self.rows
            if row.table == "peft" and row.versions.contains(v["peft"], prereleases=True)
        ]
        used = (reserve, single, skip, experts, transient, storage, optim, *peft)
        return ReleaseRules(
            versions=tuple(sorted(chosen.items())),
            quantizer_reserve=reserve.get("percent") / 100,
            single_gpu_reserve=single.get("percent") / 100,
            skip_defaults=tuple(skip.get("defaults")),
            skip_list_replaces_defaults=skip.get("skip_list_replaces_defaults"),
            fused_expert_types=tuple(experts.get("model_types")) if experts.get("fused") else (),
            transient={k: float(transient.get(k)) for k in ("nf4", "fp4", "int8", "fused_experts")},
            peft=frozenset(str(row.get("rule")) for row in peft),
            blocksize_4bit=storage.get("blocksize_4bit"),
            nested_blocksize=storage.get("nested_blocksize"),
            min_8bit_size=optim.get("min_8bit_size"),
            min_paged_size=optim.get("min_paged_size"),
            state_blocksize=optim.get("state_blocksize"),
            calibration=self.calibration,
            sources=tuple(dict.fromkeys(r.source for r in used)),
        )


# -- parsing ---------------------------------------------------------------------------------

_TABLES: Final = {
    # table: (fields read as integers, booleans, string lists, strings)
    "reserve": ({"percent"}, set(), set(), {"applies"}),
    "skip": (set(), {"skip_list_replaces_defaults"}, {"defaults"}, set()),
    "experts": (set(), {"fused"}, {"model_types"}, set()),
    "transient": ({"nf4", "fp4", "int8", "fused_experts"}, set(), set(), set()),
    "peft": (set(), set(), set(), {"rule"}),
    "bitsandbytes_storage": ({"blocksize_4bit", "nested_blocksize"}, set(), set(), set()),
    "bitsandbytes_optimizer": (
        {"min_8bit_size", "min_paged_size", "state_blocksize"},
        set(),
        set(),
        set(),
    ),
}
_DEFAULT_PACKAGE: Final = {
    "peft": "peft",
    "bitsandbytes_storage": "bitsandbytes",
    "bitsandbytes_optimizer": "bitsandbytes",
}


def _sourced(f: Fields) -> tuple[str, str]:
    src = str(f.text("source"))
    f.check(
        bool(re.match(r"^(https://\S+|docs/\S+\.md)$", src)),
        "source",
        f"expected a public https:// URL or docs/....md, got {src!r}",
    )
    checked = str(f.text("checked"))
    f.check(
        bool(_DATE_RE.match(checked)), "checked", f"expected a date YYYY-MM-DD, got {checked!r}"
    )
    f.text("note", "")
    return src, checked


def _row(table: str, f: Fields) -> Row:
    ints, flags, lists, texts = _TABLES[table]
    package = str(f.text("package", _DEFAULT_PACKAGE.get(table, "transformers")))
    try:
        versions = SpecifierSet(f.text("versions"))
    except InvalidSpecifier:
        raise FieldError(f"{f.sub('versions')}: not a version specifier") from None
    values: dict[str, Any] = {k: f.integer(k) for k in sorted(ints)}
    values.update({k: f.flag(k) for k in sorted(flags)})
    values.update({k: tuple(f.str_list(k)) for k in sorted(lists)})
    values.update({k: f.text(k) for k in sorted(texts)})
    if table == "reserve":
        f.check(values["applies"] in _APPLIES, "applies", f"expected one of {', '.join(_APPLIES)}")
        f.check(0 <= values["percent"] < 100, "percent", "expected 0..99")  # noqa: PLR2004
    if table == "peft":
        f.check(values["rule"] in _PEFT_RULES, "rule", f"expected one of {', '.join(_PEFT_RULES)}")
    source, checked = _sourced(f)
    f.done()
    return Row(
        table=table,
        package=package,
        versions=versions,
        values=tuple(values.items()),
        source=source,
        checked=checked,
    )


def _calibration(f: Fields) -> Calibration:
    source, checked = _sourced(f)
    values = []
    for key in sorted(f.data):
        if key not in ("source", "checked", "note"):
            value = f.number(key)
            f.check(value >= 0, key, "expected a number >= 0")
            values.append((key, value))
    f.done()
    return Calibration(values=tuple(values), source=source, checked=checked)


def parse_rules(data: dict[str, Any], name: str = "fit.toml") -> FitRules:
    """Validate the parsed TOML (pure); a bad field raises CompatDBError with its path."""
    try:
        top = Fields(data, "")
        schema = top.text("schema")
        top.check(schema == SCHEMA, "schema", f"expected {SCHEMA!r}, got {schema!r}")
        rows = tuple(_row(table, f) for table in _TABLES for f in top.tables(table, None))
        cal_fields = top.table("calibration")
        assert cal_fields is not None
        calibration = _calibration(cal_fields)
        top.done()
    except FieldError as exc:
        raise CompatDBError(f"{name}: {exc}") from None
    return FitRules(rows=rows, calibration=calibration)


@functools.cache
def load_rules(path: Path | None = None) -> FitRules:
    """The shipped ``compat_db/fit.toml`` (or another file)."""
    file = path or data_dir("compat_db") / "fit.toml"
    try:
        data = toml_loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompatDBError(f"{file.name}: cannot be read as TOML ({exc})") from None
    return parse_rules(data, file.name)
