from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bnb_provision.detect.target import (
    find_env_python,
    inspect_env,
    parse_bnb_library_name,
    parse_torch_version_py,
)
from bnb_provision.errors import TargetEnvError

KERNELS = Path(__file__).parent / "fixtures" / "kernels"

# torch/version.py as torch 2.11.0+cu130 ships it (read on the device H100)
TORCH_VERSION_PY = """from typing import Optional

__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'rocm', 'xpu']
__version__ = '2.11.0+cu130'
debug = False
cuda: Optional[str] = '13.0'
git_version = '70d99e998b7cc7fe1d4cd2cb2e3a0d7f8e2d29f5'
hip: Optional[str] = None
rocm: Optional[str] = None
xpu: Optional[str] = None
"""


def test_parse_torch_version_py() -> None:
    t = parse_torch_version_py(TORCH_VERSION_PY)
    assert (t.version, t.cuda, t.hip, t.variant) == ("2.11.0+cu130", "13.0", None, "cu130")
    cpu = parse_torch_version_py("__version__ = '2.13.0+cpu'\ncuda = None\nhip = None\n")
    assert cpu.variant == "cpu"
    rocm = parse_torch_version_py("__version__ = '2.9.0+rocm6.4'\ncuda = None\nhip = '6.4.43482'\n")
    assert rocm.variant == "rocm6.4"
    with pytest.raises(ValueError, match="no __version__"):
        parse_torch_version_py("cuda = '12.1'\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("libbitsandbytes_cuda124.so", ("cuda", "124")),
        ("libbitsandbytes_cuda118_nocublaslt.so", ("cuda-nocublaslt", "118")),
        ("libbitsandbytes_cuda126.dll", ("cuda", "126")),
        ("libbitsandbytes_cpu.so", ("cpu", None)),
        ("libbitsandbytes_rocm72.so", ("rocm", "72")),
        ("libbitsandbytes_xpu2025.so", ("xpu", "2025")),
        ("libbitsandbytes_cpu.dylib", ("cpu", None)),
        ("README.md", ("other", None)),
    ],
)
def test_library_names(name: str, expected: tuple[str, str | None]) -> None:
    assert parse_bnb_library_name(name) == expected


def _site_packages(env: Path) -> Path:
    out = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _install_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """Lay out an installed distribution exactly as an installer writes one."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    record = []
    for rel, data in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        record.append(f"{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture(scope="module")
def fake_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = tmp_path_factory.mktemp("env") / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    site = _site_packages(env)
    raise_on_import = b"raise ImportError('bnb-provision must not import this')\n"
    _install_dist(
        site,
        "torch",
        "2.11.0+cu130",
        {
            "torch/__init__.py": raise_on_import,
            "torch/version.py": TORCH_VERSION_PY.encode(),
            "torch/lib/libcudart.so.13": b"",
        },
    )
    _install_dist(
        site,
        "bitsandbytes",
        "0.50.2",
        {
            "bitsandbytes/__init__.py": raise_on_import,
            "bitsandbytes/libbitsandbytes_cpu.so": b"",
            "bitsandbytes/libbitsandbytes_cuda130.so": (KERNELS / "whole.so").read_bytes(),
            "bitsandbytes/libbitsandbytes_cuda126.so": (KERNELS / "rdc.so").read_bytes(),
        },
    )
    _install_dist(site, "auto_gptq", "0.7.1", {"auto_gptq/__init__.py": raise_on_import})
    _install_dist(site, "transformers", "5.17.0", {"transformers/__init__.py": raise_on_import})
    return env


def test_inspect_env(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BNB_CUDA_VERSION", "118")
    warnings: list[str] = []
    env = inspect_env(str(find_env_python(fake_env)), warnings)
    assert warnings == []
    assert env.torch is not None and env.torch.version == "2.11.0+cu130"
    assert env.torch.cuda == "13.0"
    assert env.version_of("transformers") == "5.17.0"
    assert env.version_of("auto_gptq") == "0.7.1"
    assert ("auto-gptq", "0.7.1") in env.quant_libs
    assert env.variable("BNB_CUDA_VERSION") == "118"
    assert any(p.endswith("libcudart.so.13") for p in env.cudart)
    bnb = env.bitsandbytes
    assert bnb is not None and bnb.version == "0.50.2"
    lib = bnb.library("cuda", "130")
    assert lib is not None and lib.kernels is not None and lib.kernels.sass == (75, 90)
    rel = bnb.library("cuda", "126")
    assert rel is not None and rel.kernels is not None and rel.kernels.rel_ptx == (80,)
    assert {x.backend for x in bnb.libraries} == {"cpu", "cuda"}


def test_find_env_python_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetEnvError, match="no such directory"):
        find_env_python(tmp_path / "missing")
    with pytest.raises(TargetEnvError, match="no Python interpreter inside"):
        find_env_python(tmp_path)


def test_bad_interpreters(tmp_path: Path) -> None:
    with pytest.raises(TargetEnvError, match="no such file"):
        inspect_env(str(tmp_path / "nope"), [])
    script = tmp_path / "notpython"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    with pytest.raises(TargetEnvError, match="did not answer like Python"):
        inspect_env(str(script), [])
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(TargetEnvError, match="could not run it"):
        inspect_env(str(failing), [])


def test_current_interpreter() -> None:
    env = inspect_env(sys.executable, [])
    assert env.python.version.startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert env.version_of("click") is not None


@pytest.mark.skipif(shutil.which("python2") is None, reason="no python2 here")
def test_python2_is_refused() -> None:  # pragma: no cover - rare
    with pytest.raises(TargetEnvError):
        inspect_env(shutil.which("python2") or "", [])


def test_a_relative_python_path_is_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd project && bnb-provision detect --python .venv/bin/python` inspects the project's
    interpreter, never one under the home folder (issue 12)."""
    import os
    import subprocess
    import sys

    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to(sys.executable)
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "bnb_provision", "detect", "--python", ".venv/bin/python", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"executable"' in done.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "bnb_provision", "detect", "--python", "nope/bin/python"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 3 and "no such file" in missing.stderr


def test_a_probe_that_answers_nonsense_is_a_target_env_error(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho \'{"python": {"version": 3}}\'\n')
    fake.chmod(0o755)
    with pytest.raises(TargetEnvError, match="unexpected answer from the probe"):
        inspect_env(str(fake), [])
