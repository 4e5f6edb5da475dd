from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bnb_provision.detect import nvidia
from bnb_provision.detect.nvidia import (
    cuda_from_nvml,
    detect_nvidia,
    parse_nvidia_smi_csv,
    parse_nvidia_smi_header,
    parse_proc_gpu_information,
    parse_proc_version,
)

SMI = Path(__file__).parent / "fixtures" / "nvidia_smi"
PROC = Path(__file__).parent / "fixtures" / "proc"


def test_query_csv_from_h100() -> None:
    driver, gpus = parse_nvidia_smi_csv((SMI / "h100-580.159.04-query.csv").read_text())
    assert driver == "580.159.04"
    assert len(gpus) == 1
    g = gpus[0]
    assert g.name == "NVIDIA H100 80GB HBM3"
    assert g.compute_capability == (9, 0)
    assert g.memory_total_mib == 81559
    assert g.uuid == "GPU-e6227d02-8da3-0ad4-0b09-ce86466c76e9"
    assert g.mig_mode is False
    assert g.sm == "sm_90"


def test_query_csv_with_missing_values() -> None:
    text = "0, Tesla K80, [N/A], 11441, 11430, GPU-x, 470.82.01, [N/A]\n"
    driver, gpus = parse_nvidia_smi_csv(text)
    assert driver == "470.82.01"
    assert gpus[0].compute_capability is None and gpus[0].mig_mode is None


def test_query_csv_old_field_set() -> None:
    text = (
        "0, Tesla K80, 11441, 11430, GPU-x, 410.104\n1, Tesla K80, 11441, 11441, GPU-y, 410.104\n"
    )
    driver, gpus = parse_nvidia_smi_csv(text, nvidia.SMI_FIELDS_OLD)
    assert driver == "410.104" and [g.index for g in gpus] == [0, 1]


def test_query_csv_malformed() -> None:
    with pytest.raises(ValueError, match="expected 8 fields"):
        parse_nvidia_smi_csv("garbage, line\n")


@pytest.mark.parametrize(
    ("name", "driver", "cuda"),
    [
        ("h100-580.159.04.txt", "580.159.04", "13.0"),
        ("grid-k520-346.46.txt", "346.46", None),
        ("k80-410.104.txt", "410.104", "10.0"),
        ("titan-xp-450.57.txt", "450.57", "11.0"),
        ("rtx-470.199.02.txt", "470.199.02", "11.4"),
        ("a100-535.54.03.txt", "535.54.03", "12.2"),
        ("rtx4070-550.40.07.txt", "550.40.07", "12.4"),
        ("wsl-rtx4090-531.29.txt", "531.29", "12.1"),
        ("wsl-err-546.80.txt", "546.80", None),
    ],
)
def test_plain_header_across_driver_generations(name: str, driver: str, cuda: str | None) -> None:
    assert parse_nvidia_smi_header((SMI / name).read_text()) == (driver, cuda)


def test_plain_header_absent() -> None:
    text = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    assert parse_nvidia_smi_header(text) == (None, None)


def test_proc_files_from_h100() -> None:
    assert parse_proc_version((PROC / "version-h100-580.159.04.txt").read_text()) == "580.159.04"
    model, uuid = parse_proc_gpu_information((PROC / "gpu-information-h100.txt").read_text())
    assert model == "NVIDIA H100 80GB HBM3"
    assert uuid == "GPU-e6227d02-8da3-0ad4-0b09-ce86466c76e9"


def test_proc_version_of_a_proprietary_module() -> None:
    text = (
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 "
        "UTC 2023\nGCC version:  gcc version 11.4.0\n"
    )
    assert parse_proc_version(text) == "535.104.05"
    assert parse_proc_version("garbage") is None


def test_cuda_from_nvml() -> None:
    assert cuda_from_nvml(13000) == "13.0"
    assert cuda_from_nvml(12040) == "12.4"
    assert cuda_from_nvml(None) is None


# -- the reader, with real programs standing in for nvidia-smi -----------------


def _fake_smi(tmp_path: Path, body: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


@pytest.fixture
def no_system_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia, "_smi_dirs", list)


