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
    assert data["schema"] == "bnb-provision.plan/1"
    assert data["torch"]["version"] == "2.11.0" and data["torch"]["variant"] == "cu130"
    assert data["bitsandbytes"]["library"] == "libbitsandbytes_cuda130.so"
    assert (
        data["verified"] is not None and data["verified"]["source"] == "docs/hardware-validation.md"
    )
    assert data["machine"]["driver"] == "580.159.04"
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
    code, _, err = run("plan", "--gpu", "8.6")
    assert code == 6 and "--driver" in err
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
    assert data["bitsandbytes"]["version"] >= "0.49"


def test_every_command_has_help_and_an_example() -> None:
    for name, command in cli.commands.items():
        assert command.help and "Example:" in command.help, name
        code, out, _ = run(name, "--help")
        assert code == 0 and "--json" in out


def test_readme_mentions_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"bnb-provision {name}" in readme, name


def test_help_lists_each_command_once_in_pipeline_order() -> None:
    code, out, _ = run("--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:")[1].strip().splitlines()]
    assert listed[:6] == ["detect", "plan", "doctor", "explain", "fit", "verify"]
    assert sorted(listed) == sorted(cli.commands)
    for name in cli.commands:
        assert sum(line.strip().startswith(f"{name} ") for line in out.splitlines()) == 1, name
