"""Every command example in README.md, run as written (issue 12).

Which lines are examples:

* in a ```` ```console ```` block that has ``$ `` prompts, each line starting with ``$ `` is
  one example; a line ending in ``\\`` continues on the next (the key joins them with one
  space, as bash does); the lines up to the next prompt are its shown output;
* a ```` ```console ```` block without prompts is a block of commands, one per non-blank
  line (the two set-up commands and the ``python scripts/update_compat_db.py`` lines).

Commands inside prose (``bnb-provision bundle locks/pylock.<group>.toml -o wheelhouse``)
and the JSON snapshot block are not examples: the first has a placeholder in it; the
JSON block is a snapshot, used here as one of the machines of ``snapshots/``.

Each example runs with bash, exactly as written, in one sandbox folder shared by the whole
module and in README order (later examples use what earlier ones wrote, as a reader's
would). The sandbox holds what the examples name: ``bnb-provision`` on PATH (this checkout),
a real ``.venv`` made by uv from stand-in wheels (torch's ``version.py`` as torch writes it,
bitsandbytes with its CUDA libraries named as in the real 0.50.2 wheel, real CUDA binaries
in them), ``snapshot.json`` and ``snapshots/`` (real detect snapshots), ``error.txt`` and a
``train.py`` printing a real error text, model folders with real ``config.json`` files,
``wheelhouse/``, and a ``python3`` with torch for ``init --torch system`` (as in an NGC
container). PyPI and the PyTorch index (download.pytorch.org, unreachable from the test
machines) are a stand-in index on 127.0.0.1 serving the same wheels, reached through
``BNB_PROVISION_INDEX_URL`` / ``BNB_PROVISION_TORCH_INDEX_URL``; every other connection goes
to a dead proxy, so an example that would reach the internet fails here. The fleet demos
run in folders of their own (``fleet/``: ``hosts.ini`` with two local-connection hosts and
an ssh host on a closed port; ``fleet-slurm/``: a Slurm cluster of this machine); the
set-up commands and the DB script run in a copy of the checkout, under ``-m network``.

What cannot succeed here (verify needs real kernels, so init stops there; rebuild then has
no environment) runs all the same, with its exit code and the reason in the table.

:data:`EXPECTED` is the one table of what each example must do; an example the table lacks,
or a table row whose example left the README, fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from bnb_provision.core.tomlio import toml_loads
from bnb_provision.core.uv import find_uv
from bnb_provision.db.load import load_db
from bnb_provision.db.stacks import load_stacks
from tests.support.index import make_wheel, serve_index

INNER_RUN = "BNB_PROVISION_README_EXAMPLE"
if os.environ.get(INNER_RUN):
    pytest.skip("inside the README's own test run (its set-up example)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIXTURES = ROOT / "tests" / "fixtures"


# -- the README's examples --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    command: str
    line: int
    shown: tuple[str, ...]


def readme_examples(text: str) -> list[Example]:
    """The examples of a README, in order (see the module docstring for the rule)."""
    examples: list[Example] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        start = i + 1
        end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
        examples += _block_examples(lines[start:end], start + 1)
        i = end + 1
    return examples


def _block_examples(block: list[str], first_line: int) -> list[Example]:
    prompted = any(line.startswith("$ ") for line in block)
    out: list[Example] = []
    i = 0
    while i < len(block):
        line = block[i]
        if not line.strip() or (prompted and not line.startswith("$ ")):
            i += 1
            continue
        number = first_line + i
        parts = [line.removeprefix("$ ") if prompted else line]
        while parts[-1].endswith("\\") and i + 1 < len(block):
            i += 1
            parts[-1] = parts[-1].removesuffix("\\").rstrip()
            parts.append(block[i].strip())
        i += 1
        shown: list[str] = []
        while prompted and i < len(block) and not block[i].startswith("$ "):
            shown.append(block[i].rstrip())
            i += 1
        out.append(Example(command=" ".join(parts), line=number, shown=tuple(shown)))
    return out


def test_the_example_rule() -> None:
    text = (
        "```console\npython3 -m pip install .\n\npython scripts/x.py  # note\n```\n"
        "```json\n{}\n```\n"
        "```console\n$ a --x \\\n    --y\nout 1\n...\nout 2\n$ b\n```\n"
    )
    assert readme_examples(text) == [
        Example(command="python3 -m pip install .", line=2, shown=()),
        Example(command="python scripts/x.py  # note", line=4, shown=()),
        Example(command="a --x --y", line=10, shown=("out 1", "...", "out 2")),
        Example(command="b", line=15, shown=()),
    ]
    assert _shown_runs(("out 1", "", "...", "out 2")) == [["out 1"], ["out 2"]]
    _assert_shown(("a", "...", "c"), "a\nb\nc\n")
    _assert_shown(("a long ...", "b"), "a long line\nb\n")
    with pytest.raises(AssertionError, match="README shows output the tool does not print"):
        _assert_shown(("a", "c"), "a\nb\nc\n")


# -- what each example must do ----------------------------------------------------------------

Marker = Literal["network", "slurm"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Expect:
    """``code``: the exit status; ``lines``: text each found in stdout + stderr;
    ``shown``: the README's own output under the example must be what the tool prints (runs
    of lines in order; a ``...`` line skips, a line ending in ``...`` is the start of one);
    ``files``: paths the example must leave;
    ``marker``: run only under that pytest marker; ``why``: the reason for a marker or for a
    non-zero ``code``; ``folder``: where in the sandbox it runs (a demo of its own gets its
    own folder); ``setup``: what the README states must come first (bash, run before it)."""

    code: int = 0
    lines: tuple[str, ...] = ()
    shown: bool = False
    files: tuple[str, ...] = ()
    marker: Marker | None = None
    why: str = ""
    folder: str = "."
    setup: str = ""
    timeout: float = 600


NO_KERNELS = (
    "the stand-in torch has no kernels, so verify (bitsandbytes' quantize round trips) fails "
    "in the new environment: exit 9, the environment set aside as .failed"
)
SETUP_VENV = "test -d .venv || python3 -m venv .venv\n. .venv/bin/activate"
"""What the set-up section asks for first: a fresh virtual environment, activated."""
SETUP_CHECKOUT = (
    SETUP_VENV + "\npython -c 'import bnb_provision, zstandard' || "
    "python3 -m pip install -q -e '.[derive]'"
)
"""The DB script runs where the checkout is installed with its ``derive`` extra (the
script's own docstring says so)."""
UNREACHABLE = "the inventory's third host is an ssh port of 127.0.0.1 that nothing listens on"

EXPECTED: dict[str, Expect] = {
    # -- Set-up in two commands (run in a copy of the checkout, in a fresh venv)
    "python3 -m pip install . && bnb-provision plan": Expect(
        marker="network",
        why="pip installs the tool's dependencies (and hatchling) from PyPI",
        folder="checkout",
        setup=SETUP_VENV,
        lines=("Plan for linux-x86_64",),
        timeout=1800,
    ),
    "python3 -m pip install -e '.[test]' && python3 -m pytest": Expect(
        marker="network",
        why="pip installs the test dependencies from PyPI; the inner run skips this module",
        folder="checkout",
        setup=SETUP_VENV,
        timeout=3600,
    ),
    # -- detect
    "bnb-provision detect --python .venv/bin/python": Expect(
        lines=(
            "torch         2.11.0+cu130  (cu130, CUDA 13.0)",
            "bitsandbytes  0.50.2",
            "libbitsandbytes_cuda130.so  sm_75 sm_90 compute_90  <- loads",
            (
                "bitsandbytes loader (same-major rule): loads libbitsandbytes_cuda130.so - "
                "exact match for torch's CUDA 13.0"
            ),
        ),
    ),
    "bnb-provision detect --json > machine.json      # schema bnb-provision.machine/1": Expect(
        files=("machine.json",),
    ),
    # -- plan
    'bnb-provision plan --gpu "GTX 1080 Ti" --driver 550.54.14 --python 3.11': Expect(
        shown=True,
    ),
    "bnb-provision plan --gpu MI300X --python 3.12": Expect(shown=True),
    "bnb-provision plan --gpu MI50 --python 3.12": Expect(
        code=6,
        why="the example's point: no bitsandbytes ROCm library holds gfx906",
        shown=True,
    ),
    "bnb-provision plan --machine machine.json --torch 2.8 --json    # schema bnb-provision.plan/2": (
        Expect(lines=('"schema": "bnb-provision.plan/2"', '"version": "2.8.0"'))
    ),
    'bnb-provision plan --gpu "RTX 3090" --python 3.12': Expect(shown=True),
    # -- doctor
    "BNB_CUDA_VERSION=118 bnb-provision doctor --python .venv/bin/python": Expect(
        code=9,
        why="the error the example is about: BNB_CUDA_VERSION=118 under torch's CUDA 13.0",
        shown=True,
    ),
    "bnb-provision doctor --machine snapshot.json --json      # schema bnb-provision.doctor/1": (
        Expect(lines=('"schema": "bnb-provision.doctor/1"', '"ok": true'))
    ),
    "bnb-provision doctor --python .venv/bin/python --report  # safe to paste into a public issue": (
        Expect(lines=("<details><summary>bnb-provision doctor report</summary>", "</details>"))
    ),
    "bnb-provision plan --from issue.md": Expect(
        lines=("Read from issue.md:", "Assumed", "OS assumed linux: the report does not say"),
    ),
    # -- explain and triage (error.txt: a real sm_120 report; issue.md: a real issue body)
    "bnb-provision explain --log error.txt": Expect(
        code=9,
        why="the text names an error (no kernels for the GPU): explain exits 9, as doctor does",
        lines=("[arch_not_compiled]",),
    ),
    'python train.py 2>&1 | bnb-provision explain --json       # schema bnb-provision.doctor/1, facts in "subject"': Expect(
        code=9,
        why="the same error text, piped",
        lines=('"category": "arch_not_compiled"',),
    ),
    "bnb-provision triage issue.md": Expect(
        code=9,
        why="the issue's error stands: triage exits 9 like explain",
        lines=("bnb-provision triage",),
    ),
    "bnb-provision triage --json < issue.md   # schema bnb-provision.triage/1 (stdin: a pasted issue body)": Expect(
        code=9,
        why="the same issue body on standard input",
        lines=('"schema": "bnb-provision.triage/1"',),
    ),
    # -- fit
    "bnb-provision fit ./Llama-3.1-8B --mode qlora --seq 2048 --gpu-memory 12GB": Expect(
        shown=True,
    ),
    "bnb-provision fit --model-params 70B --gpu-memory 24GB      # refused: offload needs ~128 GiB of CPU RAM in fp32": Expect(
        lines=("GPU 0 (24576 MiB): refused", "and 128 GiB of CPU memory (they stay in fp32 there)"),
    ),
    "bnb-provision fit ./Mixtral-8x7B --quant nf4 --gpus 2 --gpu-memory 80GB": Expect(
        lines=(
            "Mixtral-8x7B (mixtral, 46.70B params",
            "GPU 0 (81920 MiB): fits",
            "GPU 1 (81920 MiB): fits",
        ),
    ),
    "bnb-provision fit ./model --mode inference --seq 8192 --batch 4 --json": Expect(
        lines=(
            '"schema": "bnb-provision.fit/1"',
            "no GPU given or found: memory is estimated, no verdict",
        ),
    ),
    # -- verify
    "bnb-provision verify --python .venv/bin/python": Expect(
        code=9,
        why="the stand-in torch imports but has no kernels: verify fails (the README's output "
        "is an H100's; test_recorded_samples checks it against the recorded run)",
        lines=("Error: verify failed",),
    ),
    "bnb-provision verify --env .venv --json        # schema bnb-provision.verify/1": Expect(
        code=9,
        why="the stand-in torch has no kernels: verify fails, and says so in its JSON",
        lines=('"schema": "bnb-provision.verify/1"', '"ok": false'),
    ),
    # -- lock (PyPI and the PyTorch index are the stand-in index on 127.0.0.1)
    "bnb-provision lock -o locks                                   # this machine": Expect(
        files=("locks/bnb-provision-locks.toml",),
        lines=("1 machine(s) -> 1 lock group(s)",),
    ),
    "bnb-provision lock --machine snapshots/ -o locks-team --dockerfile  # a team's machines": Expect(
        lines=(
            "4 machine(s) -> 2 lock group(s)",
            "for: gtx1080ti (4 packages",
            "for: h100-bnb-0.50.2, h100-bnb118, h100-no-bnb (4 packages",
            "locks-team/pylock.bnb-linux-x86_64-py3_11-torch",
            "locks-team/pylock.bnb-linux-x86_64-py3_12-torch",
        ),
    ),
    'bnb-provision lock --os windows --gpu "RTX 4090" --driver 572.61 --python 3.12 -o locks-windows': Expect(
        lines=("locks-windows/pylock.bnb-windows-x86_64-py3_12-",),
    ),
    "bnb-provision lock --stack gptq --gpu A100 --driver 580.95.05 -o locks-gptq": Expect(
        lines=("locks-gptq/pylock.gptq-linux-x86_64-",),
    ),
    "bnb-provision lock --offline --find-links wheelhouse -o locks-offline  # no index at all": Expect(
        files=("locks-offline/bnb-provision-locks.toml",),
    ),
    "bnb-provision lock --machine snapshots/ -o locks --check": Expect(
        code=11,
        why="the example's point: locks/ (this machine's lock) is not what snapshots/ gives",
        lines=(
            "locks/bnb-provision-locks.toml: differs from a fresh lock",
            "--- committed/bnb-provision-locks.toml",
            "+++ fresh/bnb-provision-locks.toml",
            (
                "file(s) differ from what the DB and the snapshots give now; run the same "
                "command without --check (with --force) to write them, and commit the result"
            ),
        ),
    ),
    # -- init and rebuild
    "bnb-provision init                                   # plan for this machine": Expect(
        code=9, why=NO_KERNELS, lines=("verify failed in the new environment",)
    ),
    "bnb-provision init --lock locks/                     # the team's lock for this machine (manifest)": Expect(
        code=9, why=NO_KERNELS, lines=("verify failed in the new environment",)
    ),
    "bnb-provision init --torch 2.13.0 --python 3.11      # plan constraints, as for plan": Expect(
        code=9, why=NO_KERNELS, lines=("verify failed in the new environment",)
    ),
    "bnb-provision init --torch system --offline --find-links wheelhouse   # NGC / cluster torch": Expect(
        code=9,
        why="python3 here is a system interpreter with the stand-in torch: adopted, then "
        + NO_KERNELS,
        lines=("verify failed in the new environment",),
    ),
    "bnb-provision rebuild --dry-run": Expect(
        code=3,
        why="no .venv-bnb to rebuild: every init above stopped at verify (stand-in torch)",
        lines=(".venv-bnb does not exist: create it with bnb-provision init",),
    ),
    "bnb-provision rebuild --keep 3": Expect(
        code=3,
        why="no .venv-bnb to rebuild: every init above stopped at verify (stand-in torch)",
        lines=(".venv-bnb does not exist: create it with bnb-provision init",),
    ),
    # -- Fleets, through Ansible (a demo of its own: its own folder)
    "bnb-provision fleet snapshot --inventory hosts.ini -o snapshots": Expect(
        code=9,
        why=UNREACHABLE,
        folder="fleet",
        lines=(
            "fleet snapshot through ansible: 2 of 3 nodes ok, 1 unreachable, 0 failed",
            "Connection refused",
            "Error: 1 of 3 nodes did not succeed: gpu-down (unreachable)",
        ),
        timeout=900,
    ),
    "bnb-provision lock --machine snapshots -o locks          # one lock per machine class": Expect(
        folder="fleet",
        lines=("2 machine(s) -> 1 lock group(s)", "for: node1, node2"),
    ),
    "bnb-provision fleet init --inventory hosts.ini --lock locks -o results": Expect(
        code=9,
        why=f"{UNREACHABLE}; node1 and node2: {NO_KERNELS}",
        folder="fleet",
        lines=(
            "fleet init through ansible: 0 of 3 nodes ok, 1 unreachable, 2 failed",
            "exit 9: Error: verify failed in the new environment",
        ),
        timeout=900,
    ),
    "bnb-provision lock --machine snapshots --stack gptq -o locks-gptq": Expect(
        folder="fleet",
        lines=("2 machine(s) -> 1 lock group(s)", "locks-gptq/pylock.gptq-linux-x86_64-"),
    ),
    "bnb-provision fleet init --inventory hosts.ini --lock locks-gptq -o results-gptq -- --stack gptq": Expect(
        code=9,
        why=f"{UNREACHABLE}; node1 and node2 install the gptq lock into .venv-gptq, then "
        + NO_KERNELS,
        folder="fleet",
        lines=("1 unreachable, 2 failed", ".venv-gptq.d/"),
        timeout=900,
    ),
    # -- Fleets, through Slurm (a cluster on this machine, -m slurm; its own folder)
    "bnb-provision fleet snapshot --slurm --partition fleet --nodes 3 -o snapshots": Expect(
        marker="slurm",
        why="needs the Slurm cluster the slurm tests start",
        folder="fleet-slurm",
        lines=("fleet snapshot through slurm", "3 of 3 nodes ok"),
        timeout=900,
    ),
    "bnb-provision lock --machine snapshots -o locks": Expect(
        marker="slurm",
        why="locks the snapshots of the Slurm run",
        folder="fleet-slurm",
        lines=("3 machine(s) -> 1 lock group(s)",),
    ),
    "bnb-provision fleet init --slurm --partition fleet --nodelist 'gpu[01-03]' --lock locks -o results": Expect(
        code=9,
        marker="slurm",
        why="needs the Slurm cluster; on each node " + NO_KERNELS,
        folder="fleet-slurm",
        lines=("fleet init through slurm", "0 of 3 nodes ok"),
        timeout=900,
    ),
    # -- the templates without bnb-provision on the controller (the Ansible demo's folder)
    "ansible-playbook -i hosts.ini templates/fleet/bnb-fleet.yml -e bnb_fleet_out=$PWD/snapshots -e bnb_fleet_mode=snapshot": Expect(
        folder="fleet",
        lines=("PLAY RECAP", "UNREACHABLE!"),
        timeout=900,
    ),
    "bnb-provision fleet slurm-script init --nodes 4 --lock $PWD/locks -o $PWD/results > job.sh": Expect(
        folder="fleet",
        files=("job.sh",),
    ),
    "sbatch job.sh": Expect(
        marker="slurm",
        why="needs the Slurm cluster the slurm tests start",
        folder="fleet",
        lines=("Submitted batch job",),
    ),
    "bnb-provision fleet report snapshots/": Expect(
        code=9,
        why=UNREACHABLE + " (the playbook recorded it)",
        folder="fleet",
        lines=("node1     ok", "node2     ok", "gpu-down  unreachable"),
    ),
    # -- The compatibility database (in a copy of the checkout: --write writes there)
    "python scripts/update_compat_db.py            # show what changed": Expect(
        marker="network",
        why="reads PyPI and downloads bitsandbytes' wheels",
        folder="checkout",
        setup=SETUP_CHECKOUT,
        lines=("file(s) would change",),
        timeout=3600,
    ),
    "python scripts/update_compat_db.py --only bitsandbytes --no-libraries   # release rows only: the library rows already written are kept, no wheel is downloaded": Expect(
        marker="network",
        why="reads PyPI's release lists",
        folder="checkout",
        setup=SETUP_CHECKOUT,
        lines=("file(s) ",),
        timeout=1800,
    ),
    "python scripts/update_messages.py             # the message catalog: diff, and the messages no curated row maps": Expect(
        marker="network",
        why="reads the libraries' release files on PyPI",
        folder="checkout",
        setup=SETUP_CHECKOUT,
        timeout=3600,
    ),
    "python scripts/update_messages.py --write": Expect(
        marker="network",
        why="reads PyPI (the files are cached by the run before)",
        folder="checkout",
        setup=SETUP_CHECKOUT,
        timeout=3600,
    ),
    "python scripts/update_compat_db.py --write    # and write it": Expect(
        marker="network",
        why="reads PyPI (the wheels are cached by the run before)",
        folder="checkout",
        setup=SETUP_CHECKOUT,
        lines=("file(s) written",),
        timeout=3600,
    ),
}


# -- the sandbox ------------------------------------------------------------------------------


def _torch_wheel(house: Path, version: str, cuda: str | None) -> None:
    """A torch stand-in whose ``torch/version.py`` is laid out as torch writes it."""
    cuda_text = repr(cuda) if cuda else "None"
    version_py = (
        "from typing import Optional\n\n"
        "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']\n"
        f"__version__ = '{version}'\n"
        "debug = False\n"
        f"cuda: Optional[str] = {cuda_text}\n"
        "hip: Optional[str] = None\n"
        "xpu: Optional[str] = None\n"
    )
    make_wheel(
        house,
        "torch",
        version,
        {
            "torch/__init__.py": b"from torch import version\n\n__version__ = version.__version__\n",
            "torch/version.py": version_py.encode(),
        },
    )


def _cudart_needed(binary: bytes, major: str) -> bytes:
    """The real CUDA 13 binary, its DT_NEEDED entry renamed for another CUDA major (the
    string has the same length, so the ELF stays valid)."""
    return binary.replace(b"libcudart.so.13", f"libcudart.so.{major}".encode())


def _bnb_wheel(house: Path, version: str) -> None:
    """A bitsandbytes stand-in: its native libraries named as in the real wheel of
    ``version`` for linux-x86_64 (the DB lists them), each a real CUDA binary linking the
    CUDA runtime of its major."""
    whole = (FIXTURES / "kernels" / "whole.so").read_bytes()
    files = {"bitsandbytes/__init__.py": f"__version__ = '{version}'\n".encode()}
    for row in load_db().bnb_libraries:
        if str(row.bnb) != version or row.platform != "linux-x86_64" or row.backend != "cuda":
            continue
        assert row.version is not None
        files[f"bitsandbytes/{row.file}"] = _cudart_needed(whole, row.version[:-1])
    make_wheel(house, "bitsandbytes", version, files, requires=("torch>=2.3",))


def _cuda_of(variant: str) -> str | None:
    """``cu126`` -> ``12.6``; other builds (cpu, ROCm, XPU) have no CUDA."""
    return f"{variant[2:-1]}.{variant[-1]}" if variant.startswith("cu") else None


def _torch_stand_ins(house: Path) -> None:
    """Every torch release of the DB: each variant the PyTorch index has (CPU included), and
    PyPI's build (its Linux x86_64 variant's CUDA in ``version.py``)."""
    db = load_db()
    for release in db.torch_releases:
        minor = ".".join(str(release.version).split(".")[:2])
        variants = {"cpu"}
        for index in db.torch_indexes:
            if index.torch == minor:
                variants.update(index.variants, index.proposed)
        for variant in sorted(variants):
            _torch_wheel(house, f"{release.version}+{variant}", _cuda_of(variant))
        pypi = dict(release.pypi).get("linux-x86_64", "cpu")
        _torch_wheel(house, str(release.version), _cuda_of(pypi))


def _stand_in_wheels(house: Path) -> Path:
    """One stand-in wheel per release the DB knows of each package a plan pins, so that any
    plan an example asks for can be locked and installed from them."""
    db = load_db()
    house.mkdir(parents=True, exist_ok=True)
    _torch_stand_ins(house)
    for bnb in db.bnb_releases:
        if str(bnb.version) == "0.50.2":
            _bnb_wheel(house, "0.50.2")
            continue
        init = f"__version__ = '{bnb.version}'\n".encode()
        make_wheel(house, "bitsandbytes", str(bnb.version), {"bitsandbytes/__init__.py": init})
    for package in ("transformers", "accelerate", "peft", "trl"):
        for r in db.package_releases(package):
            init = f"__version__ = '{r.version}'\n".encode()
            make_wheel(house, package, str(r.version), {f"{package}/__init__.py": init})
    for row in load_stacks().releases:  # the gptq and awq stacks' libraries
        r = row.release
        init = f"__version__ = '{r.version}'\n".encode()
        make_wheel(house, r.package, str(r.version), {f"{r.package}/__init__.py": init})
    return house


def _bnb_provision_on_path(bin_dir: Path) -> None:
    """``bnb-provision``: this checkout, as ``python -m bnb_provision``."""
    bin_dir.mkdir()
    script = bin_dir / "bnb-provision"
    script.write_text(
        "#!/bin/sh\n"
        f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f'exec {sys.executable} -m bnb_provision "$@"\n'
    )
    script.chmod(0o755)


def _venv(path: Path, house: Path, *packages: str) -> None:
    """A real environment made by uv, ``packages`` installed from the stand-in wheels."""
    uv = find_uv()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(path)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(path / "bin" / "python"), "--offline",
         "--no-index", "--find-links", str(house), *packages],
        check=True,
    )  # fmt: skip


