"""plan --from / doctor --from: real reports users pasted into public issues (each with
its source in tests/fixtures/reports/index.toml) read into machine snapshots."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.detect.host import normalize_arch
from bnb_provision.detect.reports import MAX_REPORT_BYTES, Report, load_report, read_report
from bnb_provision.detect.reports.facts import same_gpu
from bnb_provision.detect.reports.nvidia_smi_text import parse_nvidia_smi
from bnb_provision.detect.reports.reports import MAX_REPORT_CHARS
from bnb_provision.errors import SnapshotError

FIX = Path(__file__).parent / "fixtures"
REPORTS = FIX / "reports"
INDEX: list[dict[str, Any]] = toml_loads((REPORTS / "index.toml").read_text(encoding="utf-8"))[
    "report"
]
PACKAGES = ("bitsandbytes", "transformers", "accelerate", "peft", "trl", "vllm")


def _read(name: str, **kw: Any) -> Report:
    return read_report(
        (REPORTS / name).read_text(encoding="utf-8"), python="3.12", label=name, **kw
    )


def _cc(cc: tuple[int, int] | None) -> str | None:
    return f"{cc[0]}.{cc[1]}" if cc else None


def observed(report: Report) -> dict[str, Any]:
    """The facts under the index's keys, read from the snapshot where it holds them."""
    f, m = report.facts, report.machine()
    env = m.env
    out: dict[str, Any] = {
        "os": ("wsl" if m.os.wsl else m.os.system) if (f.os or f.os_hint or f.wsl) else None,
        "os_release": m.os.distro,
        "arch": f.arch,
        "python": f.python,
        "gpus": [g.name for g in f.gpus] or None,
        "compute_capabilities": sorted(
            {_cc(cc) for cc in f.compute_capabilities} | {_cc(g.cc) for g in f.gpus if g.cc}
        )
        or None,
        "driver": m.nvidia.driver if m.nvidia else None,
        "driver_cuda": m.nvidia.cuda_driver if m.nvidia else f.driver_cuda,
        "torch": env.version_of("torch") if env else None,
        "torch_cuda": f.torch_build.cuda if f.torch_build else None,
        "cuda_toolkit": f.cuda_toolkit,
        "bnb_lib": f.bnb_lib,
        "cuda_available": f.cuda_available,
    }
    for name in PACKAGES:
        out[name] = env.version_of(name) if env else None
    return out


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_every_capture_reads_into_its_expected_facts(entry: dict[str, Any]) -> None:
    report = _read(entry["file"])
    got = observed(report)
    expected = entry["expected"]
    assert {k: got[k] for k in expected} == expected
    m = report.machine()
    if "arch" in expected:
        assert m.os.arch == normalize_arch(expected["arch"])
    if expected.get("python", "").startswith("3."):
        assert m.python.version == expected["python"]
    if "torch_cuda" in expected and m.env is not None and m.env.torch is not None:
        assert m.env.torch.cuda == expected["torch_cuda"]
    if "gpus" in expected and m.nvidia is not None:
        assert [g.name for g in m.gpus] == expected["gpus"]


# -- whole issue bodies: what the reader finds never contradicts what they state -------

EXPLAIN = Path(__file__).parent / "fixtures" / "explain" / "corpus.toml"
CASES: list[dict[str, Any]] = toml_loads(EXPLAIN.read_text(encoding="utf-8"))["case"]


def _agrees(key: str, stated: str, found: str) -> bool:
    if key == "gpu":
        return any(same_gpu(stated, name) for name in found.split(","))
    if key == "compute_capability":
        return stated in found.split(",")
    if key == "os" and stated == "wsl":
        return found in {"wsl", "linux"}  # WSL2 is Linux; only the WSL flag may be unknown
    return stated == found or found.startswith(stated + ".") or stated.startswith(found + ".")


