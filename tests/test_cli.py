from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bnb_provision.cli import cli

SNAP = Path(__file__).parent / "fixtures" / "snapshots"
ROOT = Path(__file__).parent.parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_detect_json_on_this_machine() -> None:
    code, out, _ = run("detect", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "bnb-provision.machine/1"
    assert set(data) >= {"os", "python", "nvidia", "gpus", "env", "warnings"}
    assert set(data["os"]) >= {"system", "arch", "release", "distro", "libc", "wsl"}
    if not Path("/proc/driver/nvidia/version").exists():
        assert data["gpus"] == [] and data["nvidia"] is None
        assert any("no NVIDIA driver found" in w for w in data["warnings"])


def test_detect_table_with_env() -> None:
    code, out, _ = run("detect", "--python", sys.executable)
    assert code == 0
    assert "Target environment" in out and "torch" in out


def test_detect_bad_python_exit_code(tmp_path: Path) -> None:
    code, _, err = run("detect", "--python", str(tmp_path / "nope"))
    assert code == 3
    assert err.startswith("Error: --python") and "no such file" in err
    code, _, err = run("detect", "--env", str(tmp_path))
    assert code == 3 and "no Python interpreter inside" in err
    code, _, err = run("detect", "--env", str(tmp_path), "--python", sys.executable)
    assert code == 2


def test_detect_never_imports_torch(tmp_path: Path) -> None:
    """Run detect in a process where importing torch or bitsandbytes raises."""
    trap = tmp_path / "trap"
    for name in ("torch", "bitsandbytes"):
        (trap / name).mkdir(parents=True)
        (trap / name / "__init__.py").write_text(f"raise SystemExit('imported {name}')\n")
    env = {**os.environ, "PYTHONPATH": f"{trap}{os.pathsep}{ROOT}"}
    for args in (
        ["detect"],
        ["detect", "--json", "--python", sys.executable],
        ["plan", "--gpu", "8.6", "--driver", "550.54.14"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bnb_provision", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "imported" not in done.stdout + done.stderr
    # the trap works: a process that imports torch does fail
    done = subprocess.run(
        [sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True, check=False
    )
    assert "imported torch" in done.stderr


def test_plan_from_snapshot_json() -> None:
    code, out, _ = run("plan", "--machine", str(SNAP / "h100-bnb-0.50.2.json"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "bnb-provision.plan/2"
    # issue 13: the newest safe torch wins; the verified H100 row (torch 2.11.0+cu130)
    # is evidence, no longer the choice
    assert data["torch"]["version"] == "2.15.0" and data["torch"]["variant"] == "cu132"
    assert data["bitsandbytes"]["library"] == "libbitsandbytes_cuda132.so"
    assert data["verified"] is None
    (evidence,) = data["evidence"]
    assert evidence["source"] == "docs/hardware-validation.md"
    assert evidence["torch"] == "2.11.0+cu130"
    assert data["machine"]["driver"] == "580.159.04"  # as the driver wrote it
    assert data["driver_floor"] == "580" and data["ladder"] == []
    assert set(data) >= {
        "torch",
        "bitsandbytes",
        "packages",
        "python",
        "verified",
        "reasons",
        "warnings",
        "rejected",
    }


def test_plan_table_from_flags() -> None:
    code, out, _ = run("plan", "--gpu", "GTX 1080 Ti", "--driver", "550.54.14", "--python", "3.11")
    assert code == 0
    assert "torch         2.14.1+cu126" in out
    assert "libbitsandbytes_cuda126.so" in out
    assert "bnb_4bit_compute_dtype=torch.float16" in out
    assert "Rejected alternatives" in out


def test_plan_errors_have_their_own_exit_codes(tmp_path: Path) -> None:
    code, _, err = run("plan", "--gpu", "K80", "--driver", "470.82.01")
    assert code == 6 and "no known combination" in err and "Way out:" in err
    code, _, err = run("plan", "--gpu", "Quantum GPU 9000", "--driver", "550")
    assert code == 4 and "unknown GPU name" in err
    code, _, err = run("plan", "--gpu", "99.9", "--driver", "580.95.05")
    assert code == 4 and "Known: 3.5" in err  # a machine flag that names no known GPU
    bad = tmp_path / "m.json"
    bad.write_text('{"os": {"system": "linux"}}')
    code, _, err = run("plan", "--machine", str(bad))
    assert code == 4 and "python: required field is missing" in err
    code, _, err = run("plan", "--os", "macos", "--cuda", "12.6")
    assert code == 6 and "CUDA is not available on macOS" in err


def test_plan_macos_gets_cpu_build() -> None:
    code, out, _ = run("plan", "--os", "macos", "--arch", "aarch64", "--python", "3.12", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["torch"]["variant"] == "cpu" and data["torch"]["index_url"] is None
    assert data["torch"]["build"] == "mps"
    assert data["bitsandbytes"]["version"] >= "0.49"


def test_plan_macos_defaults_to_arm64_and_reads_its_release() -> None:
    """--os macos alone is Apple silicon; --arch arm64 is aarch64; the MPS build is named
    so; a macOS 13 machine gets no bitsandbytes (its macOS wheels are macosx_14_0)."""
    code, out, _ = run("plan", "--os", "macos", "--python", "3.12")
    assert code == 0, out
    assert "Plan for macos-arm64" in out and "2.15.0 (MPS)" in out and "+cpu" not in out
    code, out, _ = run("plan", "--os", "macos", "--arch", "arm64", "--os-version", "14.5", "--json")
    data = json.loads(out)
    assert code == 0 and data["machine"]["platform"] == "macos-arm64"
    assert data["machine"]["os_version"] == "14.5"
    code, _, err = run("plan", "--os", "macos", "--os-version", "13", "--python", "3.12")
    assert code == 6 and "needs macOS 14.0 or newer" in err and "upgrade to macOS 14.0" in err
    code, _, err = run("plan", "--os", "linux", "--os-version", "13")
    assert code == 4 and "--os macos" in err


def test_plan_without_a_driver_shows_the_floor_then_the_ladder() -> None:
    code, out, _ = run("plan", "--gpu", "RTX 3090", "--python", "3.12")
    assert code == 0, out
    floor = out.index("Driver floor: this plan needs driver >= 580")
    ladder = out.index("Driver ladder")
    assert floor < ladder < out.index("package")
    assert ">= 525.60.13  torch 2.14.1+cu126" in out and ">= 450.80.02  torch 2.7.1+cu118" in out
    code, out, _ = run("plan", "--gpu", "RTX 3090", "--python", "3.12", "--json")
    data = json.loads(out)
    assert data["machine"]["driver"] is None and data["driver_floor"] == "580"
    assert [r["driver"] for r in data["ladder"]] == ["525.60.13", "450.80.02"]
    assert data["ladder"][0]["torch"]["variant"] == "cu126"


def test_plan_all_rejected_lists_every_candidate() -> None:
    args = ("plan", "--gpu", "5.2", "--driver", "550.54.14", "--python", "3.11")
    _, short, _ = run(*args)
    _, full, _ = run(*args, "--all-rejected")
    assert "--all-rejected lists every one" in short and "more:" in short
    assert "--all-rejected" not in full and " more:" not in full
    assert "bitsandbytes 0.48.0" in full and "bitsandbytes 0.48.0" not in short


def test_plan_with_companions_and_the_legacy_windows_flag() -> None:
    code, out, _ = run(
        "plan", "--gpu", "A100", "--driver", "580.95.05", "--with", "torchvision,torchaudio",
        "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0 and set(data["companions"]) == {"torchvision", "torchaudio"}
    assert data["packages"]["torchvision"] == data["companions"]["torchvision"]
    code, _, err = run("plan", "--gpu", "A100", "--driver", "580.95.05", "--with", "numpy")
    assert code == 2 and "torchvision, torchaudio" in err
    code, out, _ = run(
        "plan", "--os", "windows", "--gpu", "RTX 3090", "--driver", "595.79", "--bnb", "0.41",
        "--allow-legacy-windows-index",
    )  # fmt: skip
    assert code == 0 and "jllllll.github.io" in out and "third-party index" in out


def test_every_command_has_help_and_an_example() -> None:
    for name, command in cli.all_commands().items():
        assert command.help and "Example:" in command.help, name
        code, out, _ = run(name, "--help")
        assert code == 0 and "--json" in out


def test_readme_mentions_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in cli.all_commands():
        assert f"bnb-provision {name}" in readme, name


def test_help_lists_each_command_once_in_pipeline_order() -> None:
    code, out, _ = run("--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:")[1].strip().splitlines()]
    assert listed[:7] == ["detect", "plan", "doctor", "explain", "triage", "fit", "verify"]
    assert sorted(listed) == sorted(cli.all_commands())
    for name in cli.all_commands():
        assert sum(line.strip().startswith(f"{name} ") for line in out.splitlines()) == 1, name
