from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import CudaVersion
from bnb_provision.core.data import data_dir
from bnb_provision.db.load import load_db, read_db_files
from bnb_provision.db.model import CompatDB
from bnb_provision.db.parse import parse_db
from bnb_provision.db.rows import Feature, OsFloor
from bnb_provision.errors import CompatDBError

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def files() -> dict[str, dict[str, Any]]:
    return read_db_files(data_dir("compat_db"))


def test_shipped_db_loads_and_covers_the_required_range() -> None:
    db = load_db()
    torch = {str(r.version) for r in db.torch_releases}
    assert {"2.1.0", "2.8.0", "2.11.0", "2.15.0"} <= torch
    bnb = {str(r.version) for r in db.bnb_releases}
    assert {"0.39.0", "0.43.0", "0.45.5", "0.50.2"} <= bnb
    assert max(t.version for t in db.toolkits) >= Version("13.2")
    assert any(r.version.major == 5 for r in db.package_releases("transformers"))
    assert db.version


def test_every_curated_row_has_a_source() -> None:
    db = load_db()
    rows: list[Any] = [
        *db.toolkits,
        *db.families,
        *db.arch_changes,
        *db.gpu_models,
        *db.last_branches,
        db.bnb_windows_legacy,
        *db.torch_indexes,
        *db.torch_builds,
        *db.loader_rules,
        *db.hf_constraints,
        *db.verified,
        *db.known_bad,
    ]
    for row in rows:
        assert re.match(r"^(https://|docs/)", row.source), row


def test_derived_facts_match_the_reference(files: dict[str, Any]) -> None:
    """Spot checks against shared/reference/compat-facts.md and gpu-ground-truth.md."""
    db = load_db()
    libs = {lib.file: lib for lib in db.bnb_libs(Version("0.50.2"), "linux-x86_64")}
    assert libs["libbitsandbytes_cuda130.so"].sass == (75, 80, 86, 89, 90, 100, 120)
    assert libs["libbitsandbytes_cuda126.so"].sass == (60, 70, 75, 80, 86, 89, 90)
    assert libs["libbitsandbytes_cuda128.so"].sass == (70, 75, 80, 86, 89, 90, 100, 120)
    assert libs["libbitsandbytes_cuda130.so"].rel_ptx == (120,)
    # 0.46.0's cu128 dropped Volta; 0.47.0 re-added it
    v46 = {lib.file: lib for lib in db.bnb_libs(Version("0.46.0"), "linux-x86_64")}
    assert 70 not in v46["libbitsandbytes_cuda128.so"].sass
    v47 = {lib.file: lib for lib in db.bnb_libs(Version("0.47.0"), "linux-x86_64")}
    assert 70 in v47["libbitsandbytes_cuda128.so"].sass
    # 0.45.4's Linux wheel lacks the CPU library
    assert not [x for x in db.bnb_libs(Version("0.45.4"), "linux-x86_64") if x.backend == "cpu"]
    # Windows DLLs from the win_amd64 wheel, read by the PE reader
    win = {lib.file: lib for lib in db.bnb_libs(Version("0.50.2"), "windows-x86_64")}
    assert win["libbitsandbytes_cuda126.dll"].sass == (60, 70, 75, 80, 86, 89, 90)
    # 0.39-0.42 shipped one py3-none-any wheel of Linux libraries
    assert db.bnb_libs(Version("0.41.1"), "linux-x86_64")
    assert not db.bnb_libs(Version("0.41.1"), "windows-x86_64")
    # torch: PyPI's Linux default build per release, and Python floors
    rel = {str(r.version): r for r in db.torch_releases}
    assert rel["2.11.0"].pypi_variant("linux-x86_64") == "cu130"
    assert rel["2.15.0"].pypi_variant("linux-x86_64") == "cu132"
    assert rel["2.10.0"].pypi_variant("linux-x86_64") == "cu128"
    assert rel["2.11.0"].pypi_variant("windows-x86_64") == "cpu"
    assert rel["2.11.0"].pypi_variant("linux-aarch64") == "cu130"
    assert rel["2.10.0"].pypi_variant("linux-aarch64") == "cpu"
    assert "3.10" not in rel["2.15.0"].pythons
    b = {str(r.version): r for r in db.bnb_releases}
    assert str(b["0.50.2"].torch) in (">=2.4,<3", "<3,>=2.4")
    assert "windows-aarch64" in b["0.50.0"].platforms


