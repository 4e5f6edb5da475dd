"""The fleet playbook run for real by ansible-playbook, on hosts made on this machine.

Four inventory hosts, loopback only: node1 and node2 (local connection, each with its own
home for bnb-provision and its own working folder: node1's given, node2's the default
~/bnb-fleet/node2 under the home the controller runs with, a folder of the test), broken (local, but detect is pointed at an interpreter that does
not exist, so bnb-provision itself fails there) and down (ssh to a closed port on
127.0.0.1). Every node runs the real ``bnb-provision`` of this worktree. The snapshots
gathered from the fleet are locked offline from a stand-in wheelhouse, then the team's lock
is installed on node1 and node2 with ``fleet init`` through the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bnb_provision.errors import ExternalToolError
from bnb_provision.fleet.ansible import AnsibleTarget, find_ansible_playbook
from bnb_provision.fleet.job import FleetJob
from bnb_provision.fleet.run import run_fleet
from tests.support.wheelhouse import TORCH, cpu_wheelhouse

ROOT = Path(__file__).resolve().parent.parent
NODE_COMMAND = (sys.executable, "-m", "bnb_provision")

try:
    find_ansible_playbook()
except ExternalToolError as exc:  # pragma: no cover - the test extra installs ansible-core
    pytest.skip(f"{exc}", allow_module_level=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _local_host(root: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "bnb_fleet_environment": {"HOME": str(root / "homes" / name), "PYTHONPATH": str(ROOT)},
        **extra,
    }


def _workdir(root: Path, node: str) -> Path:
    return root / "controller-home" / "bnb-fleet" / node if node == "node2" else root / node


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inventory (YAML, written as JSON) of the four hosts."""
    root = tmp_path_factory.mktemp("fleet")
    hosts = {
        "node1": _local_host(root, "node1", bnb_fleet_workdir=str(root / "{node}")),
        "node2": _local_host(root, "node2"),
        "broken": _local_host(
            root,
            "broken",
            bnb_fleet_workdir=str(root / "{node}"),
            bnb_fleet_args=["--python", "/nonexistent/python3"],
        ),
        "down": {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": _closed_port(),
            "ansible_user": "nobody",
            "ansible_ssh_common_args": "-o BatchMode=yes -o ConnectTimeout=5",
        },
    }
    inventory = root / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}, indent=2))
    return inventory


def _controller_env(root: Path) -> dict[str, str]:
    """The controller's environment: its home (where ~ points on the local hosts) is a
    folder of the test, so the default working folder and ~/.ansible land there."""
    home = root / "controller-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home)}


@pytest.fixture(scope="module")
def snapshots(fleet: Path) -> Any:
    job = FleetJob(mode="snapshot", output=fleet.parent / "snapshots", node_command=NODE_COMMAND)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", _controller_env(fleet.parent)["HOME"])
        return run_fleet(job, AnsibleTarget(inventory=str(fleet)))


def test_snapshot_gathers_every_node_and_names_the_ones_that_failed(
    fleet: Path, snapshots: Any
) -> None:
    report = snapshots
    by_node = {n.node: n for n in report.nodes}
    assert [n.node for n in report.nodes] == ["node1", "node2", "broken", "down"]
    assert {n: r.status for n, r in by_node.items()} == {
        "node1": "ok",
        "node2": "ok",
        "broken": "failed",
        "down": "unreachable",
    }
    assert not report.ok and report.engine == "ansible" and report.mode == "snapshot"
    # bnb-provision's own error, and what ssh said, reach the report
    assert by_node["broken"].why.startswith("exit 3: Error: ")
    assert "/nonexistent/python3" in by_node["broken"].why
    assert "127.0.0.1" in by_node["down"].why and "Connection refused" in by_node["down"].why
    folder = fleet.parent / "snapshots"
    for node in ("node1", "node2"):
        snapshot = json.loads((folder / f"{node}.json").read_text())
        assert snapshot["schema"] == "bnb-provision.machine/1"
        assert snapshot["python"]["executable"] == sys.executable
        assert by_node[node].result == folder / f"{node}.json"
        # each node ran in its own working folder
        assert (_workdir(fleet.parent, node) / ".bnb-fleet" / "snapshot.json").is_file()
    assert not (folder / "broken.json").exists() and not (folder / "down.json").exists()
    assert (folder / "broken.rc").read_text().strip() == "3"
    data = report.to_dict()
    assert data["schema"] == "bnb-provision.fleet/1"
    assert data["counts"] == {"ok": 2, "unreachable": 1, "failed": 1}
    assert "PLAY RECAP" in Path(data["log"]).read_text()


def test_a_second_run_into_the_same_folder_needs_force(fleet: Path, snapshots: Any) -> None:
    from bnb_provision.errors import LockfileError

    job = FleetJob(mode="snapshot", output=fleet.parent / "snapshots", node_command=NODE_COMMAND)
    with pytest.raises(LockfileError, match="is not empty"):
        run_fleet(job, AnsibleTarget(inventory=str(fleet)))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NODE_COMMAND, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_controller_env(cwd),
        timeout=600,
        check=False,
    )


def test_init_from_the_gathered_snapshots_builds_an_environment_per_node(
    fleet: Path, snapshots: Any
) -> None:
    root = fleet.parent
    house = cpu_wheelhouse(root / "wheelhouse")
    done = _cli(
        "lock", "--machine", "snapshots", "--torch", TORCH, "--cuda", "cpu",
        "--offline", "--find-links", str(house), "-o", "locks", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _cli(
        "fleet", "init", "--inventory", str(fleet), "--limit", "node1,node2",
        "--lock", "locks", "-o", "results", "--node-command", " ".join(NODE_COMMAND), "--json",
        "--", "--offline", "--find-links", str(house), "--no-verify", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["schema"] == "bnb-provision.fleet/1" and report["mode"] == "init"
    assert [(n["node"], n["status"]) for n in report["nodes"]] == [
        ("node1", "ok"),
        ("node2", "ok"),
    ]
    for node in report["nodes"]:
        env = _workdir(root, node["node"]) / ".venv-bnb"
        result = json.loads(Path(node["result"]).read_text())
        assert result["schema"] == "bnb-provision.env/1" and result["action"] == "created"
        assert Path(result["env"]) == env and result["torch"] == f"{TORCH}+cpu"
        assert result["verify"] is None and node["verify"] is None
        assert node["summary"].endswith("verify not run")
        assert (env / "bnb-provision-stamp.json").is_file()
        # the node installed the copy of the lock folder it was given
        assert (env.parent / "locks" / "bnb-provision-locks.toml").is_file()
