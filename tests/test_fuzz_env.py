"""What a target environment holds is read totally (issue 12): its stamp (any bytes, or a
stamp with one value changed), the probe's answer from its interpreter, its dist-info
folders and ``torch/version.py``, and a snapshot of a machine with an environment. Each
gives a value or the project's own error, and what doctor and rebuild do with the value
(findings, drift, the request honoured) raises nothing else either.

The default run is the quick profile; ``python -m pytest -m fuzz --hypothesis-profile=long``
runs the long one (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bnb_provision.db.load import load_db
from bnb_provision.detect.machine import Machine
from bnb_provision.detect.snapshot import load_machine, machine_from_dict
from bnb_provision.detect.target import EnvInfo, _env_from_probe, installed_from_files
from bnb_provision.doctor.check import DoctorOptions
from bnb_provision.doctor.diagnose import diagnose
from bnb_provision.env.options import BuildOptions
from bnb_provision.env.request import honour_request, lock_changes
from bnb_provision.env.stamp import STAMP_FILE, Request, Stamp, machine_drift, read_stamp
from bnb_provision.env.store import OWNER, PARTIAL, remove_abandoned
from bnb_provision.env.verify import report_from_dict
from bnb_provision.errors import LockfileError, SnapshotError
from bnb_provision.plan.constraints import Constraints
from bnb_provision.plan.inputs import target_from_machine
from tests.support.folders import fresh_folder
from tests.support.mutation import Mutation, json_values, mutate, mutations, tricky_text

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parent / "fixtures"
_DB = load_db()
_SNAPSHOT = json.loads((FIXTURES / "snapshots" / "h100-bnb-0.50.2.json").read_text())
_MACHINE = load_machine(FIXTURES / "snapshots" / "h100-bnb-0.50.2.json")
_STAMP = Stamp(
    created="2026-11-24T14:10:31+00:00",
    driver="580.159.04",
    gpus=(("NVIDIA H100 80GB HBM3", "9.0"),),
    torch="2.11.0+cu130",
    bitsandbytes="0.50.2",
    library="libbitsandbytes_cuda130.so",
    lock_sha256="a" * 64,
    db_version="2026.11.24",
    verified=True,
    request=Request(
        stack="bnb",
        constraints=Constraints(torch="2.11", cuda="13.0", python="3.12", profile="qlora"),
        lock="/team/locks",
        lock_file="/team/locks/x.requirements.txt",
        torch_system=None,
        cuda_without_gpu=False,
    ),
).to_dict()
_PROBE = {
    "python": {"version": "3.12.3", "executable": "/env/bin/python", "implementation": "cpython"},
    "prefix": "/env",
    "base_prefix": "/usr",
    "platform": "linux",
    "packages": {"torch": "2.11.0+cu130", "bitsandbytes": "0.50.2", "numpy": "2.3.1"},
    "installed_at": {"torch": 1764000000.5, "bitsandbytes": 1764000001},
    "variables": {"CUDA_VISIBLE_DEVICES": "0", "BNB_CUDA_VERSION": "130"},
    "torch": {
        "version_py": "__version__ = '2.11.0+cu130'\ncuda = '13.0'\nhip = None\n",
        "location": "/env/lib/python3.12/site-packages/torch",
    },
    "bitsandbytes": {
        "version": "0.50.2",
        "location": "/env/lib/python3.12/site-packages/bitsandbytes",
        "libraries": ["/env/lib/libbitsandbytes_cuda130.so", "/env/lib/libbitsandbytes_cpu.so"],
        "direct_url": None,
        "installer": "uv",
    },
    "cudart": ["/env/lib/libcudart.so.13"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("env-fuzz")


def _after(stamp: Stamp, workdir: Path) -> None:
    """What doctor and rebuild do with a stamp read."""
    machine_drift(stamp, _MACHINE)
    diagnose(_MACHINE, _DB, DoctorOptions(stamp=stamp))
    opts = BuildOptions(
        env=workdir / "env", constraints=Constraints(), defaults=frozenset({"stack", "profile"})
    )
    with contextlib.suppress(LockfileError):  # the lock recorded is gone
        new, _notes = honour_request(opts, stamp)
        assert isinstance(new, BuildOptions)
    lock_changes(stamp, workdir / "x.requirements.txt")


@given(st.one_of(st.binary(max_size=300), st.integers(1, 3000).map(lambda n: b"[" * n)))
def test_any_bytes_as_a_stamp(workdir: Path, raw: bytes) -> None:
    folder = fresh_folder(workdir, "env")
    (folder / STAMP_FILE).write_bytes(raw)
    with contextlib.suppress(SnapshotError):
        stamp = read_stamp(folder)
        assert stamp is None or isinstance(stamp, Stamp)


@given(mutations(_STAMP))
def test_a_mutated_stamp(workdir: Path, mutation: Mutation) -> None:
    folder = fresh_folder(workdir, "env")
    (folder / STAMP_FILE).write_text(json.dumps(mutate(_STAMP, mutation)))
    try:
        stamp = read_stamp(folder)
    except SnapshotError:
        return
    assert stamp is not None
    _after(stamp, workdir)


_PROBE_FOCUS = (
    ("python", "version"),
    ("packages", "torch"),
    ("torch", "version_py"),
    ("bitsandbytes", "version"),
    ("bitsandbytes", "libraries", 0),
    ("variables", "BNB_CUDA_VERSION"),
    ("installed_at", "torch"),
)
_SNAPSHOT_FOCUS = (
    ("nvidia", "driver"),
    ("nvidia", "cuda_driver"),
    ("gpus", 0, "compute_capability"),
    ("gpus", 0, "name"),
    ("gpus", 0, "memory_total_mib"),
    ("os", "libc"),
    ("os", "system"),
    ("os", "release"),
    ("python", "version"),
    ("env", "torch", "version"),
    ("env", "torch", "cuda"),
    ("env", "torch", "hip"),
    ("env", "bitsandbytes", "version"),
    ("env", "bitsandbytes", "libraries", 0, "file"),
    ("env", "bitsandbytes", "libraries", 0, "version"),
    ("env", "variables"),
    ("env", "bitsandbytes", "libraries", 1, "kernels", "sass"),
    ("env", "bitsandbytes", "libraries", 1, "backend"),
    ("env", "python", "version"),
)


@given(st.one_of(mutations(_PROBE, _PROBE_FOCUS).map(lambda m: mutate(_PROBE, m)), json_values))
def test_the_probe_answer(answer: Any) -> None:
    """What the target interpreter printed (checked field by field): an environment that
    doctor diagnoses, or the error inspect_env turns into a TargetEnvError."""
    warnings: list[str] = []
    try:
        env = _env_from_probe(answer, warnings, read_binaries=False)
    except (ValueError, AssertionError):  # FieldError: inspect_env's TargetEnvError
        return
    assert isinstance(env, EnvInfo)
    env.torch.variant if env.torch else None  # noqa: B018
    machine = Machine(
        os=_MACHINE.os, python=env.python, nvidia=_MACHINE.nvidia, gpus=_MACHINE.gpus, env=env
    )
    assert all(f.severity in {"error", "warning", "info"} for f in diagnose(machine, _DB))


@given(mutations(_SNAPSHOT, _SNAPSHOT_FOCUS))
@example((("env", "bitsandbytes", "libraries", 6, "version"), "replace", " "))  # long run
def test_doctor_and_plan_on_a_mutated_snapshot(mutation: Mutation) -> None:
    """A snapshot with one value changed: a machine that doctor diagnoses and the planner
    reduces to a target, or a SnapshotError naming the field."""
    try:
        machine = machine_from_dict(mutate(_SNAPSHOT, mutation), label="fuzz")
    except SnapshotError:
        return
    diagnose(machine, _DB)
    with contextlib.suppress(SnapshotError):
        target_from_machine(machine, _DB)
    machine.os.glibc  # noqa: B018


_dist_names = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="/\x00"), min_size=1, max_size=30),
    st.builds(
        "{}-{}".format,
        st.sampled_from(["torch", "bitsandbytes", "Foo_Bar.baz", ""]),
        st.one_of(tricky_text, st.sampled_from(["2.11.0+cu130", "0.50.2", "1-2"])),
    ),
)


@given(
    st.lists(_dist_names, max_size=5),
    st.one_of(
        st.none(), st.text(max_size=200), st.binary(max_size=100).map(lambda b: b.decode("latin-1"))
    ),
)
def test_dist_info_folders_and_torch_version_py(
    workdir: Path, names: list[str], version_py: str | None
) -> None:
    site = fresh_folder(workdir, "env")
    for name in names:
        with contextlib.suppress(OSError, ValueError):  # a name the file system refuses
            (site / f"{name.replace('.', '_') if name in ('.', '..') else name}.dist-info").mkdir()
    if version_py is not None:
        (site / "torch").mkdir()
        (site / "torch" / "version.py").write_text(version_py, errors="surrogateescape")
    packages, torch = installed_from_files(site)
    assert all(isinstance(v, str) for v in packages.values())
    assert torch is None or isinstance(torch.version, str)


# -- verify's report from the target interpreter, and the store's pid files ---------------------

_VERIFY = json.loads((FIXTURES / "device" / "verify-ok.json").read_text())


@given(st.one_of(mutations(_VERIFY).map(lambda m: mutate(_VERIFY, m)), json_values))
@example(  # long run: a number of hundreds of digits, OverflowError in float()
    mutate(_VERIFY, (("devices", 0, "checks", 4, "mean_update"), "replace", 10**400))
)
def test_verify_reports(data: Any) -> None:
    """What the verify script printed: a report that renders, or the FieldError run_verify
    turns into a TargetEnvError."""
    from bnb_provision.cli.render import render_verify

    try:
        report = report_from_dict(data)
    except ValueError:  # FieldError
        return
    assert all(isinstance(f, str) for f in report.failures())
    render_verify(report.to_dict())
    json.dumps(report.to_dict())


_pid_lines = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{} {} {}\n".format,
        st.one_of(
            st.integers(-(2**70), 2**70),
            st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, "x", "", "0x10"]),
        ),
        st.sampled_from(["-", "12345", "x"]),
        st.sampled_from(["", "other-host", socket.gethostname()]),
    ),
)


@given(st.lists(_pid_lines, min_size=1, max_size=3))
def test_pid_files_in_the_store(workdir: Path, owners: list[str]) -> None:
    """Pid files of builds killed mid-way, with anything in them: init and rebuild clean
    up what they can tell is abandoned and raise nothing."""
    store = fresh_folder(workdir, "env")
    for i, text in enumerate(owners):
        partial = store / f"2026-11-24T14-10-3{i}Z-abcd{i}{PARTIAL}"
        partial.mkdir()
        (store / f"{partial.name}{OWNER}").write_text(text, errors="surrogateescape")
    remove_abandoned(store)


# -- doctor --from: a pasted report, as the machine doctor checks ---------------------------------

_REPORT_LINES = sorted(
    {
        line
        for path in (FIXTURES / "reports").glob("*.txt")
        for line in path.read_text(encoding="utf-8").splitlines()
    }
)
_report_values = st.one_of(
    tricky_text,
    st.sampled_from(["13.1", "cu131", "13-1", "0.50.2", "0..5", "12.", "sm_5", "gfx", "rocm"]),
)


@st.composite
def _report_text(draw: st.DrawFn) -> str:
    """Lines of real reports, with a version-like token replaced here and there."""
    lines = draw(st.lists(st.sampled_from(_REPORT_LINES), min_size=1, max_size=30))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        words = lines[at].split(" ")
        words[draw(st.integers(0, len(words) - 1))] = draw(_report_values)
        lines[at] = " ".join(words)
    return "\n".join(lines)


@given(_report_text())
def test_doctor_on_a_pasted_report(text: str) -> None:
    """The machine a pasted report describes, diagnosed and rendered; or the
    SnapshotError that says the text holds nothing to read."""
    from bnb_provision.cli.render import render_findings, render_report
    from bnb_provision.detect.reports import read_report

    try:
        report = read_report(text, python="3.12")
    except SnapshotError:
        return
    machine = report.machine()
    render_report(report)
    if machine.env is not None:
        render_findings(diagnose(machine, _DB), "doctor")


# -- the shrunk inputs that crashed, kept as examples ------------------------------------------


def test_a_deeply_nested_stamp_is_a_snapshot_error(tmp_path: Path) -> None:
    """RecursionError before."""
    (tmp_path / STAMP_FILE).write_bytes(b"[" * 3000)
    with pytest.raises(SnapshotError, match="unreadable stamp"):
        read_stamp(tmp_path)


def test_a_recorded_lock_name_too_long_for_the_file_system_is_gone(tmp_path: Path) -> None:
    """OSError (ENAMETOOLONG) from rebuild before."""
    data = mutate(_STAMP, (("request", "lock", "given"), "replace", "a" * 5000))
    (tmp_path / STAMP_FILE).write_text(json.dumps(data))
    stamp = read_stamp(tmp_path)
    assert stamp is not None
    opts = BuildOptions(env=tmp_path / "env", constraints=Constraints())
    with pytest.raises(LockfileError, match="is gone"):
        honour_request(opts, stamp)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("installed_at", "torch"), 10**400),  # OverflowError before
        (("installed_at", "torch"), float("nan")),
        (("bitsandbytes", "version"), ""),  # InvalidVersion from doctor before
        (("torch", "version_py"), "__version__ = '2.11.0'\ncuda = '13-1'\n"),  # ValueError
    ],
    ids=["mtime-10**400", "mtime-nan", "bnb-version-empty", "cuda-13-1"],
)
def test_probe_answers_that_crashed_doctor(where: tuple[str, ...], value: object) -> None:
    warnings: list[str] = []
    env = _env_from_probe(mutate(_PROBE, (where, "replace", value)), warnings, read_binaries=False)
    machine = Machine(
        os=_MACHINE.os, python=env.python, nvidia=_MACHINE.nvidia, gpus=_MACHINE.gpus, env=env
    )
    diagnose(machine, _DB)
    assert warnings or env.installed_at == (("bitsandbytes", 1764000001.0),)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("env", "torch", "cuda"), "13-1"),  # ValueError from doctor before
        (("env", "bitsandbytes", "version"), ""),  # InvalidVersion from doctor before
        (("nvidia", "driver"), "\u0663.\u0661\u0662"),  # InvalidVersion from plan before
        (("gpus", 0, "compute_capability"), "\u0669.\u0660"),
    ],
)
def test_snapshot_values_that_crashed_doctor_or_plan(
    where: tuple[str | int, ...], value: object
) -> None:
    with pytest.raises(SnapshotError):
        machine_from_dict(mutate(_SNAPSHOT, (where, "replace", value)), label="fuzz")


def test_a_glibc_version_of_too_many_digits_is_none() -> None:
    """ValueError (int of more than 4300 digits) from lock before."""
    data = mutate(_SNAPSHOT, (("os", "libc"), "replace", "glibc " + "9" * 5000 + ".1"))
    assert machine_from_dict(data, label="fuzz").os.glibc is None


@pytest.mark.parametrize(
    "line",
    ["2147483648 0 " + socket.gethostname(), str(10**30), "-1", "0"],
    ids=["beyond-a-c-int", "beyond-a-c-long", "every-process", "the-process-group"],
)
def test_a_pid_file_no_build_wrote_is_left_alone(tmp_path: Path, line: str) -> None:
    """OverflowError (os.kill of a pid beyond a C int) from init and rebuild before."""
    partial = tmp_path / f"20261124T141031000000Z{PARTIAL}"
    partial.mkdir()
    (tmp_path / f"{partial.name}{OWNER}").write_text(line)
    remove_abandoned(tmp_path)
    assert partial.is_dir()


def test_a_verify_check_without_its_bound_renders() -> None:
    """KeyError: 'bound' from verify's table before."""
    from bnb_provision.cli.render import render_verify

    data = mutate(_VERIFY, (("devices", 0, "checks", 0, "bound"), "remove", None))
    assert "(bound none)" in render_verify(report_from_dict(data).to_dict())
