"""core/cuda.py: every spelling of a CUDA version and a compute capability, and the
coverage rule, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bnb_provision.core.cuda import (
    ComputeCapability,
    CudaVersion,
    DriverVersion,
    covers,
    cuda_of_variant,
    cuda_option,
    is_cuda_tag,
    ptx_blocked,
    variant_of_cuda,
)
from bnb_provision.db.rows import BnbLibraryRow, TorchBuild
from bnb_provision.detect.fatbin import KernelInventory

versions = st.builds(CudaVersion, st.integers(1, 99), st.integers(0, 9))
ccs = st.builds(ComputeCapability, st.integers(1, 30), st.integers(0, 9))
archs = st.lists(st.integers(10, 309), max_size=8).map(tuple)
_RANK = {None: 0, "ptx": 1, "sass": 2}


# -- CUDA versions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("12.8", (12, 8)),
        ("13.0", (13, 0)),
        ("9.2", (9, 2)),
        ("12.8.90", (12, 8)),
        ("12", (12, 0)),
        (" 11.8 ", (11, 8)),
    ],
)
def test_parse(text: str, version: tuple[int, int]) -> None:
    assert CudaVersion.parse(text) == version


@pytest.mark.parametrize("text", ["", "cpu", "cu128", "12.", "12.10", "x.y", "123.4", "12.8a"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a CUDA version"):
        CudaVersion.parse(text)


def test_spellings() -> None:
    v = CudaVersion(12, 8)
    assert (str(v), v.tag, v.variant) == ("12.8", "128", "cu128")
    assert f"CUDA {CudaVersion(13, 0)}" == "CUDA 13.0"
    assert CudaVersion.from_tag("118") == (11, 8)
    assert CudaVersion.from_tag("92") == (9, 2)
    assert CudaVersion.from_tag("130") == (13, 0)
    assert CudaVersion.from_variant("cu126") == (12, 6)
    assert CudaVersion.from_driver_api(13000) == (13, 0)
    assert CudaVersion.from_driver_api(12040) == (12, 4)
    assert CudaVersion(11, 8) < CudaVersion(12, 0) < CudaVersion(12, 6)


@pytest.mark.parametrize("tag", ["", "1", "1234", "12a", "cu128", "12.8", " 124"])
def test_tags_are_two_or_three_digits(tag: str) -> None:
    assert not is_cuda_tag(tag)
    with pytest.raises(ValueError, match="not a CUDA version tag"):
        CudaVersion.from_tag(tag)


@pytest.mark.parametrize("variant", ["cpu", "rocm6.2", "xpu", "cu", "cu1", "cu12.8", "CU128"])
def test_variants_without_cuda(variant: str) -> None:
    assert CudaVersion.from_variant(variant) is None
    assert cuda_of_variant(variant) is None


def test_torch_variants_and_the_cuda_option() -> None:
    assert cuda_of_variant("cu128") == "12.8"
    assert cuda_of_variant("cpu") is None
    assert variant_of_cuda("12.8") == "cu128"
    assert variant_of_cuda("13.0") == "cu130"
    assert variant_of_cuda("cpu") == "cpu"
    assert cuda_option("cu118") == "11.8"
    assert cuda_option("cpu") == "cpu"
    # --cuda names ROCm, Intel and Apple builds too (issue 13): a variant is its own option
    assert cuda_option("rocm6.2") == "rocm6.2"
    assert cuda_option("xpu") == "xpu"
    assert cuda_option("nightly") is None
    with pytest.raises(ValueError, match="is not a CUDA version"):
        variant_of_cuda("cu128")


@given(versions)
def test_every_spelling_round_trips(v: CudaVersion) -> None:
    assert CudaVersion.parse(str(v)) == v
    assert CudaVersion.from_tag(v.tag) == v
    assert is_cuda_tag(v.tag)
    assert CudaVersion.from_variant(v.variant) == v
    assert CudaVersion.from_driver_api(v.major * 1000 + v.minor * 10) == v
    assert cuda_of_variant(variant_of_cuda(str(v))) == str(v)
    assert cuda_option(variant_of_cuda(str(v))) == str(v)
    assert variant_of_cuda(cuda_option(v.variant) or "") == v.variant


@given(versions, versions)
def test_order_is_numeric_not_textual(a: CudaVersion, b: CudaVersion) -> None:
    assert (a < b) == (Version(str(a)) < Version(str(b)))


# -- compute capabilities ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cc"),
    [("8.6", (8, 6)), ("sm_86", (8, 6)), ("sm86", (8, 6)), ("12.0", (12, 0)), ("sm_120", (12, 0))],
)
def test_compute_capability_parse(text: str, cc: tuple[int, int]) -> None:
    assert ComputeCapability.parse(text) == cc


@pytest.mark.parametrize("text", ["86", "RTX 3090", "8.6.1", "sm_", "8.10", "", "compute_86"])
def test_compute_capability_refuses(text: str) -> None:
    # bare digits could be a GPU's name: the caller then looks the name up
    with pytest.raises(ValueError, match="is not a compute capability"):
        ComputeCapability.parse(text)


def test_compute_capability_spellings() -> None:
    cc = ComputeCapability(12, 0)
    assert (str(cc), cc.sm, cc.arch) == ("12.0", "sm_120", 120)
    assert ComputeCapability.from_arch(86) == (8, 6) == ComputeCapability(8, 6)
    assert ComputeCapability(7, 5) < (8, 0)


@given(ccs)
def test_compute_capability_round_trips(cc: ComputeCapability) -> None:
    assert ComputeCapability.from_arch(cc.arch) == cc
    assert ComputeCapability.parse(str(cc)) == cc
    assert ComputeCapability.parse(cc.sm) == cc


# -- coverage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cc", "sass", "ptx", "expected"),
    [
        ((8, 6), (80,), (), "sass"),  # same major, older minor
        ((8, 0), (86,), (), None),  # same major, newer minor
        ((9, 0), (80,), (), None),  # SASS never crosses majors
        ((9, 0), (80,), (80,), "ptx"),  # PTX is JIT-compiled for newer GPUs
        ((7, 5), (), (80,), None),  # but never for older ones
        ((12, 1), (120,), (), "sass"),
        ((10, 3), (100,), (), "sass"),
        ((10, 0), (103,), (), None),
        ((12, 0), (90, 100), (90,), "ptx"),
        ((6, 1), (60, 61), (90,), "sass"),
        ((8, 9), (), (), None),
    ],
)
def test_covers(
    cc: tuple[int, int], sass: tuple[int, ...], ptx: tuple[int, ...], expected: str | None
) -> None:
    assert covers(cc, sass=sass, ptx=ptx) == expected


@given(ccs, archs, archs)
def test_own_machine_code_always_runs(
    cc: ComputeCapability, sass: tuple[int, ...], ptx: tuple[int, ...]
) -> None:
    assert covers(cc, sass=(*sass, cc.arch), ptx=ptx) == "sass"
    assert covers(cc, sass=sass, ptx=(*ptx, cc.arch)) in ("sass", "ptx")


@given(ccs, archs)
def test_sass_needs_the_same_major_and_no_newer_minor(
    cc: ComputeCapability, sass: tuple[int, ...]
) -> None:
    runs = [a for a in map(ComputeCapability.from_arch, sass) if a.major == cc.major and a <= cc]
    assert (covers(cc, sass=sass, ptx=()) == "sass") == bool(runs)


@given(ccs, archs)
def test_ptx_runs_when_no_newer_than_the_gpu(cc: ComputeCapability, ptx: tuple[int, ...]) -> None:
    expected = "ptx" if ptx and min(ptx) <= cc.arch else None
    assert covers(cc, sass=(), ptx=ptx) == expected


@given(ccs, archs, archs, archs, archs)
def test_more_kernels_never_cover_less(
    cc: ComputeCapability,
    sass: tuple[int, ...],
    ptx: tuple[int, ...],
    more_sass: tuple[int, ...],
    more_ptx: tuple[int, ...],
) -> None:
    before = covers(cc, sass=sass, ptx=ptx)
    after = covers(cc, sass=(*sass, *more_sass), ptx=(*ptx, *more_ptx))
    assert _RANK[after] >= _RANK[before]


@given(ccs, archs, archs, archs)
def test_the_three_kernel_lists_share_the_rule(
    cc: ComputeCapability, sass: tuple[int, ...], ptx: tuple[int, ...], rel_ptx: tuple[int, ...]
) -> None:
    """torch builds (DB), bitsandbytes libraries (DB) and a scanned binary ask one rule;
    relocatable PTX counts for bitsandbytes, a torch build has none."""
    torch = TorchBuild(
        variant="cu128",
        torch=SpecifierSet(),
        platforms=("linux-x86_64",),
        channel="index",
        sass=sass,
        ptx=ptx,
        source="https://example.invalid",
        checked="2026-01-01",
    )
    lib = BnbLibraryRow(
        bnb=Version("0.49.0"),
        platform="linux-x86_64",
        file="libbitsandbytes_cuda128.so",
        backend="cuda",
        version="128",
        sass=sass,
        ptx=ptx,
        rel_ptx=rel_ptx,
    )
    scanned = KernelInventory(format="elf", sass=sass, ptx=ptx, rel_ptx=rel_ptx)
    assert torch.covers(cc) == covers(cc, sass=sass, ptx=ptx)
    assert lib.covers(cc) == covers(cc, sass=sass, ptx=(*ptx, *rel_ptx))
    assert scanned.covers(*cc) == lib.covers(cc)


# -- PTX needs a driver as new as the toolkit that emitted it -------------------------


@pytest.mark.parametrize(
    ("cc", "sass", "ptx", "toolkit", "driver", "expected"),
    [
        # issue 13: a 580 driver (CUDA 13.0) cannot JIT the PTX of a CUDA 13.2 build
        ((13, 0), (75, 120), (120,), (13, 2), (13, 0), None),
        ((13, 0), (75, 120), (120,), (13, 2), (13, 2), "ptx"),
        ((13, 0), (75, 120), (120,), (13, 0), (13, 0), "ptx"),
        ((13, 0), (75, 120), (120,), (13, 0), (13, 3), "ptx"),  # newer drivers JIT older PTX
        ((12, 0), (75, 120), (120,), (13, 2), (12, 8), "sass"),  # SASS needs no JIT
        ((13, 0), (75, 120), (120,), None, (12, 8), "ptx"),  # the toolkit unknown: not asked
    ],
)
def test_ptx_counts_only_where_the_driver_can_jit_it(
    cc: tuple[int, int],
    sass: tuple[int, ...],
    ptx: tuple[int, ...],
    toolkit: tuple[int, int] | None,
    driver: tuple[int, int],
    expected: str | None,
) -> None:
    tk = CudaVersion(*toolkit) if toolkit else None
    assert covers(cc, sass=sass, ptx=ptx, toolkit=tk, driver_cuda=CudaVersion(*driver)) == expected
    assert ptx_blocked(cc, sass=sass, ptx=ptx, toolkit=tk, driver_cuda=CudaVersion(*driver)) == (
        expected is None
    )


@given(ccs, archs, archs, versions, versions)
def test_the_driver_only_ever_takes_ptx_away(
    cc: ComputeCapability,
    sass: tuple[int, ...],
    ptx: tuple[int, ...],
    toolkit: CudaVersion,
    driver: CudaVersion,
) -> None:
    """With the driver's CUDA given, coverage is never more than by architecture alone; it
    is the same whenever the driver is at least as new as the toolkit."""
    plain = covers(cc, sass=sass, ptx=ptx)
    asked = covers(cc, sass=sass, ptx=ptx, toolkit=toolkit, driver_cuda=driver)
    assert _RANK[asked] <= _RANK[plain]
    if driver >= toolkit or plain == "sass":
        assert asked == plain
    else:
        assert asked == (None if plain == "ptx" else plain)


@given(ccs, archs, archs, versions)
def test_db_rows_and_scanned_binaries_pass_the_toolkit_through(
    cc: ComputeCapability, sass: tuple[int, ...], ptx: tuple[int, ...], driver: CudaVersion
) -> None:
    """A torch build's toolkit is its variant's CUDA, a library's its tag's: the rows ask
    the one rule with them."""
    torch = TorchBuild(
        variant="cu132",
        torch=SpecifierSet(),
        platforms=("linux-x86_64",),
        channel="index",
        sass=sass,
        ptx=ptx,
        source="https://example.invalid",
        checked="2026-01-01",
    )
    lib = BnbLibraryRow(
        bnb=Version("0.50.2"),
        platform="linux-x86_64",
        file="libbitsandbytes_cuda130.so",
        backend="cuda",
        version="130",
        sass=sass,
        ptx=(),
        rel_ptx=ptx,
    )
    scanned = KernelInventory(format="elf", sass=sass, ptx=(), rel_ptx=ptx)
    t132, t130 = CudaVersion(13, 2), CudaVersion(13, 0)
    assert torch.covers(cc, driver) == covers(
        cc, sass=sass, ptx=ptx, toolkit=t132, driver_cuda=driver
    )
    assert lib.covers(cc, driver) == covers(
        cc, sass=sass, ptx=ptx, toolkit=t130, driver_cuda=driver
    )
    assert scanned.covers(*cc, toolkit=t130, driver_cuda=driver) == lib.covers(cc, driver)


def test_a_driver_version_prints_as_it_was_written() -> None:
    import pickle

    drv = DriverVersion("580.159.04")
    assert str(drv) == "580.159.04" and str(Version("580.159.04")) == "580.159.4"
    assert drv == Version("580.159.4") and drv > Version("580.95.05")
    assert str(pickle.loads(pickle.dumps(drv))) == "580.159.04"
    assert f"driver >= {DriverVersion(' 450.80.02 ')}" == "driver >= 450.80.02"
