from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnb_provision.cli import cli
from bnb_provision.core.tomlio import toml_loads
from bnb_provision.db.load import load_db
from bnb_provision.detect.fatbin import read_kernels
from bnb_provision.detect.host import OSInfo, PythonInfo
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.nvidia import Gpu, NvidiaInfo
from bnb_provision.detect.snapshot import load_machine
from bnb_provision.detect.target import BnbInfo, BnbLibrary, EnvInfo, TorchInfo
from bnb_provision.doctor.diagnose import DoctorOptions, diagnose
from bnb_provision.doctor.explain import explain_text
from bnb_provision.doctor.findings import CATEGORIES
from bnb_provision.env.stamp import Stamp
from bnb_provision.fit import model_from_params

FIX = Path(__file__).parent / "fixtures"
H100 = load_machine(FIX / "snapshots" / "h100-bnb-0.50.2.json")
CORPUS = toml_loads((FIX / "errors" / "corpus.toml").read_text())["case"]


# -- explain over real error texts --------------------------------------------------


def test_corpus_is_big_enough_and_sourced() -> None:
    assert len(CORPUS) >= 30
    assert {c["category"] for c in CORPUS} >= {
        "arch_not_compiled",
        "cuda_runtime_mismatch",
        "windows_install",
        "driver_too_old",
        "cpu_only_build",
        "hf_stack",
        "oom_on_quant_load",
        "dtype",
    }
    for c in CORPUS:
        assert c["source"].startswith(("https://", "shared/reference/"))


@pytest.mark.parametrize("case", CORPUS, ids=[f"{i}-{c['category']}" for i, c in enumerate(CORPUS)])
def test_explain_real_error_texts(case: dict[str, str]) -> None:
    findings = explain_text(case["text"], load_db())
    assert findings[0].category == case["category"], [f.id for f in findings]
    assert findings[0].fix
    if "sm" in case:
        joined = " ".join(findings[0].evidence)
        assert f"sm_{case['sm']}" in joined
        assert "first bitsandbytes with sm_120 SASS: 0.45.3" in joined


def test_explain_pulls_facts_out_of_the_text() -> None:
    f = explain_text(
        "CUDA SETUP: Required library version not found: libbitsandbytes_cuda122.so.", load_db()
    )[0]
    assert "libbitsandbytes_cuda122.so (CUDA 122)" in f.evidence[1]
    unknown = explain_text("segmentation fault in my own code", load_db())
    assert unknown[0].category == "other" and unknown[0].severity == "info"


def test_every_error_pattern_is_exercised_by_the_corpus() -> None:
    db = load_db()
    hit = {explain_text(c["text"], db)[0].id for c in CORPUS}
    unexercised = {p.id for p in db.errors} - hit
    # patterns whose texts come from source code rather than user reports
    assert unexercised <= {"requires-accelerate", "load-in-8bit-removed", "bnb-cuda-override"}
    assert all(p.category in CATEGORIES for p in db.errors)


# -- doctor on environments --------------------------------------------------------


def _env(
    *,
    torch: str = "2.11.0+cu130",
    cuda: str | None = "13.0",
    bnb: str | None = "0.50.2",
    libs: dict[str, Path | None] | None = None,
    packages: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    cudart: tuple[str, ...] = (),
) -> EnvInfo:
    libraries = []
    for name, path in (
        libs
        if libs is not None
        else {
            "libbitsandbytes_cpu.so": None,
            "libbitsandbytes_cuda130.so": FIX / "kernels" / "whole.so",
        }
    ).items():
        backend = "cpu" if "cpu" in name else "cuda"
        version = name.split("cuda")[1].split(".")[0] if backend == "cuda" else None
        libraries.append(
            BnbLibrary(
                file=name,
                backend=backend,
                version=version,
                kernels=read_kernels(path) if path else None,
            )
        )
    pk = {"torch": torch, "transformers": "5.17.0", "accelerate": "1.15.0", **(packages or {})}
    if bnb:
        pk["bitsandbytes"] = bnb
    return EnvInfo(
        python=PythonInfo(version="3.12.3", executable="/env/bin/python"),
        prefix="/env",
        packages=tuple(sorted(pk.items())),
        torch=TorchInfo(version=torch, cuda=cuda),
        bitsandbytes=BnbInfo(version=bnb, location="/env/bitsandbytes", libraries=tuple(libraries))
        if bnb
        else None,
        variables=tuple(sorted((variables or {}).items())),
        cudart=cudart,
    )