def _found(report: Report) -> dict[str, str | None]:
    f = report.facts
    ccs = {_cc(cc) for cc in f.compute_capabilities} | {_cc(g.cc) for g in f.gpus if g.cc}
    return {
        "os": "wsl" if f.wsl else (f.os or f.os_hint),
        "python": f.python,
        "driver": f.driver,
        "driver_cuda": f.driver_cuda,
        "torch": f.torch,
        "torch_cuda": f.torch_build.cuda if f.torch_build else None,
        "cuda": f.cuda_toolkit,
        "bnb_lib": f.bnb_lib,
        "gpu": ",".join(g.name for g in f.gpus if g.name) or None,
        "compute_capability": ",".join(sorted(c for c in ccs if c)) or None,
    }


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_issue_texts_read_without_contradicting_their_facts(case: dict[str, Any]) -> None:
    try:
        report = read_report(case["text"], python="3.12", label=case["id"])
    except SnapshotError:
        return  # an error message alone: nothing a snapshot could be made of
    report.machine()
    stated = case.get("facts", {})
    found = _found(report)
    wrong = {
        k: (stated[k], v)
        for k, v in found.items()
        if v and k in stated and not _agrees(k, stated[k], v)
    }
    assert wrong == {}


def test_issue_bodies_give_the_facts_they_state_in_tool_output() -> None:
    """Recall on the structured lines of whole issue bodies: nvidia-smi headers, torch's
    compute-capability messages, the driver's 'found version', bitsandbytes' library."""
    by_id = {c["id"]: c for c in CASES}
    for case_id, keys in {
        "fooocus-1313-found-11040": ("driver", "driver_cuda", "os"),
        "pytorch-85332-not-available-cu102": (
            "driver",
            "driver_cuda",
            "torch",
            "torch_cuda",
            "cuda",
        ),
        "mobileagent-60-torch-not-compiled-cuda": ("driver", "driver_cuda"),
        "bnb-1058-windows-store-python312-cuda116": ("os", "python", "bnb_lib"),
        "bnb-1322-windows-cpu-so": ("python", "bnb_lib"),
        "direct3d-s2-32-sm120": ("gpu", "compute_capability"),
        "vllm-docker-37-bf16-t4-dtype-flag": ("gpu", "compute_capability"),
        "chatglm-tuning-247-macos-not-mach-o": ("os", "python", "bnb_lib"),
        "rocm-sdk-builder-202-triton-ops-gfx1101": ("os", "python"),
        "graphwriter-6-found-6050": ("driver_cuda",),
    }.items():
        case = by_id[case_id]
        found = _found(read_report(case["text"], python="3.12", label=case_id))
        for key in keys:
            value = found[key]
            assert value is not None and _agrees(key, case["facts"][key], value), (case_id, key)


# -- what the merge and the snapshot make of particular reports --------------------------


def test_nvidia_smi_versions_differing_mean_wsl2() -> None:
    report = _read("mixed-pip-freeze-grep-nvidia-smi-wsl-4.txt")
    m = report.machine()
    assert m.os.system == "linux" and m.os.wsl
    assert any(
        a.startswith("WSL2 assumed: nvidia-smi's own version (530.50)") for a in report.assumptions
    )
    assert [s.tool for s in report.sections] == ["pip", "nvidia-smi"]


def test_torch_cuda_from_the_cuda_runtime_pypi_installs() -> None:
    report = _read("mixed-pip-list-nvidia-smi-570-1.txt")
    env = report.machine().env
    assert env is not None and env.torch is not None
    assert (env.torch.version, env.torch.cuda) == ("2.6.0", "12.4")
    assert any("nvidia-cuda-runtime-cu12 12.4.127" in a for a in report.assumptions)


def test_a_torch_build_the_report_does_not_give_is_left_out_not_guessed() -> None:
    report = _read("pip-list-vllm0151-torch291-2.txt")
    env = report.machine().env
    assert env is not None and env.torch is None and env.version_of("torch") == "2.9.1"
    assert any("does not say which CUDA" in a for a in report.assumptions)


def test_bnb_cuda_version_override_is_kept_as_a_variable() -> None:
    report = _read("bitsandbytes-bnb-cuda-version-override-13.txt")
    env = report.machine().env
    assert env is not None and env.variable("BNB_CUDA_VERSION") == "123"
    assert report.facts.bnb_fallback == "libbitsandbytes_cpu.so"


