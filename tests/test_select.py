"""Which manifest class a machine takes (lock.select, a pure function), the lock header's
Needs line, and the request a stamp records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnb_provision.env.stamp import Request, Stamp, read_stamp, stamp_from_dict
from bnb_provision.errors import NoPlanError, SnapshotError
from bnb_provision.lock.manifest import LockClass, Manifest
from bnb_provision.lock.pins import Needs, read_lock_pins
from bnb_provision.lock.select import MachineFacts, match_class, select_class
from bnb_provision.plan.constraints import Constraints


def _class(name: str, variant: str, archs: tuple[str, ...], floor: str, **kw: str) -> LockClass:
    values: dict[str, object] = {
        "name": name,
        "requirements": f"{name}.requirements.txt",
        "pylock": f"pylock.{name}.toml",
        "os": "linux",
        "arch": "x86_64",
        "python": "3.12",
        "driver_floor": floor,
        "gpu_archs": archs,
        "torch": "2.14.1",
        "variant": variant,
        "bitsandbytes": "0.50.2",
        "lock_sha256": "a" * 64,
        "machines": (name,),
    }
    values.update(kw)
    return LockClass(**values)  # type: ignore[arg-type]


CU126 = _class("cu126", "cu126", ("6.1", "8.0", "8.6"), "525.60.13")
CU130 = _class("cu130", "cu130", ("8.0", "9.0"), "580.65.06")
CPU = _class("cpu", "cpu", (), "")
WIN = _class("win", "cu126", ("8.9",), "528.33", os="windows")
MANIFEST = Manifest(
    folder=Path("locks"), generator="t", db_version="1", classes=(WIN, CPU, CU130, CU126)
)


def _facts(
    driver: str | None, *archs: str, python: str = "3.12", os: str = "linux"
) -> MachineFacts:
    return MachineFacts(os=os, arch="x86_64", python=python, driver=driver, gpu_archs=archs)


@pytest.mark.parametrize(
    ("facts", "chosen"),
    [
        (_facts("550.54.14", "6.1"), "cu126"),  # Pascal: only the cu126 class lists 6.1
        (_facts("550.54.14", "8.0"), "cu126"),  # driver below cu130's floor
        (_facts("580.95.05", "8.0"), "cu130"),  # both fit: the newer build its floor allows
        (_facts("580.95.05", "8.0", "8.6"), "cu126"),  # only cu126 lists both
        (_facts("580.95.05", "9.0"), "cu130"),
        (_facts(None), "cpu"),
        (_facts("572.61", "8.9", os="windows"), "win"),
    ],
)
def test_the_class_whose_facts_match(facts: MachineFacts, chosen: str) -> None:
    assert select_class(MANIFEST, facts).chosen.name == chosen


def test_the_choice_is_explained() -> None:
    s = select_class(MANIFEST, _facts("580.95.05", "8.0"))
    assert s.explain() == (
        "cu130: linux-x86_64; Python 3.12; driver 580.95.05 >= 580.65.06; GPU architectures "
        "8.0 among the class's 8.0 9.0 (preferred over cu126)"
    )


@pytest.mark.parametrize(
    ("facts", "nearest", "why"),
    [
        (_facts("550.54.14", "7.5"), "cu126", "this machine's 7.5 is not among them"),
        (_facts("550.54.14", "9.0"), "cu130", "needs NVIDIA driver >= 580.65.06; this machine"),
        (_facts("580.95.05", "8.0", python="3.11"), "cu130", "for Python 3.12, not 3.11"),
        (_facts("550.54.14", "12.0"), "cu126", "12.0 is not among them"),
    ],
)
def test_no_fit_names_the_nearest_class_and_why(
    facts: MachineFacts, nearest: str, why: str
) -> None:
    with pytest.raises(NoPlanError) as info:
        select_class(MANIFEST, facts)
    assert f"Nearest: {nearest} (for {nearest}): " in str(info.value)
    assert why in str(info.value)


def test_a_machine_without_gpu_takes_a_cuda_class_only_when_asked() -> None:
    cuda_only = Manifest(folder=Path("l"), generator="t", db_version="1", classes=(CU126, CU130))
    with pytest.raises(NoPlanError, match="has no NVIDIA GPU; pass --cuda-without-gpu"):
        select_class(cuda_only, _facts(None))
    assert select_class(cuda_only, _facts(None), cuda_without_gpu=True).chosen is CU130
    # asked for CUDA, a CPU class is not taken in its place
    assert select_class(MANIFEST, _facts(None), cuda_without_gpu=True).chosen is CU130
    assert not match_class(CPU, _facts("550.54.14", "8.0")).fits  # GPUs: no CPU lock


def test_needs_line_round_trip() -> None:
    for needs in (
        Needs(cuda=True, driver_floor="525.60.13", gpu_archs=("6.1", "8.0")),
        Needs(cuda=False, driver_floor="", gpu_archs=()),
        Needs(cuda=True, driver_floor="", gpu_archs=()),
    ):
        assert Needs.parse(f"# Needs: {needs.line()}") == needs
    assert Needs.parse("# Plan: torch 2.13.0+cpu") is None


def test_read_lock_pins_reads_every_pin_and_the_header(tmp_path: Path) -> None:
    lock = tmp_path / "x.requirements.txt"
    lock.write_text(
        "# Plan: torch 2.11.0+cu130, bitsandbytes 0.50.2, Python 3.12, linux-x86_64\n"
        "# Needs: NVIDIA driver >= 580.65.06; GPU architectures 9.0\n"
        "torch==2.11.0 \\\n    --hash=sha256:ab\nTransformers==5.24.0 \\\n    --hash=sha256:cd\n"
    )
    pins = read_lock_pins(lock)
    assert pins.torch == "2.11.0" and pins.torch_variant == "cu130"  # PyPI's build: no +local
    assert pins.packages == (("torch", "2.11.0"), ("transformers", "5.24.0"))
    assert pins.needs == Needs(cuda=True, driver_floor="580.65.06", gpu_archs=("9.0",))


def _stamp(request: Request | None) -> Stamp:
    return Stamp(
        created="2026-11-29T00:00:00+00:00",
        driver=None,
        gpus=(),
        torch="2.13.0+cpu",
        bitsandbytes="0.50.2",
        library=None,
        lock_sha256=None,
        db_version="1",
        verified=False,
        request=request,
    )


def test_the_stamp_records_the_request(tmp_path: Path) -> None:
    for request in (
        Request(stack="gptq", constraints=Constraints(torch="2.13", profile="qlora")),
        Request(
            stack="bnb",
            constraints=Constraints(),
            lock="/team/locks",
            lock_file="/team/locks/a.requirements.txt",
            cuda_without_gpu=True,
        ),
        None,  # a stamp written before requests were recorded
    ):
        stamp = _stamp(request)
        assert stamp_from_dict(json.loads(json.dumps(stamp.to_dict()))) == stamp
    assert "request" not in _stamp(None).to_dict()
    bad = _stamp(Request(stack="bnb", constraints=Constraints())).to_dict()
    bad["request"]["stack"] = "gtpq"
    (tmp_path / "bnb-provision-stamp.json").write_text(json.dumps(bad))
    with pytest.raises(SnapshotError, match=r"request\.stack: unknown stack 'gtpq'"):
        read_stamp(tmp_path)


def test_the_request_says_what_a_command_line_would() -> None:
    assert Request(stack="bnb", constraints=Constraints(torch="2.13")).describe() == (
        "--torch 2.13 --stack bnb"
    )
    assert Request(stack="bnb", constraints=Constraints(), lock="/l").describe() == "--lock /l"


def test_a_manifest_of_another_stack_is_refused_with_the_flag_to_pass(tmp_path: Path) -> None:
    from bnb_provision.db.load import load_db
    from bnb_provision.detect.snapshot import machine_from_dict
    from bnb_provision.env.build import BuildOptions, init_env
    from bnb_provision.errors import LockfileError

    gptq = Manifest(
        folder=tmp_path,
        generator="t",
        db_version="1",
        classes=(_class("g", "cu130", ("8.0",), "580.65.06", stack="gptq", bitsandbytes=""),),
    )
    (tmp_path / "bnb-provision-locks.toml").write_text(gptq.to_toml())
    machine = machine_from_dict(
        {"os": {"system": "linux", "arch": "x86_64"}, "python": {"version": "3.12"}}
    )
    opts = BuildOptions(env=tmp_path / "env", constraints=Constraints(), lock=tmp_path)
    with pytest.raises(LockfileError, match="its locks are for --stack gptq, not bnb; pass"):
        init_env(opts, load_db(), machine=machine)
