"""The GPTQ / AWQ stacks: their facts (curated, and derived from PyPI metadata), the
library a lock pins, the warnings, the lock's name; and the derivation of
derived/stacks.toml from a stand-in index (a wheel's METADATA, an sdist's PKG-INFO)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.cli import cli
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.derive import Deriver
from bnb_provision.db.load import load_db
from bnb_provision.db.rows import PackageRelease
from bnb_provision.db.stacks import StackDB, StackRelease, load_stacks, parse_stacks
from bnb_provision.detect.snapshot import machine_from_dict
from bnb_provision.errors import CompatDBError, NoPlanError
from bnb_provision.lock.stacks import choose_stack
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.inputs import plan_for
from tests.support.index import make_sdist, make_wheel, serve_index

A100 = machine_from_dict(
    {
        "os": {"system": "linux", "arch": "x86_64"},
        "python": {"version": "3.12"},
        "nvidia": {"driver": "580.95.05"},
        "gpus": [{"name": "NVIDIA A100"}],
    }
)


def test_the_shipped_facts_load_with_their_sources() -> None:
    facts = load_stacks()
    awq = facts.info("awq")
    assert awq is not None and awq.status == "archived" and awq.successor == "llmcompressor"
    assert "officially deprecated" in awq.note and awq.source.startswith("https://")
    gptq = facts.info("gptq")
    assert gptq is not None and gptq.package == "gptqmodel" and gptq.status == "maintained"
    assert {r.release.package for r in facts.releases} == {
        "gptqmodel",
        "autoawq",
        "llmcompressor",
        "compressed-tensors",
    }
    (newest, *_) = facts.releases_of("gptqmodel")
    assert newest.dists == ("sdist",)  # PyPI has no gptqmodel wheel
    compiler = facts.compiler("gptqmodel", Version("6.0.3"))
    assert compiler is not None and compiler.when == "install"


def test_a_stack_pins_the_newest_library_its_own_requirements_allow() -> None:
    newest = plan_for(A100, load_db(), Constraints())
    gptq = choose_stack(newest, "gptq")
    assert gptq.pin == "gptqmodel==7.7.0"  # torch>=2.14.1, transformers>=5.20.2: both met
    (warning,) = gptq.warnings
    assert "PyPI has no wheel of it" in warning and "nvcc >= 12.8" in warning
    older = plan_for(A100, load_db(), Constraints(torch="2.13"))
    assert choose_stack(older, "gptq").pin == "gptqmodel==7.6.0"  # 7.7.0 needs torch>=2.14.1
    awq = choose_stack(newest, "awq")
    assert awq.pin == "autoawq==0.2.9"
    assert "archived upstream" in awq.warnings[0] and "successor: llmcompressor" in awq.warnings[0]
    bnb = choose_stack(newest, "bnb")
    assert bnb.pin == f"bitsandbytes=={newest.bitsandbytes.version}" and not bnb.warnings


def test_no_release_that_fits_is_a_no_plan_error_with_the_nearest() -> None:
    plan = plan_for(A100, load_db(), Constraints(torch="2.13"))
    only = StackRelease(
        release=PackageRelease(
            package="gptqmodel",
            version=Version("9.0.0"),
            requires_python=SpecifierSet(">=3.10"),
            requires=(("torch", SpecifierSet(">=2.16")),),
        ),
        dists=("wheel",),
    )
    facts = StackDB(stacks=load_stacks().stacks, compilers=(), releases=(only,))
    with pytest.raises(NoPlanError) as info:
        choose_stack(plan, "gptq", facts)
    assert "the newest, gptqmodel 9.0.0, needs torch>=2.16 (the plan has 2.13" in str(info.value)


def test_a_bad_stack_row_names_its_field() -> None:
    curated = {
        "schema": "bnb-provision.stacks/1",
        "stack": [{"stack": "gptq", "package": "gptqmodel", "status": "abandoned"}],
    }
    with pytest.raises(CompatDBError, match=r"stacks\.toml: stack\[0\]\.status: unknown status"):
        parse_stacks(curated, {})
    with pytest.raises(CompatDBError, match=r"derived/stacks\.toml: release\[0\]\.dists\[0\]"):
        parse_stacks(
            {"schema": "bnb-provision.stacks/1"},
            {"release": [{"package": "x", "version": "1", "dists": ["egg"]}]},
        )


def test_a_gptq_lock_is_named_after_what_it_holds(tmp_path: Path) -> None:
    """A real lock of --stack gptq from a stand-in PyPI: named after gptqmodel, no
    bitsandbytes in it, the compiler warning in its header, its tool table and on stderr."""
    plan = plan_for(A100, load_db(), Constraints())
    house = tmp_path / "pypi"
    house.mkdir()
    tag = "cp312-cp312-manylinux_2_28_x86_64"
    make_wheel(house, "torch", str(plan.torch.version), {"torch/__init__.py": b""}, tag=tag)
    for name, version in (*plan.packages[2:], ("gptqmodel", "7.7.0")):
        make_wheel(house, name, version, {f"{name}/__init__.py": b""})
    make_wheel(house, "bitsandbytes", "0.50.2", {"bitsandbytes/__init__.py": b""})  # a decoy
    snap = tmp_path / "a100.json"
    snap.write_text(json.dumps(A100.to_dict()))
    with serve_index(sorted(house.iterdir())) as (url, _):
        res = CliRunner().invoke(
            cli,
            ["lock", "--stack", "gptq", "--machine", str(snap), "-o", str(tmp_path / "locks"),
             "--index-url", f"{url}/simple", "--json"],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    (lk,) = json.loads(res.stdout)["locks"]
    t = plan.torch
    name = f"gptq-linux-x86_64-py3_12-torch{t.version}-{t.variant}-gptqmodel7_7_0"
    assert lk["name"] == name.replace(".", "_")
    assert "gptqmodel" in lk["packages"] and "bitsandbytes" not in lk["packages"]
    assert "nvcc >= 12.8" in lk["warnings"][0]  # under --json, in the document only
    req = Path(lk["requirements"]).read_text()
    assert f"# Plan: torch {t.version}+{t.variant}, gptqmodel 7.7.0, Python 3.12," in req
    assert "# Warning: gptqmodel 7.7.0: PyPI has no wheel of it" in req
    tool = toml_loads(Path(lk["pylock"]).read_text())["tool"]["bnb-provision"]
    assert tool["holds"] == "gptqmodel==7.7.0" and "bitsandbytes" not in tool
    manifest = toml_loads((tmp_path / "locks" / "bnb-provision-locks.toml").read_text())
    (c,) = manifest["class"]
    assert (c["stack"], c["holds"]) == ("gptq", "gptqmodel==7.7.0") and "bitsandbytes" not in c


def test_derived_stack_facts_come_from_wheels_and_sdists(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    make_sdist(files, "gptqmodel", "7.7.0", requires=("torch>=2.14.1", "transformers>=5.20.2"))
    make_sdist(files, "gptqmodel", "7.6.0", requires=("torch>=2.8.0",))
    make_wheel(
        files,
        "autoawq",
        "0.2.7.post3",
        {"awq/__init__.py": b""},
        requires=("torch", 'flash-attn; extra == "kernels"'),
        requires_python=">=3.8.0",
    )
    import requests

    with serve_index(sorted(files.iterdir())) as (url, _):
        d = Deriver(cache=tmp_path / "cache", session=requests.Session(), index=url)
        text = d.stacks_toml({"gptqmodel": "7.0.0", "autoawq": "0.2.0"})
    rows = toml_loads(text)["release"]
    assert [(r["package"], r["version"], r["dists"]) for r in rows] == [
        ("gptqmodel", "7.6.0", ["sdist"]),
        ("gptqmodel", "7.7.0", ["sdist"]),
        ("autoawq", "0.2.7.post3", ["wheel"]),
    ]
    assert rows[1]["requires"] == ["torch>=2.14.1", "transformers>=5.20.2"]
    assert rows[2]["requires"] == ["torch"] and rows[2]["requires_python"] == ">=3.8.0"
    facts = parse_stacks(
        toml_loads((Path(__file__).parent.parent / "compat_db" / "stacks.toml").read_text()),
        toml_loads(text),
    )
    assert facts.releases_of("gptqmodel")[0].release.version == Version("7.7.0")