def _system_python3(bin_dir: Path, system: Path) -> None:
    """``python3`` on PATH is a system interpreter that has torch, as in an NGC container
    (``init --torch system`` adopts it)."""
    script = bin_dir / "python3"
    script.write_text(f'#!/bin/sh\nexec {system / "bin" / "python3"} "$@"\n')
    script.chmod(0o755)


def _error_text() -> str:
    """A real error text: the first case of the explain corpus whose category is a
    missing kernel (the README's own example)."""
    corpus = toml_loads((FIXTURES / "explain" / "corpus.toml").read_text())
    case = next(c for c in corpus["case"] if "sm_120 is not compatible" in c["text"])
    return str(case["text"])


def _issue_text() -> str:
    """A real issue body as posted (the explain corpus's first whole issue)."""
    corpus = toml_loads((FIXTURES / "explain" / "corpus.toml").read_text())
    return str(next(c for c in corpus["case"] if c.get("kind") == "issue")["text"])


def _json_block(text: str) -> str:
    """The README's hand-written partial snapshot (its one JSON block)."""
    start = text.index("```json\n") + len("```json\n")
    return text[start : text.index("```", start)]


def _snapshots(folder: Path) -> None:
    """Real detect snapshots (an H100 with and without bitsandbytes, the one of the CUDA 11.8
    doctor run), and the README's own partial snapshot of a GTX 1080 Ti."""
    folder.mkdir()
    for name in ("h100-bnb-0.50.2.json", "h100-no-bnb.json"):
        shutil.copy(FIXTURES / "snapshots" / name, folder / name)
    doctor = json.loads((FIXTURES / "device" / "doctor-bnb118.json").read_text())
    (folder / "h100-bnb118.json").write_text(json.dumps(doctor["subject"]["machine"], indent=2))
    (folder / "gtx1080ti.json").write_text(_json_block(README.read_text()))