def _machine(
    env: EnvInfo,
    *,
    gpus: tuple[Gpu, ...] = H100.gpus,
    system: str = "linux",
    driver: str = "580.159.04",
) -> Machine:
    return Machine(
        os=OSInfo(system=system, arch="x86_64"),
        python=PythonInfo(version="3.12.3"),
        nvidia=NvidiaInfo(driver=driver, cuda_driver="13.0", source="snapshot"),
        gpus=gpus,
        env=env,
    )


def _ids(findings: tuple[object, ...]) -> list[str]:
    return [f.id for f in findings]  # type: ignore[attr-defined]


def test_the_real_h100_environment_is_healthy() -> None:
    findings = diagnose(H100, load_db())
    assert not [f for f in findings if f.severity == "error"]


def test_bnb_cuda_version_forcing_an_unshipped_library() -> None:
    assert H100.env is not None
    env = replace(H100.env, variables=(("BNB_CUDA_VERSION", "125"),))
    f = diagnose(replace(H100, env=env), load_db())[0]
    assert (f.id, f.category, f.severity) == (
        "bnb-cuda-version-forces-missing-library",
        "cuda_runtime_mismatch",
        "error",
    )
    assert f.fix == "unset BNB_CUDA_VERSION"


def test_bnb_cuda_version_118_under_cu130_torch() -> None:
    """The failure reproduced on the H100: the cuda118 library is shipped, its libcudart is not."""
    assert H100.env is not None
    env = replace(
        H100.env,
        variables=(("BNB_CUDA_VERSION", "118"),),
        cudart=("/env/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13",),
    )
    f = diagnose(replace(H100, env=env), load_db())[0]
    assert f.id == "bnb-cuda-version-mismatch" and f.category == "cuda_runtime_mismatch"
    assert any("libcudart.so.11" in e for e in f.evidence)
    assert f.fix is not None and f.fix.startswith("unset BNB_CUDA_VERSION")


def test_old_bnb_without_a_library_for_torchs_cuda() -> None:
    env = _env(
        torch="2.8.0+cu128",
        cuda="12.8",
        bnb="0.44.1",
        libs={
            "libbitsandbytes_cuda121.so": FIX / "kernels" / "whole.so",
            "libbitsandbytes_cuda124.so": FIX / "kernels" / "whole.so",
        },
    )
    env = replace(env, installed_at=(("bitsandbytes", 100.0), ("torch", 200.0)))
    f = diagnose(_machine(env), load_db())[0]
    assert f.id == "no-bnb-library-for-torch-cuda" and f.category == "cuda_runtime_mismatch"
    assert any("installed before the current torch" in e for e in f.evidence)


def test_cpu_only_torch_on_a_gpu_machine() -> None:
    env = _env(torch="2.13.0+cpu", cuda=None)
    findings = diagnose(_machine(env), load_db())
    assert "cpu-only-torch" in _ids(findings)
    f = next(f for f in findings if f.id == "cpu-only-torch")
    assert f.category == "cpu_only_build" and f.severity == "error"
    win = diagnose(_machine(env, system="windows"), load_db())
    assert any(
        "PyPI's torch for Windows is always a CPU build" in e
        for f in win
        if f.id == "cpu-only-torch"
        for e in f.evidence
    )


def test_gptq_awq_beside_bitsandbytes() -> None:
    env = _env(packages={"auto-gptq": "0.7.1", "autoawq": "0.2.9"})
    f = next(
        f for f in diagnose(_machine(env), load_db()) if f.category == "conflicting_quant_libs"
    )
    assert "auto-gptq 0.7.1" in f.evidence and f.fix is not None and ".venv-bnb" in f.fix


def test_transformers_below_its_bitsandbytes_floor() -> None:
    env = _env(
        bnb="0.45.5",
        torch="2.8.0+cu128",
        cuda="12.8",
        libs={"libbitsandbytes_cuda128.so": FIX / "kernels" / "whole.so"},
    )
    findings = diagnose(_machine(env), load_db())
    f = next(f for f in findings if f.category == "hf_stack")
    assert f.title == "transformers 5.17.0 needs bitsandbytes>=0.46.1; 0.45.5 is installed"
    assert f.severity == "error"