def test_gpu_names() -> None:
    db = load_db()
    cases = {
        "NVIDIA H100 80GB HBM3": (9, 0),
        "NVIDIA GeForce RTX 5090": (12, 0),
        "NVIDIA GeForce RTX 4090": (8, 9),
        "NVIDIA GeForce RTX 3090": (8, 6),
        "NVIDIA A100-SXM4-80GB": (8, 0),
        "Tesla V100-SXM2-32GB": (7, 0),
        "Tesla T4": (7, 5),
        "NVIDIA GeForce GTX 1080 Ti": (6, 1),
        "Tesla P100-PCIE-16GB": (6, 0),
        "Tesla K80": (3, 7),
        "NVIDIA B200": (10, 0),
        "NVIDIA GB10": (12, 1),
        "NVIDIA RTX A6000": (8, 6),
        "NVIDIA RTX 6000 Ada Generation": (8, 9),
        "NVIDIA L4": (8, 9),
        "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": (12, 0),
    }
    for name, cc in cases.items():
        model = db.gpu_cc(name)
        assert model is not None and model.cc == cc, name
    assert db.gpu_cc("Quantum GPU 9000") is None


def _mutate(files: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    out = copy.deepcopy(files)
    name, _, rest = path.partition(":")
    node: Any = out[name]
    keys = re.findall(r"[^.\[\]]+", rest)
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("meta.toml:schema", "other/9", "meta.toml: schema: expected"),
        (
            "nvidia.toml:toolkit.3.linux",
            "five-three-five",
            "nvidia.toml: toolkit[3].linux: not a version",
        ),
        (
            "nvidia.toml:gpu.2.cc",
            "9",
            'nvidia.toml: gpu[2].cc: expected a compute capability "X.Y"',
        ),
        (
            "nvidia.toml:gpu.0.pattern",
            "([",
            "nvidia.toml: gpu[0].pattern: not a regular expression",
        ),
        (
            "torch.toml:build.1.platforms",
            ["linux-risc"],
            "torch.toml: build[1].platforms[0]: unknown platform",
        ),
        (
            "torch.toml:build.1.sass",
            [50, "sm_60"],
            "torch.toml: build[1].sass[1]: expected an integer, got string",
        ),
        (
            "torch.toml:index.0.checked",
            "yesterday",
            "torch.toml: index[0].checked: expected a date",
        ),
        (
            "torch.toml:index.0.source",
            "my memory",
            "torch.toml: index[0].source: expected a public URL",
        ),
        ("torch.toml:index_url", "https://x/", "torch.toml: index_url: must contain {variant}"),
        (
            "bitsandbytes.toml:loader_rule.1.rule",
            "fuzzy",
            "bitsandbytes.toml: loader_rule[1].rule: expected 'exact'",
        ),
        (
            "bitsandbytes.toml:loader_rule.1.bnb",
            ">>0.4",
            "bitsandbytes.toml: loader_rule[1].bnb: not a version specifier",
        ),
        (
            "derived/bitsandbytes.toml:release.12.torch",
            2,
            "derived/bitsandbytes.toml: release[12].torch: expected a string, got integer",
        ),
        (
            "derived/bitsandbytes.toml:library.5.sass",
            "70",
            "derived/bitsandbytes.toml: library[5].sass: expected an array",
        ),
        (
            "derived/torch.toml:release.0.pypi",
            ["linux=cu121"],
            "derived/torch.toml: release[0].pypi[0]: expected PLATFORM=VARIANT",
        ),
        (
            "huggingface.toml:constraint.0.requires",
            ["bitsandbytes>=>0.46"],
            "huggingface.toml: constraint[0].requires[0]: not a requirement",
        ),
        (
            "combinations.toml:verified.0.evidence",
            _DELETE,
            "combinations.toml: verified[0].evidence: required field is missing",
        ),
        (
            "combinations.toml:verified.0.sourse",
            "x",
            "combinations.toml: verified[0].sourse: unknown field (did you mean 'source'?)",
        ),
        (
            "torch.toml:build.6.channel",
            "pip",
            "torch.toml: build[6].channel: unknown channel 'pip' (one of index, pypi, any)",
        ),
        (
            "huggingface.toml:constraint.4.profiles",
            ["qlroa"],
            (
                "huggingface.toml: constraint[4].profiles[0]: unknown profile 'qlroa' (one of "
                "inference, qlora)"
            ),
        ),
        (
            "combinations.toml:known_bad.0.platforms",
            ["linux"],
            (
                "combinations.toml: known_bad[0].platforms[0]: unknown platform 'linux' (one of "
                "linux-x86_64, linux-aarch64,"
            ),
        ),
        (
            "combinations.toml:verified.0.platform",
            "any",
            "combinations.toml: verified[0].platform: unknown platform 'any'",
        ),
        (
            "derived/bitsandbytes.toml:library.0.platform",
            "linux-riscv64",
            "derived/bitsandbytes.toml: library[0].platform: unknown platform 'linux-riscv64'",
        ),
        (
            "errors.toml:pattern.3.category",
            "cuda_mismatch",
            (
                "errors.toml: pattern[3].category: unknown category 'cuda_mismatch' "
                "(did you mean 'cuda_runtime_mismatch'?)"
            ),
        ),
        (
            "errors.toml:pattern.3.category",
            "gremlins",
            "errors.toml: pattern[3].category: unknown category 'gremlins' (one of ",
        ),
        (
            "errors.toml:pattern.3.fix",
            "reinstall for {gpu}",
            "errors.toml: pattern[3].fix: unknown placeholder {gpu} (known here: ",
        ),
        (
            "errors.toml:pattern.3.explanation",
            "the {0} library",
            "errors.toml: pattern[3].explanation: unknown placeholder {0}",
        ),
        (
            "errors.toml:pattern.3.explanation",
            "a dict {like: this}",
            "errors.toml: pattern[3].explanation: unknown placeholder {like}",
        ),
        (
            "errors.toml:pattern.3.fix",
            "a stray } brace",
            "errors.toml: pattern[3].fix: not a format string",
        ),
    ],
)
def test_bad_fields_name_their_path(
    files: dict[str, Any], path: str, value: object, message: str
) -> None:
    with pytest.raises(CompatDBError) as info:
        parse_db(_mutate(files, path, value))
    assert str(info.value).startswith(message), str(info.value)