def _models(root: Path) -> None:
    """Model folders with real config.json files: Llama-3.1-8B and Qwen2.5-0.5B as measured
    for fit's calibration, Mixtral-8x7B's from the fit tests."""
    from tests.test_fit import MIXTRAL

    runs = json.loads((FIXTURES / "fit" / "raw" / "run2-calibration.json").read_text())
    for folder, config in (
        ("Llama-3.1-8B", runs["models"]["llama-3.1-8b"]["checkpoint"]["config"]),
        ("model", runs["models"]["qwen2.5-0.5b"]["checkpoint"]["config"]),
        ("Mixtral-8x7B", MIXTRAL),
    ):
        (root / folder).mkdir()
        (root / folder / "config.json").write_text(json.dumps(config, indent=2))


def _hosts_ini(path: Path, closed_port: int) -> None:
    """Two local-connection hosts and an ssh host on a closed port of 127.0.0.1."""
    path.write_text(
        "[fleet]\n"
        f"node1 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"node2 ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"gpu-down ansible_host=127.0.0.1 ansible_port={closed_port} ansible_user=nobody "
        "ansible_ssh_common_args='-o BatchMode=yes -o ConnectTimeout=5'\n"
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, kw_only=True, slots=True)
class Sandbox:
    root: Path
    env: dict[str, str]
    """What examples run with; network examples without the index variables and the proxy."""

    def env_for(self, expect: Expect) -> dict[str, str]:
        """Network examples get the real indexes, the user's caches and no stand-in
        ``python3``: all that the sandbox changes is taken back but PATH's ``bnb-provision``."""
        if expect.marker != "network":
            return self.env
        env = {k: v for k, v in self.env.items() if k not in SANDBOX_ONLY}
        env.update({k: os.environ[k] for k in SANDBOX_ONLY if k in os.environ})
        return env