def test_arch_missing_from_the_binaries() -> None:
    pascal = (
        Gpu(
            index=0,
            name="NVIDIA GeForce GTX 1080 Ti",
            compute_capability=(6, 1),
            memory_total_mib=11264,
        ),
    )
    findings = diagnose(_machine(_env(), gpus=pascal), load_db())
    ids = _ids(findings)
    assert "bnb-arch-not-compiled" in ids and "torch-arch-not-compiled" in ids
    f = next(f for f in findings if f.id == "bnb-arch-not-compiled")
    assert "sm_75 sm_90 compute_90" in f.evidence[0]
    assert "no-bf16" in ids


def test_ptx_only_coverage_is_a_warning() -> None:
    blackwell = (
        Gpu(index=0, name="NVIDIA B200", compute_capability=(10, 0), memory_total_mib=180000),
    )
    findings = diagnose(_machine(_env(), gpus=blackwell), load_db())
    assert any(f.id == "bnb-arch-ptx-only" and f.severity == "warning" for f in findings)


def test_memory_estimates() -> None:
    """doctor's memory check is fit's answer: a 70B nf4 load does not fit a 24 GB card, a
    7B one does, and two cards take a 40B load only split by device_map="auto"."""
    rtx = (
        Gpu(
            index=0,
            name="RTX 4090",
            compute_capability=(8, 9),
            memory_total_mib=24564,
            memory_free_mib=23000,
        ),
    )
    m = _machine(_env(), gpus=rtx)
    big = diagnose(m, load_db(), DoctorOptions(model=model_from_params(70e9), quant="nf4"))
    f = next(f for f in big if f.category == "oom_on_quant_load")
    assert f.severity == "error" and f.fix
    small = diagnose(m, load_db(), DoctorOptions(model=model_from_params(7e9), quant="nf4"))
    assert next(f for f in small if f.category == "oom_on_quant_load").id == "quant-load-fits"
    two = replace(m, gpus=(rtx[0], replace(rtx[0], index=1)))
    split = diagnose(two, load_db(), DoctorOptions(model=model_from_params(40e9), quant="nf4"))
    assert (
        next(f for f in split if f.category == "oom_on_quant_load").id == "quant-load-needs-split"
    )


def test_drift_against_the_stamp() -> None:
    stamp = Stamp(
        created="2026-11-01T00:00:00Z",
        driver="570.124.06",
        gpus=(("NVIDIA H100 80GB HBM3", "9.0"),),
        torch="2.10.0+cu128",
        bitsandbytes="0.50.2",
        library="libbitsandbytes_cuda128.so",
        lock_sha256=None,
        db_version="2026.11.24",
        verified=True,
    )
    f = next(
        f for f in diagnose(H100, load_db(), DoctorOptions(stamp=stamp)) if f.category == "drift"
    )
    assert "driver 570.124.06 -> 580.159.04" in f.evidence
    assert "torch 2.10.0+cu128 -> 2.11.0+cu130" in f.evidence


def test_windows_findings() -> None:
    env = _env(bnb="0.41.1", libs={"libbitsandbytes_cuda118.so": None})
    m = _machine(env, system="windows")
    m = replace(m, os=replace(m.os, msvc_runtime=False))
    ids = _ids(diagnose(m, load_db()))
    assert {
        "msvc-runtime-missing",
        "bnb-before-official-windows",
        "bnb-linux-libraries-on-windows",
    } <= set(ids)


def test_driver_too_old_for_torch() -> None:
    f = next(
        f
        for f in diagnose(_machine(_env(), driver="550.54.14"), load_db())
        if f.category == "driver_too_old"
    )
    assert "580" in (f.fix or "")


# -- the commands -----------------------------------------------------------------------


