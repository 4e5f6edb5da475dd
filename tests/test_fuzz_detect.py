"""Every reader of outside input in detect/ is total: on any input it returns a value or
raises its documented error (ValueError for the pure parsers, the project's own errors
for readers), within bounded time and memory.

The default run is the quick profile; ``python -m pytest -m fuzz
--hypothesis-profile=long`` runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnb_provision.detect import fatbin, host, nvidia, target

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parent / "fixtures"
_BINARIES = [(FIXTURES / "kernels" / n).read_bytes() for n in ("whole.so", "rdc.so")]
_SMI = [p.read_text() for p in sorted((FIXTURES / "nvidia_smi").glob("*.csv"))]
_lines = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(
            ["inf", "nan", "-1", "1e400", "[N/A]", "9" * 400, "NVIDIA H100", "9.0", "580.95.05"]
        ),
    ),
    max_size=12,
)


@given(st.one_of(st.text(max_size=400), _lines.map(", ".join), _lines.map("\n".join)))
def test_nvidia_smi_csv(text: str) -> None:
    with contextlib.suppress(ValueError):
        _driver, gpus = nvidia.parse_nvidia_smi_csv(text)
        for gpu in gpus:
            assert gpu.memory_total_mib is None or gpu.memory_total_mib >= 0


@given(st.sampled_from(_SMI), st.integers(0, 400), st.sampled_from(["inf", "nan", "-inf", "x"]))
def test_nvidia_smi_csv_with_a_field_replaced(text: str, where: int, value: str) -> None:
    fields = text.split(",")
    fields[where % len(fields)] = value
    with contextlib.suppress(ValueError):
        nvidia.parse_nvidia_smi_csv(",".join(fields))


@given(st.text(max_size=400))
def test_nvidia_smi_header_and_proc(text: str) -> None:
    nvidia.parse_nvidia_smi_header(text)
    nvidia.parse_proc_version(text)
    nvidia.parse_proc_gpu_information(text)
    host.parse_os_release(text)
    host.parse_proc_version_wsl(text)


@given(st.text(max_size=200))
def test_driver_versions(text: str) -> None:
    found = nvidia.parse_driver_version(text)
    assert found is None or found == text.strip()


@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.builds(
                lambda k, v: f"{k} = {v}",
                st.sampled_from(["__version__", "cuda", "hip"]),
                st.text(max_size=40),
            ),
            st.integers(1, 3000).map(lambda n: "__version__ = " + "[" * n + "]" * n),
        ),
        max_size=8,
    ).map("\n".join)
)
def test_torch_version_py(text: str) -> None:
    with contextlib.suppress(ValueError):
        info = target.parse_torch_version_py(text)
        assert isinstance(info.version, str)


@given(st.text(max_size=80))
def test_bnb_library_names(name: str) -> None:
    backend, _version = target.parse_bnb_library_name(name)
    assert backend in {"cuda", "cuda-nocublaslt", "rocm", "xpu", "cpu", "mps", "other"}


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[:cut]) if cut is not None else bytes(buf)


@given(
    st.sampled_from(_BINARIES),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=16),
    st.one_of(st.none(), st.integers(0, 30000)),
)
def test_elf_binaries_mutated(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> None:
    with contextlib.suppress(ValueError):
        fatbin.parse_binary_kernels(_mutate(data, edits, cut))


@given(st.binary(max_size=600))
def test_any_bytes_as_a_binary(data: bytes) -> None:
    for parse in (fatbin.parse_binary_kernels, fatbin.parse_elf_kernels, fatbin.parse_pe_kernels):
        with contextlib.suppress(ValueError):
            parse(data)
    with contextlib.suppress(ValueError):
        fatbin.parse_fatbins(data)


@given(st.binary(max_size=64))
def test_pe_headers(tail: bytes) -> None:
    with contextlib.suppress(ValueError):
        fatbin.parse_pe_kernels(b"MZ" + b"\0" * 58 + b"\x40\0\0\0" + b"PE\0\0" + tail)