SANDBOX_ONLY = (
    "BNB_PROVISION_INDEX_URL",
    "BNB_PROVISION_TORCH_INDEX_URL",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HOME",
    "XDG_CACHE_HOME",
    "UV_CACHE_DIR",
)


def _checkout(folder: Path) -> None:
    """A copy of this checkout's tracked files (the set-up commands and scripts run in one)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("readme")
    house = _stand_in_wheels(root / "wheelhouse")
    _bnb_provision_on_path(root / "bin")
    # as on the H100 of the snapshots: torch 2.11.0+cu130 and bitsandbytes 0.50.2
    _venv(root / ".venv", house, "torch==2.11.0+cu130", "bitsandbytes==0.50.2")
    _venv(root / "system", house, "torch==2.13.0+cpu")
    _system_python3(root / "bin", root / "system")
    (root / "error.txt").write_text(_error_text() + "\n")
    (root / "issue.md").write_text(_issue_text() + "\n")
    (root / "train.py").write_text(
        "import sys\n\n"
        "# what a training run that hit the error prints on stderr\n"
        f"sys.stderr.write({_error_text()!r} + '\\n')\n"
        "sys.exit(1)\n"
    )
    shutil.copy(FIXTURES / "snapshots" / "h100-bnb-0.50.2.json", root / "snapshot.json")
    _snapshots(root / "snapshots")
    _models(root)
    for demo in ("fleet", "fleet-slurm"):
        (root / demo).mkdir()
        (root / demo / "templates").symlink_to(ROOT / "templates")
    _hosts_ini(root / "fleet" / "hosts.ini", _closed_port())
    _checkout(root / "checkout")
    home = root / "home"
    home.mkdir()
    with serve_index(sorted(house.iterdir())) as (url, _seen):
        env = {
            **os.environ,
            "PATH": os.pathsep.join(
                [str(root / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
            ),
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "UV_CACHE_DIR": str(home / ".cache" / "uv"),
            "BNB_PROVISION_INDEX_URL": f"{url}/simple",
            "BNB_PROVISION_TORCH_INDEX_URL": f"{url}/simple",
            # anything but 127.0.0.1 goes to a closed port: no example reaches the internet
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "no_proxy": "127.0.0.1,localhost",
            # the set-up example runs the test suite: there, this module is skipped
            INNER_RUN: "1",
        }
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "BNB_CUDA_VERSION"):
            env.pop(key, None)
        yield Sandbox(root=root, env=env)


@pytest.fixture(scope="module")
def slurm_env(sandbox: Sandbox) -> Iterator[dict[str, str]]:
    """A Slurm cluster on this machine (four nodes gpu01-gpu04, partition fleet) for the
    Slurm examples; skipped with the reason where it cannot start."""
    from tests.support.slurm import ClusterUnavailableError, start_cluster

    nodes = ("gpu01", "gpu02", "gpu03", "gpu04")
    try:
        with start_cluster(sandbox.root / "slurm", nodes) as cluster:
            yield {
                **sandbox.env,
                "SLURM_CONF": str(cluster.conf),
                "PATH": cluster.env["PATH"].replace(os.environ["PATH"], sandbox.env["PATH"]),
            }
    except ClusterUnavailableError as exc:
        pytest.skip(f"no Slurm cluster here: {exc}")


# -- the tests --------------------------------------------------------------------------------

EXAMPLES = readme_examples(README.read_text())


def _same(readme: str, printed: str) -> bool:
    """A README line ending in ``...`` shows the start of a longer line."""
    if readme.endswith("...") and readme.strip() != "...":
        return printed.startswith(readme.removesuffix("...").rstrip())
    return readme == printed


def _shown_runs(shown: tuple[str, ...]) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            runs.append([])
        elif line.strip():
            runs[-1].append(line.rstrip())
    return [r for r in runs if r]


def _assert_shown(shown: tuple[str, ...], output: str) -> None:
    """Each run of the README's shown lines appears in the output, contiguous, in order."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    at = 0
    for run in _shown_runs(shown):
        found = next(
            (
                i
                for i in range(at, len(lines) - len(run) + 1)
                if all(_same(r, p) for r, p in zip(run, lines[i : i + len(run)], strict=True))
            ),
            None,
        )
        assert found is not None, (
            "README shows output the tool does not print:\n"
            + "\n".join(run)
            + "\n--- the tool printed:\n"
            + output
        )
        at = found + len(run)