def test_doctor_cli_exit_codes_and_report(tmp_path: Path) -> None:
    snap = json.loads((FIX / "snapshots" / "h100-bnb-0.50.2.json").read_text())
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["doctor", "--machine", str(FIX / "snapshots" / "h100-bnb-0.50.2.json")]
    )
    assert ok.exit_code == 0, ok.output
    snap["env"]["variables"]["BNB_CUDA_VERSION"] = "118"
    snap["env"]["variables"]["LD_LIBRARY_PATH"] = "/home/alice/secret/lib"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(snap))
    res = runner.invoke(cli, ["doctor", "--machine", str(bad), "--json"])
    assert res.exit_code == 9
    data = json.loads(res.stdout)
    assert data["schema"] == "bnb-provision.doctor/1" and data["ok"] is False
    assert data["findings"][0]["category"] == "cuda_runtime_mismatch"
    rep = runner.invoke(cli, ["doctor", "--machine", str(bad), "--report"])
    assert "<details>" in rep.stdout and "/home/alice/secret/lib" not in rep.stdout
    assert "GPU-e6227d02" not in rep.stdout


def test_explain_cli() -> None:
    runner = CliRunner()
    res = runner.invoke(
        cli,
        ["explain", "--json"],
        input="RuntimeError: CUDA error: no kernel image is available for "
        "execution on the device\n",
    )
    assert res.exit_code == 0
    assert json.loads(res.stdout)["findings"][0]["category"] == "arch_not_compiled"
    empty = runner.invoke(cli, ["explain"], input="")
    assert empty.exit_code == 2


def test_ptx_is_counted_only_where_the_driver_can_jit_it() -> None:
    """A GPU newer than every SASS in libbitsandbytes_cuda130.so (13.0 here) runs its
    relocatable compute_120 only under a driver that supports CUDA 13.0 or newer."""
    from bnb_provision.plan.analysis import bnb_load_report

    db = load_db()
    future = replace(H100.gpus[0], compute_capability=(13, 0))
    new = replace(H100, gpus=(future,))
    report = bnb_load_report(new, db)
    assert report is not None and report.coverage == ((0, "ptx"),)
    assert H100.nvidia is not None
    old = replace(new, nvidia=replace(H100.nvidia, driver="575.57.08", cuda_driver="12.9"))
    report = bnb_load_report(old, db)
    assert report is not None and report.coverage == ((0, None),)
    assert any("cannot JIT-compile it" in n for n in report.notes), report.notes
    # without the driver's own report, its version decides through NVIDIA's table
    table = replace(new, nvidia=replace(H100.nvidia, driver="575.57.08", cuda_driver=None))
    report = bnb_load_report(table, db)
    assert report is not None and report.coverage == ((0, None),)
    findings = diagnose(old, db, DoctorOptions())
    assert "bnb-arch-not-compiled" in {f.id for f in findings}


# -- an environment without the stack, and bad model configs (issue 12) -----------------


def test_an_environment_without_torch_or_bitsandbytes_is_a_finding_each() -> None:
    assert H100.env is not None
    bare_env = replace(H100.env, torch=None, bitsandbytes=None, packages=())
    bare = replace(H100, env=bare_env)
    found = {f.id: f for f in diagnose(bare, load_db())}
    assert found["torch-not-installed"].severity == "error"
    assert found["bnb-not-installed"].severity == "error"
    assert "bnb-provision init --python 3.12" in (found["torch-not-installed"].fix or "")
    torch_only = replace(bare, env=replace(bare_env, torch=H100.env.torch))
    only = {f.id: f for f in diagnose(torch_only, load_db())}
    assert "torch-not-installed" not in only
    assert "--torch 2.11.0" in (only["bnb-not-installed"].fix or "")
    assert not {"torch-not-installed", "bnb-not-installed"} & {
        f.id for f in diagnose(H100, load_db())
    }


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 3000 + b"]" * 3000,
        b'{"hidden_size": 1' + b"0" * 400 + b', "num_hidden_layers": 2, "vocab_size": 9}',
        b"\xff\xfe\x00\xd8",
        b"[1, 2]",
    ],
    ids=["deep", "huge-int", "bad-utf16", "array"],
)
def test_a_bad_model_config_is_fits_own_error_naming_it(tmp_path: Path, content: bytes) -> None:
    """doctor reads a model as fit does: a bad config.json is FitInputError (exit 10) naming
    the file, never a traceback."""
    from bnb_provision.errors import FitInputError
    from bnb_provision.fit import read_model

    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(FitInputError, match=r"config\.json"):
        read_model(path)
    snap = str(FIX / "snapshots" / "h100-bnb-0.50.2.json")
    result = CliRunner().invoke(cli, ["doctor", "--machine", snap, "--config", str(path)])
    assert result.exit_code == 10 and "config.json" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