def test_missing_file(files: dict[str, Any]) -> None:
    broken = dict(files)
    del broken["torch.toml"]
    with pytest.raises(CompatDBError, match=r"torch\.toml: file is missing"):
        parse_db(broken)


def test_unparsable_toml(tmp_path: Path) -> None:
    (tmp_path / "meta.toml").write_text("schema = [unclosed\n")
    with pytest.raises(CompatDBError, match=r"meta\.toml: cannot be read as TOML"):
        read_db_files(tmp_path)


def test_loader_rules_by_era() -> None:
    db = load_db()
    assert db.loader_rule("0.39.0") == "exact"
    assert db.loader_rule("0.45.5") == "exact"
    assert db.loader_rule("0.49.2") == "exact"
    assert db.loader_rule("0.50.0") == "same-major"
    assert db.loader_rule_row("0.42.0").nocublaslt_below == (7, 5)
    assert db.loader_rule_row("0.45.0").nocublaslt_below is None


def test_driver_floors() -> None:
    db = load_db()
    assert db.min_driver("12.6", "linux")[0] == Version("525.60.13")
    assert db.min_driver("12.6", "windows")[0] == Version("528.33")
    assert db.min_driver("13.2", "linux")[0] == Version("580")
    assert db.min_driver("10.2", "linux")[0] is None
    assert db.max_cuda_for_driver(Version("550.54.14"), "linux") == Version("12.4")


