"""AMD, Intel and Apple detection: the pure parsers on real captured outputs
(tests/fixtures/amd/README.md names each source), the sysfs readers on trees laid out as
the kernel lays them out, the snapshot's optional keys, and every parser on any input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bnb_provision.detect import amd, apple, intel
from bnb_provision.detect.accelerators import Accelerator, Runtime
from bnb_provision.detect.host import OSInfo, PythonInfo
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.snapshot import machine_from_dict
from bnb_provision.errors import SnapshotError

AMD = Path(__file__).parent / "fixtures" / "amd"


def _text(name: str) -> str:
    return (AMD / name).read_text()


# -- AMD: pure parsers on real outputs -----------------------------------------------------


def test_rocminfo_gpu_agent() -> None:
    assert amd.parse_rocminfo(_text("rocminfo-rx7900xtx-agent3.txt")) == [
        ("Radeon RX 7900 XTX", "gfx1100")
    ]


def test_rocminfo_as_a_comment_pasted_it() -> None:
    assert amd.parse_rocminfo(_text("rocminfo-rx580-gfx803.txt")) == [
        ("Radeon RX 580 Series", "gfx803")
    ]


def test_rocminfo_cpu_agents_are_not_gpus() -> None:
    assert amd.parse_rocminfo(_text("rocminfo-ryzen-cpu-agent.txt")) == []


def test_rocminfo_isa_names_are_not_agents() -> None:
    text = _text("rocminfo-rx7900xtx-agent3.txt") + (
        "  ISA Info:\n    ISA 1\n      Name:                    amdgcn-amd-amdhsa--gfx1100\n"
    )
    assert amd.parse_rocminfo(text) == [("Radeon RX 7900 XTX", "gfx1100")]


def test_amd_smi_static() -> None:
    assert amd.parse_amd_smi_static(_text("amd-smi-static-mi350x.txt")) == [
        ("AMD Instinct MI350X", "gfx950")
    ]


@pytest.mark.parametrize(
    ("name", "gfx"),
    [("kfd-mi300x-node4-properties.txt", "gfx942"), ("kfd-radeon-vii-avail.txt", "gfx906")],
)
def test_kfd_properties(name: str, gfx: str) -> None:
    props = amd.parse_kfd_properties(_text(name))
    assert amd.gfx_from_target_version(props["gfx_target_version"]) == gfx


@pytest.mark.parametrize(
    ("value", "gfx"),
    [
        (90402, "gfx942"),
        (90010, "gfx90a"),
        (90008, "gfx908"),
        (90500, "gfx950"),
        (110000, "gfx1100"),
        (100300, "gfx1030"),
        (120001, "gfx1201"),
        (0, None),
        (91600, None),  # a minor of 16 names no target
        (90016, None),
    ],
)
def test_gfx_from_target_version(value: int, gfx: str | None) -> None:
    assert amd.gfx_from_target_version(value) == gfx


@pytest.mark.parametrize(
    ("text", "version"),
    [("6.4.1-120\n", "6.4.1"), ("6.4.43482-0f2d60242", "6.4.43482"), ("7.2\n", "7.2"), ("x", None)],
)
def test_rocm_version(text: str, version: str | None) -> None:
    assert amd.parse_rocm_version(text) == version


# -- AMD: the sysfs reader ----------------------------------------------------------------


def _kfd_node(root: Path, n: int, props: str, mem: int | None = None) -> None:
    node = root / "sys/class/kfd/kfd/topology/nodes" / str(n)
    node.mkdir(parents=True)
    (node / "properties").write_text(props)
    if mem is not None:
        (node / "mem_banks/0").mkdir(parents=True)
        (node / "mem_banks/0/properties").write_text(f"heap_type 1\nsize_in_bytes {mem}\n")


def test_kfd_topology_reader(tmp_path: Path) -> None:
    _kfd_node(tmp_path, 0, "cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n")
    _kfd_node(
        tmp_path,
        1,
        "simd_count 1216\n" + _text("kfd-mi300x-node4-properties.txt") + "drm_render_minor 128\n",
        mem=206141652992,
    )
    drm = tmp_path / "sys/class/drm/renderD128/device"
    drm.mkdir(parents=True)
    (drm / "product_name").write_text("AMD Instinct MI300X\n")
    (tmp_path / "opt/rocm/.info").mkdir(parents=True)
    (tmp_path / "opt/rocm/.info/version").write_text("6.4.1-120\n")
    warnings: list[str] = []
    found, runtimes = amd.detect_amd(warnings, root=tmp_path, use_tools=False)
    assert found == (
        Accelerator(
            vendor="amd",
            index=0,
            name="AMD Instinct MI300X",
            target="gfx942",
            memory_total_mib=196592,
            source="kfd",
        ),
    )
    assert runtimes == (
        Runtime(vendor="amd", name="rocm", version="6.4.1", source="/opt/rocm/.info/version"),
    )
    assert warnings == []


def test_no_amd_gpu(tmp_path: Path) -> None:
    assert amd.detect_amd([], root=tmp_path) == ((), ())


# -- Intel ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "pci_class", "device", "found"),
    [
        ("0x8086\n", "0x030000\n", "0x56a0\n", 0x56A0),  # Arc A770: VGA controller
        ("0x8086", "0x038000", "0x0bd5", 0x0BD5),  # Max 1550: display controller
        ("0x8086", "0x060400", "0x7a38", None),  # a PCI bridge
        ("0x10de", "0x030000", "0x2684", None),  # NVIDIA
        ("junk", "0x030000", "0x56a0", None),
    ],
)
def test_pci_device(vendor: str, pci_class: str, device: str, found: int | None) -> None:
    assert intel.parse_pci_device(vendor, pci_class, device) == found


def _pci(root: Path, slot: str, vendor: str, pci_class: str, device: str, driver: str) -> None:
    dev = root / "sys/bus/pci/devices" / slot
    dev.mkdir(parents=True)
    for name, value in (("vendor", vendor), ("class", pci_class), ("device", device)):
        (dev / name).write_text(value + "\n")
    if driver:
        target = root / "sys/bus/pci/drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (dev / "driver").symlink_to(target)


def test_intel_sysfs_reader(tmp_path: Path) -> None:
    _pci(tmp_path, "0000:00:02.0", "0x8086", "0x030000", "0x7d55", "i915")
    _pci(tmp_path, "0000:03:00.0", "0x8086", "0x030000", "0x56a0", "xe")
    _pci(tmp_path, "0000:04:00.0", "0x10de", "0x030000", "0x2684", "nvidia")
    _pci(tmp_path, "0000:05:00.0", "0x8086", "0x038000", "0x0bd5", "")
    warnings: list[str] = []
    found, runtimes = intel.detect_intel(warnings, root=tmp_path, first_index=1)
    assert [(a.index, a.name, a.target) for a in found] == [
        (1, "Intel GPU [8086:7d55]", None),
        (2, "Intel GPU [8086:56a0]", None),
        (3, "Intel GPU [8086:0bd5]", None),
    ]
    assert [r.name for r in runtimes] == ["i915", "xe"]
    assert warnings == ["Intel GPU 0000:05:00.0: no kernel driver is bound (xe or i915)"]


# -- Apple ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chip"),
    [
        ("Apple M1\n", "Apple M1"),
        ("Apple M3 Pro", "Apple M3 Pro"),
        ("Apple M2 Ultra", "Apple M2 Ultra"),
        ("Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz", None),
    ],
)
def test_brand_string(text: str, chip: str | None) -> None:
    assert apple.parse_brand_string(text) == chip


# -- the snapshot's optional keys ---------------------------------------------------------


def _machine(**kw: object) -> Machine:
    return Machine(
        os=OSInfo(system="linux", arch="x86_64"),
        python=PythonInfo(version="3.12.3"),
        nvidia=None,
        gpus=(),
        **kw,  # type: ignore[arg-type]
    )


def test_snapshot_round_trip_with_accelerators() -> None:
    m = _machine(
        accelerators=(
            Accelerator(vendor="amd", index=0, name="Radeon RX 7900 XTX", target="gfx1100"),
        ),
        runtimes=(Runtime(vendor="amd", name="rocm", version="6.4.1", source="test"),),
    )
    data = json.loads(json.dumps(m.to_dict()))
    back = machine_from_dict(data)
    assert back.accelerators == m.accelerators
    assert back.runtimes == m.runtimes


def test_a_machine_without_them_writes_what_it_always_did() -> None:
    data = _machine().to_dict()
    assert "accelerators" not in data and "runtimes" not in data
    assert machine_from_dict(data).accelerators == ()


def test_bad_accelerator_is_refused_with_its_path() -> None:
    data = _machine().to_dict()
    data["accelerators"] = [{"vendor": "nvidia", "name": "x"}]
    with pytest.raises(SnapshotError, match=r"accelerators\[0\]\.vendor: expected one of amd"):
        machine_from_dict(data)


# -- every parser is total -------------------------------------------------------------------

_REAL = [p.read_text() for p in sorted(AMD.glob("*.txt"))]
_texts = st.one_of(
    st.text(max_size=400),
    st.sampled_from(_REAL),
    st.lists(st.sampled_from(_REAL), max_size=3).map("".join),
)


@pytest.mark.fuzz
@given(_texts, st.integers(0, 2000), st.text(max_size=20))
@example("0", 1, " \u00b2")  # long run: a superscript digit, ValueError from int()
def test_amd_text_parsers(text: str, where: int, junk: str) -> None:
    damaged = text[:where] + junk + text[where:]
    for parse in (amd.parse_rocminfo, amd.parse_amd_smi_static):
        for name, target in parse(damaged):
            assert name and target.startswith("gfx")
    props = amd.parse_kfd_properties(damaged)
    assert all(v >= 0 for v in props.values())
    amd.parse_rocm_version(damaged)


@pytest.mark.fuzz
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_gfx_decode(value: int) -> None:
    gfx = amd.gfx_from_target_version(value)
    assert gfx is None or (gfx.startswith("gfx") and len(gfx) <= 8)


@pytest.mark.fuzz
@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12))
def test_pci_and_brand_parsers(vendor: str, pci_class: str, device: str) -> None:
    found = intel.parse_pci_device(vendor, pci_class, device)
    assert found is None or 0 <= found <= 0xFFFFFFFF
    chip = apple.parse_brand_string(vendor + pci_class)
    assert chip is None or chip.startswith("Apple M")


@pytest.mark.fuzz
@given(
    st.dictionaries(
        st.sampled_from(["vendor", "index", "name", "target", "x"]),
        st.none() | st.integers() | st.text(max_size=8),
    )
)
def test_snapshot_accelerator_reader(entry: dict[str, object]) -> None:
    data = _machine().to_dict()
    data["accelerators"] = [entry]
    with contextlib.suppress(SnapshotError):
        machine_from_dict(data)


def test_a_real_gpu_server_has_no_intel_or_amd_gpu(tmp_path: Path) -> None:
    """The PCI devices of the project's H200 machine, laid out as sysfs: its Intel device is
    a host bridge, not a display device, and there is no KFD."""
    listing = Path(__file__).parent / "fixtures" / "pci" / "h200-vm.txt"
    for line in listing.read_text().splitlines():
        slot, vendor, pci_class, device, *driver = line.split()
        _pci(tmp_path, slot, vendor, pci_class, device, driver[0] if driver else "")
    assert intel.detect_intel([], root=tmp_path) == ((), ())
    assert amd.detect_amd([], root=tmp_path) == ((), ())


def test_hip_version_from_hipconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /opt/rocm/.info/version, hipconfig --version gives the HIP runtime's."""
    _kfd_node(tmp_path / "root", 1, "gfx_target_version 110000\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "hipconfig"
    tool.write_text("#!/bin/sh\nprintf '6.4.43482-0f2d60242'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    found, runtimes = amd.detect_amd([], root=tmp_path / "root")
    assert [a.target for a in found] == ["gfx1100"]
    assert runtimes == (Runtime(vendor="amd", name="hip", version="6.4.43482", source="hipconfig"),)