@pytest.mark.parametrize(
    ("name", "hip"),
    [
        ("collect_env-rocm-wsl2-rx6800xt-torch212-8.txt", "6.1"),
        ("bitsandbytes-diag-0480dev-rocm64-10.txt", "6.4"),
    ],
)
def test_rocm_builds_and_amd_gpus(name: str, hip: str) -> None:
    report = _read(name)
    m = report.machine()
    assert m.env is not None and m.env.torch is not None
    assert (m.env.torch.hip, m.env.torch.cuda, m.env.torch.variant) == (hip, None, f"rocm{hip}")
    assert m.gpus == () and m.nvidia is None
    if report.facts.gpus:
        assert any("non-NVIDIA GPU(s) left out" in a for a in report.assumptions)


def test_a_report_that_states_everything_assumes_nothing_about_the_host() -> None:
    report = _read("collect_env-rtx2080ti-torch16-3.txt")
    assert report.assumptions == ()
    m = report.machine()
    assert (m.os.system, m.os.arch, m.python.version) == ("linux", "x86_64", "3.7")
    assert m.nvidia is not None and m.nvidia.driver == "440.33.01"


def test_a_pip_list_alone_assumes_the_host_and_says_so() -> None:
    report = _read("pip-list-accelerate0220-1.txt")
    said = " | ".join(report.assumptions)
    for part in ("OS assumed linux", "architecture assumed x86_64", "Python 3.12 assumed"):
        assert part in said
    assert "no NVIDIA driver or GPU in the report" in said
    assert report.snapshot["warnings"] == list(report.assumptions)


def test_gpus_without_a_driver_are_kept_for_a_driver_given_on_the_command_line() -> None:
    report = _read("collect_env-a100x8-torch241-2.txt")
    assert report.unplaced_gpus and report.machine().gpus == ()
    given = _read("collect_env-a100x8-torch241-2.txt", driver="535.104.05")
    m = given.machine()
    assert given.unplaced_gpus == () and len(m.gpus) == 6
    assert m.nvidia is not None and (m.nvidia.driver, m.nvidia.source) == ("535.104.05", "flags")


def test_compute_capability_from_bitsandbytes_without_gpu_names() -> None:
    report = _read("bitsandbytes-kohya-docker-cuda121-6.txt", driver="550.54.14")
    m = report.machine()
    assert [(g.name, g.cc_text) for g in m.gpus] == [("GPU with compute capability 8.9", "8.9")]
    assert any("one GPU assumed per capability" in a for a in report.assumptions)


# -- mixed pastes: several real outputs in one file, as issue templates collect them -----


def _paste(*parts: str) -> str:
    return "".join(parts)


def _capture(name: str) -> str:
    return (REPORTS / name).read_text(encoding="utf-8")


def test_an_issue_template_with_three_tools() -> None:
    text = _paste(
        "### System Info\n\n```\n",
        _capture("transformers-env-linux-4310-accelerate-config-2.txt"),
        "```\n\nnvidia-smi:\n\n",
        _capture("nvidia-smi-a100x2-580.126.09-3.txt"),
        "\n### Reproduction\n\n```\npip list\n",
        _capture("pip-freeze-bnb0391-accelerate0203-1.txt"),
        "```\n",
    )
    report = read_report(text, python="3.12", label="paste")
    assert [s.tool for s in report.sections if s.tool != "text"] == ["hf-env", "nvidia-smi", "pip"]
    m = report.machine()
    assert m.nvidia is not None and m.nvidia.driver == "580.126.09"
    assert [g.name for g in m.gpus] == ["NVIDIA A100-SXM4-40GB"] * 2
    assert m.env is not None and m.env.torch is not None and m.env.torch.cuda == "11.7"
    assert (m.env.version_of("transformers"), m.env.version_of("bitsandbytes")) == (
        "4.31.0",
        "0.39.1",
    )
    # transformers env says accelerate 0.20.3, and so does the pip freeze
    assert m.env.version_of("accelerate") == "0.20.3"
    assert m.python.version == "3.10.12" and report.conflicts == ()