def _params() -> list[Any]:
    """Each example a parameter, in README order, with its marker."""
    out: list[Any] = []
    for ex in EXAMPLES:
        expect = EXPECTED.get(ex.command)
        marks = [getattr(pytest.mark, expect.marker)] if expect and expect.marker else []
        out.append(pytest.param(ex, id=f"L{ex.line}", marks=marks))
    return out


@pytest.mark.parametrize("example", _params())
def test_readme_example_runs_as_written(
    example: Example, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    expect = EXPECTED.get(example.command)
    assert expect is not None, (
        f"README.md line {example.line} has an example the table lacks: add its expectation "
        f"to EXPECTED in tests/test_readme.py:\n{example.command}"
    )
    script = f"{expect.setup}\n{example.command}" if expect.setup else example.command
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=sandbox.root / expect.folder,
        env=request.getfixturevalue("slurm_env")
        if expect.marker == "slurm"
        else sandbox.env_for(expect),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=expect.timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == expect.code, (
        f"{example.command}\nexit {done.returncode}, expected {expect.code} "
        f"({expect.why or 'success'})\n{output}"
    )
    for line in expect.lines:
        assert line in output, f"{example.command}\nmissing {line!r} in:\n{output}"
    for path in expect.files:
        assert (sandbox.root / expect.folder / path).exists(), path
    if expect.shown:
        _assert_shown(example.shown, output)


def test_the_table_has_every_example_and_no_other() -> None:
    commands = {ex.command for ex in EXAMPLES}
    assert commands - EXPECTED.keys() == set(), "README examples without an expectation"
    assert EXPECTED.keys() - commands == set(), "expectations of examples no longer in README"
    for command, expect in EXPECTED.items():
        assert expect.code == 0 or expect.why, f"a non-zero exit needs its reason: {command}"
        assert expect.marker is None or expect.why, f"a marker needs its reason: {command}"


# -- outputs the README shows from real hardware ------------------------------------------------


def _detect_on_the_h100() -> str:
    from bnb_provision.cli.render import render_machine
    from bnb_provision.detect.snapshot import load_machine
    from bnb_provision.plan.analysis import bnb_load_report

    machine = load_machine(FIXTURES / "snapshots" / "h100-bnb-0.50.2.json")
    return render_machine(machine, bnb_load_report(machine, load_db()))


def _verify_on_the_h100() -> str:
    from bnb_provision.cli.render import render_verify

    return render_verify(json.loads((FIXTURES / "device" / "verify-ok.json").read_text()))


RECORDED = {
    "bnb-provision detect --python .venv/bin/python": _detect_on_the_h100,
    "bnb-provision verify --python .venv/bin/python": _verify_on_the_h100,
}
"""Examples whose README output comes from a GPU machine: it must be what the tool renders
today from that machine's recorded run (tests/fixtures: its detect snapshot, its verify
report)."""


@pytest.mark.parametrize("command", list(RECORDED))
def test_readme_output_from_hardware_is_what_the_tool_renders(command: str) -> None:
    (example,) = [ex for ex in EXAMPLES if ex.command == command]
    assert example.shown, f"README shows no output under {command}"
    _assert_shown(example.shown, RECORDED[command]())