def test_validated_db_is_cached_and_a_broken_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "compat_db"
    shutil.copytree(data_dir("compat_db"), root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BNB_PROVISION_NO_DB_CACHE", raising=False)
    first = load_db.__wrapped__(root)
    (cache,) = (tmp_path / "cache" / "bnb-provision" / "compat-db").glob("*.json")
    again = load_db.__wrapped__(root)
    assert again == first and again is not first
    cache.write_bytes(b"not json {")
    assert load_db.__wrapped__(root) == first
    # editing a file changes the key: the edit is validated, not served from the cache
    meta = root / "meta.toml"
    meta.write_text(meta.read_text().replace('version = "', 'version = "9'))
    assert load_db.__wrapped__(root).version.startswith("9")


def test_the_cache_holds_plain_data_that_is_validated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached DB is the parsed TOML as JSON, never pickled classes: a bad value planted
    in it fails validation with the field's path, as it would in the TOML."""
    import json
    import shutil

    from bnb_provision.errors import CompatDBError

    root = tmp_path / "compat_db"
    shutil.copytree(data_dir("compat_db"), root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_db.__wrapped__(root)
    (entry,) = (tmp_path / "cache" / "bnb-provision" / "compat-db").glob("*.json")
    files = json.loads(entry.read_text())
    files["meta.toml"]["version"] = 7
    entry.write_text(json.dumps(files))
    with pytest.raises(CompatDBError, match=r"meta\.toml"):
        load_db.__wrapped__(root)


def test_an_edited_module_invalidates_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys hold the code's identity: a module edited in place (an editable install while
    someone works) gives another key, so nothing cached by the old code is read."""
    import shutil

    from bnb_provision.core import cache

    pkg = tmp_path / "pkg"
    shutil.copytree(Path(cache.__file__).parent.parent, pkg)
    monkeypatch.setattr(cache, "_PACKAGE", pkg)
    cache.code_identity.cache_clear()
    before = cache.key_for("compat-db", "x")
    module = pkg / "db" / "model.py"
    module.write_text(module.read_text() + "\n# edited\n")
    cache.code_identity.cache_clear()
    after = cache.key_for("compat-db", "x")
    cache.code_identity.cache_clear()
    assert before != after


def test_a_placeholder_may_name_a_group_of_its_own_pattern(files: dict[str, Any]) -> None:
    broken = _mutate(files, "errors.toml:pattern.3.fix", "reinstall for {gpu}")
    ok = _mutate(broken, "errors.toml:pattern.3.pattern", r"no GPU (?P<gpu>\w+) here")
    pattern = next(
        p for p in parse_db(ok).errors if p.id == files["errors.toml"]["pattern"][3]["id"]
    )
    assert pattern.fix == "reinstall for {gpu}"


def test_every_placeholder_the_loader_allows_is_one_explain_fills() -> None:
    """The loader's list (PLACEHOLDERS) and what explain formats with stay one list: a
    pattern using every allowed name explains without a KeyError."""
    from dataclasses import replace

    from bnb_provision.db.rows import PLACEHOLDERS, ErrorPattern
    from bnb_provision.doctor.explain import explain_text

    text = " ".join(f"{name}={{{name}}}" for name in PLACEHOLDERS)
    probe = ErrorPattern(
        id="probe",
        pattern=re.compile("probe error"),
        category="other",
        title="probe",
        explanation=text,
        fix=text,
        source="https://example.org/",
    )
    (finding,) = explain_text("probe error", replace(load_db(), errors=(probe,)))
    assert finding.fix == " ".join(f"{k}={v}" for k, v in PLACEHOLDERS.items())


def _broken_db(tmp_path: Path, old: str, new: str) -> Path:
    import shutil

    root = tmp_path / "compat_db"
    shutil.copytree(data_dir("compat_db"), root)
    errors = root / "errors.toml"
    text = errors.read_text(encoding="utf-8")
    assert old in text
    errors.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'category = "cuda_runtime_mismatch"',
            'category = "cuda_mismatch"',
            (
                "errors.toml: pattern[0].category: unknown category 'cuda_mismatch' "
                "(did you mean 'cuda_runtime_mismatch'?)"
            ),
        ),
        (
            "load libbitsandbytes_cuda{cuda} whatever",
            "load libbitsandbytes_cuda{cuda} on {gpu} whatever",
            "errors.toml: pattern[0].explanation: unknown placeholder {gpu}",
        ),
    ],
)
def test_a_bad_error_pattern_fails_at_load_and_explain_exits_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, message: str
) -> None:
    """A typo'd category or an unknown placeholder in errors.toml is a CompatDBError at
    load (exit code 5 through the CLI), not a traceback when explain formats it."""
    from click.testing import CliRunner

    from bnb_provision.cli import cli
    from bnb_provision.db import load

    monkeypatch.setenv("BNB_PROVISION_NO_CACHE", "1")
    root = _broken_db(tmp_path, old, new)
    with pytest.raises(CompatDBError) as info:
        load_db.__wrapped__(root)
    assert str(info.value).startswith(message), str(info.value)

    monkeypatch.setattr(load, "load_db", lambda _root=None: load_db.__wrapped__(root))
    res = CliRunner().invoke(cli, ["explain"], input="CUDA error: no kernel image\n")
    assert res.exit_code == 5, res.output
    assert f"Error: {message}" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)


# -- version floors and feature floors live in the DB, and the code reads them there ----


def test_floors_are_db_rows_with_sources() -> None:
    db = load_db()
    assert db.min_cc("bf16") == (8, 0)
    assert db.min_cc("llm_int8") == (7, 5)
    assert db.bnb_os_floor("windows") == Version("0.43.0")
    assert db.bnb_os_floor("macos") == Version("0.49.0")
    assert (
        "bitsandbytes",
        SpecifierSet(">=0.46.1"),
    ) in db.hf_requires("transformers", Version("5.0.0"))
    assert all(n != "bitsandbytes" for n, _ in db.hf_requires("transformers", Version("4.50.0")))
    rows: list[OsFloor | Feature] = [
        *db.os_floors,
        *(f for f in db.features if f.feature == "bf16"),
    ]
    for row in rows:
        assert row.source.startswith("https://") and row.checked


def test_bitsandbytes_floors_follow_its_documentation_release_by_release() -> None:
    """NF4/FP4: 5.0 in the 0.45 to 0.47 docs (Maxwell, deprecated), 6.0 from 0.48; a
    release whose docs name none falls back to the current row; LLM.int8() is 7.5 in all."""
    db = load_db()
    assert db.min_cc("nf4_fp4", Version("0.47.0")) == (5, 0)
    assert db.min_cc("nf4_fp4", Version("0.48.0")) == (6, 0)
    assert db.min_cc("nf4_fp4", Version("0.50.2")) == (6, 0)
    assert db.min_cc("nf4_fp4") == (6, 0)  # the current documentation
    assert db.feature_row("nf4_fp4", Version("0.44.1")).bnb == SpecifierSet(">=0.48")
    assert db.min_cc("optimizers_8bit", Version("0.44.1")) == (3, 5)
    assert db.min_cc("llm_int8", Version("0.41.1")) == (7, 5)
    for row in db.features:
        if row.bnb is not None:
            assert "/bitsandbytes/blob/0." in row.source and row.checked


def test_driver_facts_for_plans_without_a_driver() -> None:
    """The last branch of old GPUs, the newest CUDA a driver JIT-compiles, the floors."""
    db = load_db()
    assert db.last_branch(((6, 1), (8, 0))).branch == 580  # type: ignore[union-attr]
    assert db.last_branch(((3, 7),)).branch == 470  # type: ignore[union-attr]
    assert db.last_branch(((7, 5),)) is None
    assert db.driver_cuda(Version("580.95.05"), "linux") == (13, 0)
    assert db.driver_cuda(Version("595.45.04"), "linux") == (13, 2)
    assert db.driver_cuda(Version("580"), "linux") == (12, 9)  # below 13.0 GA's 580.65.06
    assert db.driver_cuda(Version("595.79"), "windows") == (12, 9)  # no Windows 13.x rows
    floors = db.driver_floors("linux")
    assert floors == tuple(sorted(floors)) and str(floors[0]) == "450.80.02"
    assert str(db.toolkit_driver(CudaVersion(13, 2), "linux")) == "595.45.04"


def test_derived_macos_floors_and_companions() -> None:
    db = load_db()
    by_version = {str(r.version): r for r in db.torch_releases}
    assert str(by_version["2.11.0"].macos_floor("3.12")) == "11.0"
    assert str(by_version["2.15.0"].macos_floor("3.12")) == "14.0"
    assert {str(r.macos) for r in db.bnb_releases if r.macos} == {"14.0"}
    vision = {str(r.version): r for r in db.companion_releases("torchvision")}
    assert vision["0.26.0"].torch == SpecifierSet("==2.11.0")
    audio = {str(r.version): r for r in db.companion_releases("torchaudio")}
    assert audio["2.11.0"].torch is None  # its metadata names no torch
    legacy = db.bnb_windows_legacy
    assert legacy.cuda_tags(Version("0.38.0")) == legacy.cuda
    assert legacy.cuda_tags(Version("0.41.1"))[-3:] == ("120", "121", "122")


def test_the_os_floors_agree_with_the_derived_wheels() -> None:
    """The curated floors are the first releases PyPI has a wheel for that OS."""
    db = load_db()
    for os_name in ("windows", "macos"):
        first = min(
            r.version
            for r in db.bnb_releases
            if any(p.startswith(f"{os_name}-") for p in r.platforms)
        )
        assert db.bnb_os_floor(os_name) == first, os_name


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "bitsandbytes.toml:os_floor.1.os",
            "mac",
            "bitsandbytes.toml: os_floor[1].os: unknown OS 'mac' (did you mean 'macos'?)",
        ),
        (
            "bitsandbytes.toml:os_floor.1.os",
            "windows",
            "bitsandbytes.toml: os_floor[1]: a second row for 'windows'",
        ),
        (
            "nvidia.toml:feature.0.feature",
            "fp8",
            "nvidia.toml: feature[0].feature: unknown feature 'fp8' (one of bf16)",
        ),
        (
            "bitsandbytes.toml:feature.0.feature",
            "bf16",
            "bitsandbytes.toml: feature[0].feature: unknown feature 'bf16'",
        ),
        (
            "nvidia.toml:feature",
            [],
            "nvidia.toml: feature: no row for 'bf16' (one row each for bf16)",
        ),
        (  # a feature with several rows needs each one's bitsandbytes range
            "bitsandbytes.toml:feature.1.bnb",
            _DELETE,
            "bitsandbytes.toml: feature[1]: 'nf4_fp4' has several rows: each needs its bnb range",
        ),
        (
            "nvidia.toml:last_branch.1.below_cc",
            "seven",
            'nvidia.toml: last_branch[1].below_cc: expected a compute capability "X.Y"',
        ),
        (
            "bitsandbytes.toml:windows_legacy.cuda_added.0",
            "0.38.1",
            "bitsandbytes.toml: windows_legacy.cuda_added[0]: expected VERSION=TAG",
        ),
        (
            "derived/torch.toml:release.0.macos.0",
            "3.8",
            "derived/torch.toml: release[0].macos[0]: expected PYTHON=MACOS",
        ),
        (
            "derived/torchvision.toml:release.0.package",
            "torchtext",
            "derived/torchvision.toml: release[0].package: unknown companion 'torchtext'",
        ),
    ],
)
def test_floor_rows_are_checked(
    files: dict[str, Any], path: str, value: object, message: str
) -> None:
    with pytest.raises(CompatDBError) as info:
        parse_db(_mutate(files, path, value))
    assert str(info.value).startswith(message), str(info.value)


def _with_feature(db: CompatDB, name: str, cc: tuple[int, int]) -> CompatDB:
    from dataclasses import replace

    rows = tuple(replace(f, min_cc=cc) if f.feature == name else f for f in db.features)
    return replace(db, features=rows)


def test_doctor_and_plan_read_the_floors_from_the_db() -> None:
    """Move a floor in the DB and the findings and the plan move with it."""
    from dataclasses import replace

    from bnb_provision.detect.snapshot import load_machine
    from bnb_provision.doctor.diagnose import diagnose
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.inputs import plan_for

    db = load_db()
    h100 = load_machine(ROOT / "tests" / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json")
    assert "no-bf16" not in {f.id for f in diagnose(h100, db)}
    strict = _with_feature(db, "bf16", (9, 5))
    assert "no-bf16" in {f.id for f in diagnose(h100, strict)}
    assert "torch.bfloat16" in plan_for(h100, db, Constraints()).snippet
    plan = plan_for(h100, strict, Constraints())
    assert "torch.float16" in plan.snippet
    assert any("has no bfloat16" in w for w in plan.warnings)

    mac = replace(h100, os=replace(h100.os, system="macos"))
    assert "macos-old-bnb" not in {f.id for f in diagnose(mac, db)}
    later = replace(
        db,
        os_floors=tuple(
            replace(f, bnb=Version("0.51.0")) if f.os == "macos" else f for f in db.os_floors
        ),
    )
    old = next(f for f in diagnose(mac, later) if f.id == "macos-old-bnb")
    assert old.fix is not None and "bitsandbytes >= 0.51.0" in old.fix


def test_adopting_a_system_package_reads_the_hf_floors_from_the_db() -> None:
    """init --torch system keeps an installed transformers only when the plan's
    bitsandbytes meets what that transformers asks (huggingface.toml)."""
    from dataclasses import replace

    from bnb_provision.detect.snapshot import load_machine
    from bnb_provision.env.adopt import satisfies_floors as _satisfies_floors
    from bnb_provision.plan.constraints import Constraints
    from bnb_provision.plan.inputs import plan_for

    db = load_db()
    h100 = load_machine(ROOT / "tests" / "fixtures" / "snapshots" / "h100-bnb-0.50.2.json")
    plan = plan_for(h100, db, Constraints())
    old_bnb = replace(
        plan,
        bitsandbytes=replace(plan.bitsandbytes, version=Version("0.46.0")),
        packages=tuple((n, "0.46.0" if n == "bitsandbytes" else v) for n, v in plan.packages),
    )
    assert _satisfies_floors(db, plan, "transformers", "5.0.0")
    assert not _satisfies_floors(db, old_bnb, "transformers", "5.0.0")
    relaxed = replace(
        db,
        hf_constraints=tuple(
            replace(c, requires=(("bitsandbytes", SpecifierSet(">=0.45")),))
            if c.package == "transformers" and c.versions.contains("5.0")
            else c
            for c in db.hf_constraints
        ),
    )
    assert _satisfies_floors(relaxed, old_bnb, "transformers", "5.0.0")


# -- cross-table facts, and the documentary keys ------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "torch.toml:build.3.sass",
            [50, 60, 70, 75, 80, 86, 90, 100],
            (
                "torch.toml: build[3].sass: sm_100 needs CUDA 12.8 (adds Blackwell (sm_100, "
                "sm_101, sm_120)), but cu126 is CUDA 12.6"
            ),
        ),
        (
            "torch.toml:build.8.ptx",
            [70],
            (
                "torch.toml: build[8].ptx: sm_70 is older than sm_75, the oldest target from "
                "CUDA 13.0 on"
            ),
        ),
        (
            "derived/bitsandbytes.toml:library.574.sass",
            [50, 90, 120],
            (
                "derived/bitsandbytes.toml: library[574] (libbitsandbytes_cuda126.so of 0.45.0): "
                "sm_120 needs CUDA 12.8"
            ),
        ),
    ],
)
def test_kernel_lists_agree_with_what_their_toolkit_can_target(
    files: dict[str, Any], path: str, value: object, message: str
) -> None:
    """nvidia.toml's [[arch_change]] rows bound every torch build and bitsandbytes library."""
    with pytest.raises(CompatDBError) as info:
        parse_db(_mutate(files, path, value))
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("nvidia.toml:toolkit.0.label", 118, "nvidia.toml: toolkit[0].label: expected a string"),
        ("nvidia.toml:toolkit.0.lable", "x", "nvidia.toml: toolkit[0].lable: unknown field"),
        ("nvidia.toml:gpu.0.family", ["x"], "nvidia.toml: gpu[0].family: expected a string"),
        (
            "derived/torch.toml:release.0.date",
            "yesterday",
            "derived/torch.toml: release[0].date: expected a date",
        ),
        ("torch.toml:build.0.binary", "yes", "torch.toml: build[0].binary: expected true or"),
        (
            "combinations.toml:verified.0.packages.peft",
            21,
            "combinations.toml: verified[0].packages.peft: expected a string",
        ),
    ],
)
def test_documentary_keys_are_still_checked(
    files: dict[str, Any], path: str, value: object, message: str
) -> None:
    """Keys kept for readers only (label, branch, family, date, rocm, binary, note, a
    verified run's python and packages) reach no row, but their shape is validated."""
    with pytest.raises(CompatDBError) as info:
        parse_db(_mutate(files, path, value))
    assert str(info.value).startswith(message), str(info.value)