def test_sections_that_disagree_are_listed_and_the_best_source_wins() -> None:
    text = _paste(
        _capture("collect_env-a100x8-torch241-2.txt"),
        "\n\n",
        _capture("pip-list-vllm0151-torch291-2.txt"),
    )
    report = read_report(text, python="3.12", label="paste")
    conflicts = {c.fact: c for c in report.conflicts}
    assert conflicts["torch"].values == (("collect_env", "2.4.1+cu121"), ("pip", "2.9.1"))
    assert "2.4.1+cu121 is used" in conflicts["torch"].describe()
    assert report.facts.torch == "2.4.1+cu121"


def test_a_name_nvidia_smi_cut_is_completed_from_another_section() -> None:
    text = _paste(
        _capture("nvidia-smi-a100x2-515.105.01-1.txt"),
        "\n\n",
        (FIX / "nvidia_smi" / "a100-535.54.03.txt").read_text(encoding="utf-8"),
    )
    report = read_report(text, python="3.12", label="paste")
    assert [g.name for g in report.facts.gpus] == ["NVIDIA A100 80GB PCIe"] * 2
    assert {c.fact for c in report.conflicts} >= {"driver", "GPU count"}


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-le", b"")],
    ids=["utf8", "utf8-bom", "powershell-utf16", "utf16-without-bom"],
)
def test_report_files_in_every_encoding_a_shell_writes(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    text = _capture("mixed-centos-nvidia-smi-line-pip-list-bnb-2.txt")
    path = tmp_path / "report.txt"
    path.write_bytes(bom + text.encode(encoding))
    report = load_report(str(path), python="3.12")
    assert report.facts.driver == "535.104.05" and report.facts.bitsandbytes == "0.44.0.dev0"
    assert report.label == "report.txt"


def test_unreadable_empty_and_oversized_reports_are_snapshot_errors(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read it"):
        load_report(str(tmp_path / "missing.txt"), python="3.12")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(SnapshotError, match="no output of nvidia-smi"):
        load_report(str(tmp_path / "empty.txt"), python="3.12")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 64)
    with pytest.raises(SnapshotError, match="no output of nvidia-smi"):
        load_report(str(tmp_path / "binary"), python="3.12")
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(MAX_REPORT_BYTES + 1)
    with pytest.raises(SnapshotError, match="larger than 10 MiB"):
        load_report(str(big), python="3.12")
    with pytest.raises(SnapshotError, match="larger than"):
        read_report("x" * (MAX_REPORT_CHARS + 1), python="3.12")


def test_standard_input_is_read_for_a_dash() -> None:
    stdin = io.BytesIO(_capture("nvidia-smi-tesla-p4-550.135-2.txt").encode("utf-16"))
    report = load_report("-", python="3.12", stdin=stdin)
    assert report.label == "stdin" and report.facts.driver == "550.135"


# -- several versions of every tool --------------------------------------------------------


def test_every_tool_is_read_in_several_versions() -> None:
    versions: dict[str, set[str]] = {}
    for entry in INDEX:
        versions.setdefault(entry["tool"], set()).add(entry.get("tool_version", entry["file"]))
    assert len(INDEX) >= 45
    for tool in ("nvidia-smi", "collect_env", "bitsandbytes", "transformers-env", "mixed"):
        assert len(versions[tool]) >= 5, (tool, versions[tool])
    assert len(versions["accelerate-env"]) >= 3
    assert len(versions["pip-list"]) + len(versions["pip-freeze"]) >= 4


@pytest.mark.parametrize("path", sorted((FIX / "nvidia_smi").glob("*.txt")), ids=lambda p: p.name)
def test_every_captured_nvidia_smi_table(path: Path) -> None:
    facts = parse_nvidia_smi(path.read_text(encoding="utf-8"))
    driver = path.stem.split("-")[-1]
    assert facts.driver == driver  # the file names carry the driver, zeros kept
    assert facts.gpus and all(g.name and g.memory_mib for g in facts.gpus)
    if path.name.startswith("wsl-"):
        assert facts.smi_version is not None and facts.smi_version != facts.driver
