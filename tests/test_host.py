from __future__ import annotations

from pathlib import Path

import pytest

from bnb_provision.detect.host import (
    detect_os,
    normalize_arch,
    parse_os_release,
    parse_proc_version_wsl,
)

OSR = Path(__file__).parent / "fixtures" / "os_release"
PROC = Path(__file__).parent / "fixtures" / "proc"


@pytest.mark.parametrize(
    ("name", "distro_id", "version", "pretty"),
    [
        ("ubuntu-24.04.txt", "ubuntu", "24.04", "Ubuntu 24.04.3 LTS"),
        ("rhel-9.3.txt", "rhel", "9.3", "Red Hat Enterprise Linux 9.3 (Plow)"),
        ("debian-12.txt", "debian", "12", "Debian GNU/Linux 12 (bookworm)"),
    ],
)
def test_os_release(name: str, distro_id: str, version: str, pretty: str) -> None:
    osr = parse_os_release((OSR / name).read_text())
    assert (osr["ID"], osr["VERSION_ID"], osr["PRETTY_NAME"]) == (distro_id, version, pretty)


def test_os_release_quoting_and_comments() -> None:
    text = '# comment\nNAME="A \\"quoted\\" name"\nID=x\n\nBROKEN LINE\nEMPTY=\n'
    assert parse_os_release(text) == {"NAME": 'A "quoted" name', "ID": "x", "EMPTY": ""}


def test_wsl_from_kernel_banner() -> None:
    assert parse_proc_version_wsl((PROC / "version-wsl2.txt").read_text())
    assert not parse_proc_version_wsl((PROC / "version-linux.txt").read_text())
    assert not parse_proc_version_wsl((PROC / "version-h100-580.159.04.txt").read_text())


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("AMD64", "x86_64"),
        ("x86_64", "x86_64"),
        ("arm64", "aarch64"),
        ("aarch64", "aarch64"),
        ("ppc64le", "ppc64le"),
    ],
)
def test_arch_names(raw: str, norm: str) -> None:
    assert normalize_arch(raw) == norm


def test_detect_os_reads_a_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc/os-release").write_text((OSR / "ubuntu-24.04.txt").read_text())
    (tmp_path / "proc/version").write_text((PROC / "version-wsl2.txt").read_text())
    (tmp_path / ".dockerenv").write_text("")
    info = detect_os(tmp_path, environ={"NVIDIA_PYTORCH_VERSION": "25.01"})
    assert info.system == "linux"
    assert info.distro_id == "ubuntu" and info.distro_version == "24.04"
    assert info.wsl is True
    assert info.containers == ("docker", "ngc:25.01")
    assert info.libc is not None and info.libc.startswith("glibc ")
    assert info.glibc is not None and info.glibc >= (2, 17)
