"""--cuda as a checked choice, which build family serves a target, bitsandbytes' ROCm
loader, and the plan JSON of a non-NVIDIA machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.core.cuda import cuda_option, is_rocm, normalize_cuda_option, rocm_version
from bnb_provision.db.load import load_db
from bnb_provision.detect.accelerators import Accelerator
from bnb_provision.detect.host import OSInfo, PythonInfo
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo
from bnb_provision.errors import NoPlanError
from bnb_provision.plan.backends import backend_of, check_cuda_option, known_builds
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.inputs import target_from_machine
from bnb_provision.plan.model import Target, plan_to_dict
from bnb_provision.plan.resolve import make_plan
from bnb_provision.plan.rocm import choose_rocm_library

MI300X = Accelerator(vendor="amd", index=0, name="Instinct MI300X", target="gfx942")
A770 = Accelerator(vendor="intel", index=1, name="Arc A770", target="Xe-HPG")


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("12.6", "12.6"),
        ("cu126", "12.6"),
        ("CU128", "12.8"),
        ("12.8.1", "12.8"),
        ("rocm7.2", "rocm7.2"),
        ("ROCm6.2.4", "rocm6.2.4"),
        ("rocm-7.14", "rocm7.14"),
        ("xpu", "xpu"),
        ("MPS", "mps"),
        (" cpu ", "cpu"),
    ],
)
def test_cuda_option_spellings(text: str, option: str) -> None:
    assert normalize_cuda_option(text) == option


@pytest.mark.parametrize("text", ["twelve", "12.x", "rocm", "cuda", "", "gpu"])
def test_cuda_option_that_names_nothing(text: str) -> None:
    with pytest.raises(ValueError, match="is not a build"):
        normalize_cuda_option(text)


def test_rocm_spellings() -> None:
    assert is_rocm("rocm6.2.4") and not is_rocm("cu126")
    assert rocm_version("rocm6.2.4") == (6, 2)
    assert rocm_version("rocm7.14") == (7, 14)
    assert cuda_option("rocm7.2") == "rocm7.2"
    assert cuda_option("xpu") == "xpu"
    assert cuda_option("cu128") == "12.8"
    with pytest.raises(ValueError, match="not a ROCm variant"):
        rocm_version("cu126")


def test_known_builds_come_from_the_db() -> None:
    known = known_builds(load_db())
    assert known[:2] == ["11.8", "12.1"]
    assert {"12.6", "13.0", "13.2", "rocm6.4", "rocm7.2", "rocm7.14"} <= set(known)
    assert known[-3:] == ["xpu", "mps", "cpu"]


def test_check_cuda_option() -> None:
    db = load_db()
    assert check_cuda_option(db, Constraints(cuda="cu126")).cuda == "12.6"
    assert check_cuda_option(db, Constraints()).cuda is None
    with pytest.raises(NoPlanError, match=r"--cuda 12\.7: no torch build for it is in the DB"):
        check_cuda_option(db, Constraints(cuda="12.7"))


@pytest.mark.parametrize(
    ("rule", "hip", "shipped", "tag", "fallback"),
    [
        ("same-major", (7, 2), ("64", "70", "71", "714", "72"), "72", False),
        ("same-major", (7, 3), ("64", "70", "71", "714", "72"), "72", True),  # highest below
        ("same-major", (7, 15), ("64", "70", "71", "714", "72"), "714", True),
        ("same-major", (7, 0), ("64", "71", "72"), "71", True),  # none below: lowest above
        ("same-major", (6, 0), ("70", "71"), None, False),  # never across majors
        ("exact", (7, 14), ("62", "63", "64", "70", "71", "72"), None, False),
        ("exact", (6, 4), ("62", "63", "64"), "64", False),
    ],
)
def test_rocm_loader(
    rule: str, hip: tuple[int, int], shipped: tuple[str, ...], tag: str | None, fallback: bool
) -> None:
    pick = choose_rocm_library(rule, hip, shipped)
    assert (pick.tag, pick.fallback) == (tag, fallback), pick.reason


def _target(*accelerators: Accelerator, os: str = "linux") -> Target:
    return Target(
        os=os, arch="x86_64", python="3.12", driver=None, gpus=(), accelerators=accelerators
    )


def test_backend_of() -> None:
    assert backend_of(_target(MI300X), Constraints()) == "rocm"
    assert backend_of(_target(A770), Constraints()) == "xpu"
    assert backend_of(_target(), Constraints()) == "cuda"
    assert backend_of(_target(MI300X), Constraints(cuda="cpu")) == "cuda"  # the CPU build
    assert backend_of(_target(), Constraints(cuda="rocm7.2")) == "rocm"
    with pytest.raises(NoPlanError, match="more than one vendor"):
        backend_of(_target(MI300X, A770), Constraints())


def test_rocm_plan_json_names_the_gpu() -> None:
    plan = make_plan(_target(MI300X), load_db())
    data = plan_to_dict(plan)
    assert data["torch"]["variant"].startswith("rocm")
    assert data["torch"]["cuda"] is None
    assert data["bitsandbytes"]["library"].startswith("libbitsandbytes_rocm")
    assert data["machine"]["accelerators"] == [
        {"vendor": "amd", "name": "Instinct MI300X", "target": "gfx942"}
    ]
    assert data["machine"]["gpus"] == []


def test_an_nvidia_plan_keeps_its_json() -> None:
    t = Target(os="linux", arch="x86_64", python="3.12", driver=None, gpus=())
    assert "accelerators" not in plan_to_dict(make_plan(t, load_db()))["machine"]


def test_cli_plans_a_gpu_by_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bnb_provision", "plan", "--gpu", "RX 7900 XTX", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["machine"]["accelerators"][0]["target"] == "gfx1100"
    assert data["torch"]["index_url"].startswith("https://download.pytorch.org/whl/rocm")


def test_cli_refuses_an_unknown_name_with_suggestions() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bnb_provision", "plan", "--gpu", "rtx 4095", "--driver", "580"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 4
    assert "did you mean GeForce RTX 4090" in done.stderr


@pytest.mark.fuzz
@given(st.text(max_size=30))
def test_cuda_option_reader_is_total(text: str) -> None:
    try:
        option = normalize_cuda_option(text)
    except ValueError:
        return
    assert option in ("cpu", "xpu", "mps") or is_rocm(option) or option[0].isdigit()


def _detected(*accelerators: Accelerator, gpus: tuple[Gpu, ...] = ()) -> Machine:
    return Machine(
        os=OSInfo(system="linux", arch="x86_64"),
        python=PythonInfo(version="3.12.3"),
        nvidia=NvidiaInfo(driver="580.95.05", cuda_driver="13.0", source="test") if gpus else None,
        gpus=gpus,
        accelerators=accelerators,
    )


def test_detected_gpus_become_the_target() -> None:
    db = load_db()
    igpu = Accelerator(vendor="intel", index=0, name="Intel GPU [8086:7d55]", target=None)
    chip = Accelerator(vendor="apple", index=0, name="Apple M3 Pro", target=None, source="sysctl")
    # an Intel GPU of unknown architecture leaves the plan on the CPU build
    assert target_from_machine(_detected(igpu), db).accelerators == ()
    # Apple's chips get their Metal family from the catalogue
    assert target_from_machine(_detected(chip), db).accelerators[0].target == "Apple9"
    # an NVIDIA GPU decides the build; the others are not planned for
    h100 = Gpu(
        index=0, name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0), memory_total_mib=81559
    )
    t = target_from_machine(_detected(MI300X, gpus=(h100,)), db)
    assert t.gpus and t.accelerators == ()