def test_falls_back_to_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    query = SMI / "h100-580.159.04-query.csv"
    plain = SMI / "h100-580.159.04.txt"
    bindir = _fake_smi(
        tmp_path, f'case "$1" in --query-gpu=*) /bin/cat {query};; *) /bin/cat {plain};; esac\n'
    )
    monkeypatch.setenv("PATH", str(bindir))
    warnings: list[str] = []
    info, gpus = detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert info is not None
    assert (info.driver, info.cuda_driver, info.source) == ("580.159.04", "13.0", "nvidia-smi")
    assert gpus[0].compute_capability == (9, 0)


def test_old_driver_without_compute_cap_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    plain = SMI / "k80-410.104.txt"
    bindir = _fake_smi(
        tmp_path,
        (
            'case "$1" in\n'
            '  --query-gpu=index,name,compute_cap*) echo \'Field "compute_cap" is not a valid field '
            "to query.'; exit 2;;\n"
            "  --query-gpu=*) echo '0, Tesla K80, 11441, 11430, GPU-abc, 410.104';;\n"
            f"  *) /bin/cat {plain};;\n"
            "esac\n"
        ),
    )
    monkeypatch.setenv("PATH", str(bindir))
    warnings: list[str] = []
    info, gpus = detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert info is not None and info.driver == "410.104" and info.cuda_driver == "10.0"
    assert gpus[0].name == "Tesla K80" and gpus[0].compute_capability is None


def test_hung_nvidia_smi_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    bindir = _fake_smi(tmp_path, "exec /bin/sleep 30\n")
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setattr(nvidia, "SMI_TIMEOUT", 0.5)
    warnings: list[str] = []
    info, gpus = detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert info is None and gpus == []
    assert any("did not finish within 0.5 s" in w for w in warnings)


def test_malformed_nvidia_smi_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    bindir = _fake_smi(tmp_path, "echo 'this is, not csv'\n")
    monkeypatch.setenv("PATH", str(bindir))
    warnings: list[str] = []
    info, _ = detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert info is None
    assert any("unexpected output" in w for w in warnings)


def test_proc_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    drv = tmp_path / "proc/driver/nvidia"
    (drv / "gpus/0000:00:06.0").mkdir(parents=True)
    (drv / "version").write_text((PROC / "version-h100-580.159.04.txt").read_text())
    (drv / "gpus/0000:00:06.0/information").write_text(
        (PROC / "gpu-information-h100.txt").read_text()
    )
    warnings: list[str] = []
    info, gpus = detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert info is not None and (info.driver, info.source) == ("580.159.04", "proc")
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].compute_capability is None
    assert any("nvidia-smi: not found" in w for w in warnings)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_proc_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    f = tmp_path / "proc/driver/nvidia/version"
    f.parent.mkdir(parents=True)
    f.write_text("x")
    f.chmod(0)
    warnings: list[str] = []
    detect_nvidia(warnings, root=tmp_path, use_nvml=False)
    assert any("unreadable" in w for w in warnings)


def test_nothing_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    warnings: list[str] = []
    assert detect_nvidia(warnings, root=tmp_path, use_nvml=False) == (None, [])
    assert warnings[-1].startswith("no NVIDIA driver found")


def test_nvml_hang_is_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_system_smi: None
) -> None:
    import time

    from bnb_provision.detect import _nvml

    def hang() -> None:
        time.sleep(5)

    monkeypatch.setattr(_nvml, "read_nvml", hang)
    monkeypatch.setattr(nvidia, "NVML_TIMEOUT", 0.2)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    warnings: list[str] = []
    detect_nvidia(warnings, root=tmp_path)
    assert any("NVML: no answer within 0.2 s" in w for w in warnings)


def test_nvml_missing_library_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_smi: None
) -> None:
    # On this CPU-only machine NVML really is absent.
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this machine has an NVIDIA driver")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    warnings: list[str] = []
    assert detect_nvidia(warnings, root=tmp_path) == (None, [])
    assert any(w.startswith("no NVIDIA driver found (NVML: ") for w in warnings)
